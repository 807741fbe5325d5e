//! The pipeline of one config: its shared context, a poller and a dispatcher, and
//! the state directory's lock when it opened the store itself.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tracing::info;

use super::clock::Clock;
use super::dispatch::{DispatchReport, Dispatcher};
use super::outcome::{PollError, PollOutcome};
use super::poll::Poller;
use super::shared::{Lasting, Shared};
use crate::config::{Config, Feed};
use crate::store::{Pruned, StateLock, Store, StoreError};

/// Everything a poll or a delivery needs, for one config.
pub struct Pipeline {
    shared: Arc<Shared>,
    poller: Arc<Poller>,
    dispatcher: Arc<Dispatcher>,
    /// The state directory's lock, when this pipeline opened the store itself.
    _lock: Option<StateLock>,
}

impl Pipeline {
    /// Opens the store in the configured state directory and sets up the transports,
    /// on the system's clock. Holds the state directory's lock for as long as the
    /// pipeline lives, so a second daemon on the same directory refuses to start;
    /// alerts a dead predecessor had claimed go back to the queue.
    pub async fn new(config: Config) -> anyhow::Result<Pipeline> {
        Pipeline::with_clock(config, Clock::system()).await
    }

    /// [`Pipeline::new`] on the given clock.
    pub async fn with_clock(config: Config, clock: Clock) -> anyhow::Result<Pipeline> {
        let (lock, store) = open_state(&config).await?;
        let mut pipeline = Pipeline::build(config, &Lasting::new(store, clock))?;
        pipeline._lock = Some(lock);
        Ok(pipeline)
    }

    /// A pipeline on a store opened by the caller (who holds its lock).
    pub fn with_store(config: Config, store: Arc<Store>) -> anyhow::Result<Pipeline> {
        Pipeline::build(config, &Lasting::new(store, Clock::system()))
    }

    /// A pipeline for `config` that carries on from `lasting` (a reload's new one).
    pub fn build(config: Config, lasting: &Lasting) -> anyhow::Result<Pipeline> {
        let shared = lasting.share(config);
        let poller = Poller::new(Arc::clone(&shared))?;
        let dispatcher = Dispatcher::new(Arc::clone(&shared))?;
        Ok(Pipeline {
            shared,
            poller: Arc::new(poller),
            dispatcher: Arc::new(dispatcher),
            _lock: None,
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.shared.config
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(super) fn poller(&self) -> &Arc<Poller> {
        &self.poller
    }

    pub(super) fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// Polls `feed` once and records the outcome (or the failure) in the store.
    pub async fn poll(&self, feed: &Feed) -> Result<PollOutcome, PollError> {
        self.poller.poll(feed).await
    }

    /// Delivers every row due at `now`, once each. Tests call this to step the
    /// dispatcher without waiting for timers.
    pub async fn dispatch_due(&self, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        self.dispatcher.dispatch_due(now).await
    }

    /// Deletes what expired under the config's retention (as the running daemon does
    /// every hour); `None` when another instance sharing the database just did.
    pub async fn prune(&self) -> Result<Option<Pruned>, StoreError> {
        super::prune::prune(&self.shared).await
    }

    /// Tries the rules named `rules` on the items of the last 24 hours and queues
    /// alerts for what they match; how many were queued.
    pub async fn backfill(&self, rules: &HashSet<&str>) -> Result<usize, StoreError> {
        self.poller.backfill(rules).await
    }
}

/// How a command opens the configured store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// To run: created if needed, its schema brought up to date.
    Run,
    /// To change an existing state (`replay`); `None` if there is none yet.
    Existing,
    /// To read, writing nothing (`status`, `test-rules`); `None` if there is none yet.
    ReadOnly,
}

/// Opens the configured store: the PostgreSQL database of `[store]`, or the embedded
/// SQLite file in `daemon.state_dir`. A database is always there; a SQLite file
/// only once newshound ran (`None` before, unless `access` is `Run`).
pub async fn open_store(config: &Config, access: Access) -> Result<Option<Store>, StoreError> {
    let dir = &config.daemon.state_dir;
    match (&config.store, access) {
        (Some(shared), _) => {
            let password = shared.password.as_ref().map(|p| p.expose());
            let instance = instance_name(config);
            Store::connect(&shared.url, password, &instance)
                .await
                .map(Some)
        }
        (None, Access::Run) => Store::open(dir).await.map(Some),
        (None, Access::Existing) => Store::open_existing(dir).await,
        (None, Access::ReadOnly) => Store::open_read_only(dir).await,
    }
}

/// This instance's name among those sharing a database: `daemon.instance`, or the
/// host name and the process id.
pub fn instance_name(config: &Config) -> String {
    config.daemon.instance.clone().unwrap_or_else(|| {
        let host = hostname::get().map_or_else(
            |_| "newshound".to_owned(),
            |h| h.to_string_lossy().into_owned(),
        );
        format!("{host}-{}", std::process::id())
    })
}

/// Takes the state directory's lock (a second daemon on it is refused), opens the
/// configured store, and queues again the alerts a dead predecessor had claimed.
pub(super) async fn open_state(config: &Config) -> anyhow::Result<(StateLock, Arc<Store>)> {
    let lock = StateLock::acquire(&config.daemon.state_dir)?;
    let store = open_locked(config, &lock).await?;
    Ok((lock, store))
}

/// [`open_state`] once the lock is held.
pub(super) async fn open_locked(config: &Config, lock: &StateLock) -> anyhow::Result<Arc<Store>> {
    let store = open_store(config, Access::Run)
        .await
        .context("cannot open the state store")?
        .context("the state store is missing")?;
    let released = store.release_claims(lock).await?;
    if released > 0 {
        info!(
            released,
            "alerts claimed by a previous run are queued again"
        );
    }
    Ok(Arc::new(store))
}
