//! Running the pipeline: polling feeds on their schedules, dispatching the outbox, and
//! shutting down within a bound. The only module that spawns tasks.
//!
//! Where each concern lives, leaves first (a test checks that no file imports one
//! that imports it back): `clock` the time; `outcome` what a poll did; `schedule` when
//! a feed is polled next, the one backoff, and the loop that polls a source by turns;
//! `health` liveness; `metrics` what is counted; `matching` which alerts an item
//! causes; `shared` the context of one config (config, store, health, clock) and what
//! outlives a reload; `notices` what is said about feeds besides alerts (outcomes,
//! broken, floods); `flood` what a poll that is a flood queues and holds;
//! `poll` the [`Poller`]; `prune` what expired and when to delete it; `plan` what a dispatch pass does with the rows it claimed
//! (digests, quiet hours, rate limits); `dispatch` the [`Dispatcher`] of the outbox
//! (claims, sends, retries); `pipeline` one config's poller and dispatcher;
//! `snapshot` the [`Snapshot`] every status reader reads; `observe` serves the
//! metrics on `/metrics` beside `/healthz` and the status page;
//! `service` reloads and the service manager. This file holds `once`, `run` and
//! `serve`, which start the tasks.

mod article;
mod clock;
mod dispatch;
mod feedback;
mod flood;
mod health;
mod learning;
mod matching;
mod metrics;
mod notices;
pub mod observe;
mod outcome;
mod page;
mod pipeline;
mod plan;
mod poll;
mod prune;
mod schedule;
mod service;
mod shared;
mod slots;
mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use clock::Clock;
pub use dispatch::{DispatchReport, Dispatcher, backoff};
pub use health::Health;
pub use learning::taught;
pub use outcome::{PollError, PollOutcome};
pub use pipeline::{Access, Pipeline, instance_name, open_store};
pub use poll::Poller;
pub use schedule::{by_source, group_due_at, group_interval, is_stale, next_poll_in};
pub use service::{Loader, ServiceEvent, ServiceManager};
pub use shared::Lasting;
pub use snapshot::{CONFIG_ERROR, FeedReport, RuleReport, Scope, Snapshot};

use crate::config::Config;
use crate::model::FeedId;
use crate::store::{FeedState, StateLock, Store};

/// In-flight polls and deliveries get this long to finish after a shutdown request
/// (systemd's stop timeout in the unit is 20 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// What `once` did, for its summary line and exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnceReport {
    pub feeds_ok: usize,
    pub feeds_failed: usize,
    /// Feeds not polled because their server asked to wait (`Retry-After`), and until
    /// when.
    pub skipped: Vec<(String, DateTime<Utc>)>,
    pub new_items: usize,
    pub alerts: usize,
    pub delivery: DispatchReport,
}

/// Polls every feed once (bounded concurrency), except those whose server asked to
/// wait longer, delivers what is due (from the first alert queued on) and prunes what
/// expired.
pub async fn once(pipeline: Arc<Pipeline>) -> anyhow::Result<OnceReport> {
    let now = pipeline.clock().now();
    pipeline
        .shared()
        .learning
        .refresh(pipeline.store())
        .await
        .context("cannot read what feedback taught the rules")?;
    let waits: HashMap<FeedId, DateTime<Utc>> = pipeline
        .store()
        .feed_states()
        .await
        .context("cannot read the feeds' state")?
        .into_iter()
        .filter_map(|(id, state, _)| Some((id, state.retry_after_until.filter(|u| *u > now)?)))
        .collect();
    let mut report = OnceReport::default();
    let tasks = TaskTracker::new();
    let polls_done = CancellationToken::new();
    // Whichever way the polls end, the dispatcher is told.
    let _end = polls_done.clone().drop_guard();
    let dispatcher = Arc::clone(pipeline.dispatcher());
    let delivering = tasks.spawn({
        let done = polls_done.clone();
        async move { dispatcher.dispatch_until(done).await }
    });
    let mut handles = Vec::new();
    // Polls are started ahead of the fetch slots, but not all at once: 10,000 feeds
    // would otherwise hold 10,000 polls' state while they wait. Far enough ahead that
    // polls waiting for their group commit (tens of ms) never leave a slot idle.
    let ahead = Arc::new(Semaphore::new(
        pipeline
            .config()
            .daemon
            .max_concurrent_fetches
            .saturating_mul(32),
    ));
    for group in by_source(&pipeline.config().feeds) {
        let asked_to_wait: Vec<(String, DateTime<Utc>)> = group
            .iter()
            .filter_map(|f| Some((f.id.0.clone(), *waits.get(&f.id)?)))
            .collect();
        if !asked_to_wait.is_empty() {
            report.skipped.extend(asked_to_wait);
            continue;
        }
        let poller = Arc::clone(pipeline.poller());
        let turn = Arc::clone(&ahead)
            .acquire_owned()
            .await
            .context("the poll queue closed")?;
        handles.push(tasks.spawn(async move {
            let _turn = turn;
            poller.poll_timed(&group).await
        }));
    }
    tasks.close();
    for handle in handles {
        let results = handle
            .await
            .context("a poll task panicked")?
            .context("cannot read the state of a feed")?;
        for result in results {
            match result {
                Ok(outcome) => {
                    report.feeds_ok += 1;
                    report.new_items += outcome.new_items;
                    report.alerts += outcome.alerts;
                }
                Err(PollError::Store(e)) => return Err(e).context("cannot record a poll"),
                Err(_) => report.feeds_failed += 1,
            }
        }
    }
    polls_done.cancel();
    report.delivery = delivering
        .await
        .context("the dispatch task panicked")?
        .context("cannot read the outbox")?;
    // From cron, `once` is the only thing that runs: it keeps the state bounded too.
    if let Err(e) = pipeline.prune().await {
        warn!(error = %e, "cannot prune the state; trying again at the next run");
    }
    Ok(report)
}

/// Runs until `shutdown` is cancelled: every feed on its own interval, the dispatcher
/// in between. On shutdown, in-flight work gets [`SHUTDOWN_GRACE`] to finish; whatever
/// is cut short is still in the store and resumes at the next start.
pub async fn run(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tasks = TaskTracker::new();
    let (config, store) = (pipeline.config(), pipeline.store());
    let counts = store.outbox_counts().await?;
    info!(
        feeds = config.feeds.len(),
        rules = config.rules.len(),
        pending_alerts = counts.pending,
        "newshound running"
    );
    for warning in config.warnings() {
        warn!("{warning}");
    }
    if let Some(model) = &config.semantic {
        let info = model.info();
        info!(
            model = %info.name,
            kind = info.kind,
            dims = info.dims,
            load_ms = info.load_time.as_millis() as u64,
            "topic rules use this semantic model"
        );
    }
    let known: HashMap<FeedId, FeedState> = store
        .feed_states()
        .await?
        .into_iter()
        .map(|(id, state, _)| (id, state))
        .collect();
    for (group, first, failures) in schedule::first_polls(config, &known, pipeline.clock().now()) {
        let poller = Arc::clone(pipeline.poller());
        let stop = shutdown.clone();
        tasks.spawn(async move { poller.poll_forever(group, first, failures, stop).await });
    }
    let dispatcher = Arc::clone(pipeline.dispatcher());
    let stop = shutdown.clone();
    tasks.spawn(async move { dispatcher.run(stop).await });
    tasks.spawn(prune::prune_forever(
        Arc::clone(pipeline.shared()),
        shutdown.clone(),
    ));
    tasks.close();
    shutdown.cancelled().await;
    tracing::debug!("scheduler stopping");
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        warn!(grace = ?SHUTDOWN_GRACE, "in-flight work did not finish in time; it resumes at the next start");
    }
    Ok(())
}

/// One config's poll and dispatch tasks.
struct Generation {
    pipeline: Arc<Pipeline>,
    stop: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Generation {
    fn start(pipeline: Pipeline, parent: &CancellationToken) -> Generation {
        let pipeline = Arc::new(pipeline);
        let stop = parent.child_token();
        let running = tokio::spawn(run(Arc::clone(&pipeline), stop.clone()));
        Generation {
            pipeline,
            stop,
            running,
        }
    }

    /// Stops polling and dispatching; in-flight work gets the shutdown grace.
    async fn finish(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.running.await.context("the scheduler task panicked")?
    }
}

/// A database not answering at start-up is tried again after this, then twice as
/// long each time, up to [`MAX_START_WAIT`].
const FIRST_START_WAIT: Duration = Duration::from_secs(1);
const MAX_START_WAIT: Duration = Duration::from_secs(60);

/// Opens the state under `lock`; a database that does not answer yet (PostgreSQL
/// starting with the machine) is tried again with backoff, the service manager told
/// why, until `shutdown` (`None` then).
async fn open_waiting(
    config: &Config,
    lock: &StateLock,
    manager: &dyn ServiceManager,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<Store>>> {
    let mut wait = FIRST_START_WAIT;
    loop {
        match pipeline::open_locked(config, lock).await {
            Err(e) if config.store.is_some() => {
                let status = format!(
                    "waiting for the database: {e:#}; next try in {}",
                    humantime::format_duration(wait)
                );
                warn!("{status}");
                manager.notify(ServiceEvent::Status(&status));
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(MAX_START_WAIT);
            }
            opened => return opened.map(Some),
        }
    }
}

/// Runs the daemon as a service until `shutdown`: holds the state directory's lock,
/// starts a generation of tasks on `config`, and on each message from `reloads` (its
/// cause, for the log) loads the config again and, when it is valid and different,
/// swaps in a new generation without losing state.
pub async fn serve(
    config: Config,
    load: Loader,
    mut reloads: mpsc::Receiver<&'static str>,
    manager: Arc<dyn ServiceManager>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let lock = StateLock::acquire(&config.daemon.state_dir)?;
    let Some(store) = open_waiting(&config, &lock, &*manager, &shutdown).await? else {
        return Ok(());
    };
    let lasting = Lasting::new(store, Clock::system());
    // The config just loaded is valid: whatever an earlier run refused is moot.
    lasting
        .store
        .set_note(CONFIG_ERROR, None, lasting.clock.now())
        .await?;
    lasting.health.tick();
    refresh_learning(&lasting).await;
    heartbeat_to_others(&lasting, &config).await;
    let running: observe::Running = Arc::new(RwLock::new(Arc::new(config.clone())));
    let metrics = match config.daemon.listen {
        Some(addr) => {
            let (lasting, running) = (lasting.clone(), Arc::clone(&running));
            Some(observe::start(addr, lasting, running, shutdown.clone()).await?)
        }
        None => None,
    };
    let build = |config: Config| Pipeline::build(config, &lasting);
    let mut current = Generation::start(build(config)?, &shutdown);
    manager.notify(ServiceEvent::Ready);

    let beat = manager.watchdog().map_or(service::STATUS_EVERY, |w| {
        (w / 2).min(service::STATUS_EVERY)
    });
    let mut heartbeat = tokio::time::interval(beat);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(cause) = reloads.recv() => {
                // An editor's save comes as several events: take them as one.
                tokio::time::sleep(service::SETTLE).await;
                while reloads.try_recv().is_ok() {}
                manager.notify(ServiceEvent::Reloading);
                let old = Arc::clone(current.pipeline.config());
                if let Some((next, diff)) = service::reload(&old, &load, &build, cause, &lasting).await {
                    current.finish().await?;
                    current = Generation::start(next, &shutdown);
                    *running.write().unwrap_or_else(|p| p.into_inner()) =
                        Arc::clone(current.pipeline.config());
                    service::backfill_new_rules(&diff, &current.pipeline).await;
                    // The other instances see the new config's fingerprint at once.
                    heartbeat_to_others(&lasting, current.pipeline.config()).await;
                }
                manager.notify(ServiceEvent::Ready);
            }
            _ = heartbeat.tick() => {
                let config = current.pipeline.config();
                if lasting.health.scheduler().is_ok() {
                    manager.notify(ServiceEvent::Watchdog);
                }
                // One read of the store for both the gauges and the STATUS line.
                let read = Snapshot::read(config, &lasting.store, lasting.clock.now()).await;
                if let (Some(_), Ok(snapshot)) = (&metrics, &read) {
                    observe::refresh(snapshot);
                }
                let summary = service::summary(config, &lasting, &read.unwrap_or_default());
                manager.notify(ServiceEvent::Status(&summary));
                heartbeat_to_others(&lasting, config).await;
                refresh_learning(&lasting).await;
            }
        }
    }
    manager.notify(ServiceEvent::Stopping);
    info!("shutting down");
    let finished = current.finish().await;
    if let Err(e) = lasting.store.leave().await {
        warn!(error = %e, "cannot tell the other instances this one stops");
    }
    finished
}

/// Reads what feedback taught the rules again: another instance sharing the database
/// may have learned something.
async fn refresh_learning(lasting: &Lasting) {
    if let Err(e) = lasting.learning.refresh(&lasting.store).await {
        warn!(error = %e, "cannot read what feedback taught the rules; trying again later");
    }
}

/// Tells the instances sharing the database that this one is alive, and with which
/// config.
async fn heartbeat_to_others(lasting: &Lasting, config: &Config) {
    let now = lasting.clock.now();
    if let Err(e) = lasting.store.heartbeat(config.fingerprint(), now).await {
        warn!(error = %e, "cannot tell the other instances this one is alive");
    }
}
