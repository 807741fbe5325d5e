//! Running the pipeline: polling feeds on their schedules, dispatching the outbox, and
//! shutting down within a bound. The only module that spawns tasks.
//!
//! Where each concern lives: this file holds the shared [`Pipeline`], `once` and `run`;
//! `poll` one poll of one feed; `matching` which alerts an item causes; `notices` what
//! is said about feeds besides alerts (outcomes, broken, floods, moves); `schedule`
//! when a feed is polled next; `dispatch` the outbox (digests, rate limits, retries);
//! `service` reloads and systemd; `health` liveness; `observe` `/metrics`, `/healthz`
//! and the snapshot of the state they report.

mod dispatch;
mod health;
mod matching;
mod notices;
pub mod observe;
mod poll;
mod schedule;
mod service;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

pub use dispatch::{DispatchReport, backoff};
pub use health::Health;
pub use poll::{PollError, PollOutcome};
use schedule::{first_wait, group_interval, never_polled};
pub use schedule::{is_stale, next_poll_at, next_poll_in};
pub use service::{CONFIG_ERROR, Loader, ServiceEvent, ServiceManager, serve};

use crate::config::{Config, Feed};
use crate::feed::Fetcher;
use crate::model::{FeedId, FeedSource};
use crate::notify::Notifier;
use crate::store::{FeedState, StateLock, Store, StoreError};

/// In-flight polls and deliveries get this long to finish after a shutdown request
/// (systemd's stop timeout in the unit is 20 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// The dispatcher looks at the outbox at least this often, even when nobody wakes it.
pub(super) const DISPATCH_IDLE: Duration = Duration::from_secs(60);
/// Feeds never polled before (at start, or added by a reload) are all fetched within
/// this long, spread evenly: prompt for a new user, no burst for a new list of 1,000.
const NEW_FEEDS_WITHIN: Duration = Duration::from_secs(10);

/// Everything a poll or a delivery needs, shared by all tasks.
pub struct Pipeline {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    fetcher: Fetcher,
    notifier: Notifier,
    /// Woken when new alerts are queued, so the dispatcher sends them at once.
    outbox_changed: Notify,
    /// Bounds how many feeds are fetched at the same time.
    fetch_slots: Semaphore,
    /// Bounds parsing and matching, which run on blocking threads, to one per core.
    cpu_slots: Semaphore,
    /// Bounds, per host, how many of its feeds are fetched at the same time, so 300
    /// feeds of one site do not hammer it.
    host_slots: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Feeds whose permanent move has been logged, so it is said once per run.
    announced_moves: std::sync::Mutex<HashSet<FeedId>>,
    /// Liveness for the watchdog and `/healthz`, shared across reloads.
    health: Arc<Health>,
    /// Messages each channel sent in the last minute (`max_per_minute`), shared
    /// across reloads.
    rate: Arc<dispatch::RateWindow>,
    /// Per channel, bounds the messages on their way at once (`max_in_flight`).
    in_flight: HashMap<String, Semaphore>,
    /// The state directory's lock, when this pipeline opened the store itself.
    lock: Option<StateLock>,
}

impl Pipeline {
    /// Opens the store in the configured state directory and sets up the transports.
    /// Holds the state directory's lock for as long as the pipeline lives, so a second
    /// daemon on the same directory refuses to start; alerts a dead predecessor had
    /// claimed go back to the queue.
    pub async fn new(config: Config) -> anyhow::Result<Pipeline> {
        let (lock, store) = open_state(&config.daemon.state_dir).await?;
        let mut pipeline = Pipeline::with_store(config, store)?;
        pipeline.lock = Some(lock);
        Ok(pipeline)
    }

    pub fn with_store(config: Config, store: Arc<Store>) -> anyhow::Result<Pipeline> {
        let fetcher = Fetcher::new(config.daemon.fetch_timeout, config.daemon.max_feed_bytes)
            .context("cannot set up the HTTP client")?;
        let notifier = Notifier::new(&config).context("cannot set up the alert channels")?;
        let in_flight = config
            .channels
            .iter()
            .map(|(name, channel)| (name.clone(), Semaphore::new(channel.max_in_flight)))
            .collect();
        Ok(Pipeline {
            in_flight,
            fetch_slots: Semaphore::new(config.daemon.max_concurrent_fetches),
            cpu_slots: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            host_slots: std::sync::Mutex::new(HashMap::new()),
            announced_moves: std::sync::Mutex::new(HashSet::new()),
            config: Arc::new(config),
            store,
            fetcher,
            notifier,
            outbox_changed: Notify::new(),
            health: Arc::new(Health::default()),
            rate: Arc::default(),
            lock: None,
        })
    }

    /// Polls a group of feeds sharing a source, timed for `/metrics`.
    async fn poll_timed(
        &self,
        group: &[Feed],
    ) -> Result<Vec<Result<PollOutcome, PollError>>, StoreError> {
        let Some(first) = group.first() else {
            return Ok(Vec::new());
        };
        let started = std::time::Instant::now();
        // Boxed: a feed's task sleeps most of its life, and should not keep a whole
        // poll's worth of state while it does.
        let results = Box::pin(self.poll_group(group))
            .instrument(info_span!("fetch", source = %first.source))
            .await;
        metrics::histogram!(observe::POLL_SECONDS).record(started.elapsed().as_secs_f64());
        results
    }
}

impl Pipeline {
    /// The semaphore of the feed's host; files have none.
    fn host_slot(&self, feed: &Feed) -> Option<Arc<Semaphore>> {
        let FeedSource::Http(url) = &feed.source else {
            return None;
        };
        let host = url.host_str()?.to_ascii_lowercase();
        // Poisoning cannot leave the map inconsistent: inserts are single calls.
        let mut slots = self.host_slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.daemon.max_fetches_per_host)));
        Some(Arc::clone(slot))
    }
}

/// Takes the state directory's lock (a second daemon is refused), opens the store, and
/// queues again the alerts a dead predecessor had claimed.
async fn open_state(state_dir: &std::path::Path) -> anyhow::Result<(StateLock, Arc<Store>)> {
    let lock = StateLock::acquire(state_dir)?;
    let store = Store::open(state_dir)
        .await
        .context("cannot open the state store")?;
    let released = store.release_claims(&lock).await?;
    if released > 0 {
        info!(
            released,
            "alerts claimed by a previous run are queued again"
        );
    }
    Ok((lock, Arc::new(store)))
}

/// What `once` did, for its summary line and exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnceReport {
    pub feeds_ok: usize,
    pub feeds_failed: usize,
    pub new_items: usize,
    pub alerts: usize,
    pub delivery: DispatchReport,
}

/// Polls every feed once (bounded concurrency), then delivers what is due.
pub async fn once(pipeline: Arc<Pipeline>) -> anyhow::Result<OnceReport> {
    let tasks = TaskTracker::new();
    let mut handles = Vec::new();
    // Polls are started ahead of the fetch slots, but not all at once: 10,000 feeds
    // would otherwise hold 10,000 polls' state while they wait. Far enough ahead that
    // polls waiting for their group commit (tens of ms) never leave a slot idle.
    let ahead = Arc::new(Semaphore::new(
        pipeline
            .config
            .daemon
            .max_concurrent_fetches
            .saturating_mul(32),
    ));
    for group in by_source(&pipeline.config.feeds) {
        let p = Arc::clone(&pipeline);
        let turn = Arc::clone(&ahead)
            .acquire_owned()
            .await
            .context("the poll queue closed")?;
        handles.push(tasks.spawn(async move {
            let _turn = turn;
            p.poll_timed(&group).await
        }));
    }
    tasks.close();
    let mut report = OnceReport::default();
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
    report.delivery = pipeline
        .dispatch_due(Utc::now())
        .await
        .context("cannot read the outbox")?;
    Ok(report)
}

/// The feeds grouped by source, in config order: entries with the same URL are
/// fetched once.
pub fn by_source(feeds: &[Feed]) -> Vec<Vec<Feed>> {
    let mut groups: Vec<Vec<Feed>> = Vec::new();
    for feed in feeds {
        match groups.iter_mut().find(|g| g[0].source == feed.source) {
            Some(group) => group.push(feed.clone()),
            None => groups.push(vec![feed.clone()]),
        }
    }
    groups
}

/// Runs until `shutdown` is cancelled: every feed on its own interval, the dispatcher
/// in between. On shutdown, in-flight work gets [`SHUTDOWN_GRACE`] to finish; whatever
/// is cut short is still in the store and resumes at the next start.
pub async fn run(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tasks = TaskTracker::new();
    let counts = pipeline.store.outbox_counts().await?;
    info!(
        feeds = pipeline.config.feeds.len(),
        rules = pipeline.config.rules.len(),
        pending_alerts = counts.pending,
        "newshound running"
    );
    let known: HashMap<FeedId, FeedState> = pipeline
        .store
        .feed_states()
        .await?
        .into_iter()
        .map(|(id, state, _)| (id, state))
        .collect();
    let groups = by_source(&pipeline.config.feeds);
    // Feeds never polled before are fetched within the first seconds (spread evenly
    // over NEW_FEEDS_WITHIN, under the usual limits), so a new user sees them work;
    // known feeds keep their stored schedule.
    let new_count = groups.iter().filter(|g| never_polled(&known, g)).count();
    let mut new_index = 0;
    let now = Utc::now();
    for group in groups {
        let (first, failures) = if never_polled(&known, &group) {
            new_index += 1;
            let spread = NEW_FEEDS_WITHIN.min(group_interval(&group));
            (spread.mul_f64((new_index - 1) as f64 / new_count as f64), 0)
        } else {
            let daemon = &pipeline.config.daemon;
            let waits = group
                .iter()
                .map(|feed| first_wait(&known, feed, daemon.max_backoff, now));
            let failures = group
                .iter()
                .filter_map(|feed| known.get(&feed.id))
                .map(|s| s.consecutive_failures)
                .max()
                .unwrap_or(0);
            (waits.min().unwrap_or(Duration::ZERO), failures)
        };
        let p = Arc::clone(&pipeline);
        let stop = shutdown.clone();
        tasks.spawn(async move { poll_forever(p, group, first, failures, stop).await });
    }
    {
        let p = Arc::clone(&pipeline);
        let stop = shutdown.clone();
        tasks.spawn(async move { dispatch_forever(p, stop).await });
    }
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

/// Polls a group of feeds (one source) until shutdown: first after `wait`, then on its
/// interval. `failures` is how many of its polls in a row had failed before.
async fn poll_forever(
    pipeline: Arc<Pipeline>,
    group: Vec<Feed>,
    mut wait: Duration,
    mut failures: u32,
    shutdown: CancellationToken,
) {
    let interval = group_interval(&group);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        // A poll in progress is not abandoned on shutdown: `run` waits for it (bounded).
        // Its failures are recorded and logged inside.
        let (interval, retry_after) = match pipeline.poll_timed(&group).await {
            Ok(results) => {
                let failed = results.iter().any(Result::is_err);
                failures = if failed {
                    failures.saturating_add(1)
                } else {
                    0
                };
                after_poll(&pipeline, interval, &results)
            }
            Err(e) => {
                warn!(error = %e, "cannot read feed state; trying again next interval");
                (interval, None)
            }
        };
        let base = next_poll_in(
            interval,
            failures,
            retry_after,
            pipeline.config.daemon.max_backoff,
        );
        // ±10% so that feeds with the same interval drift apart instead of firing together.
        wait = base.mul_f64(0.9 + 0.2 * fastrand::f64());
    }
}

/// What the next poll of a group depends on besides its failures: its interval
/// (lengthened if the publisher asks, up to a cap) and the server's Retry-After.
fn after_poll(
    pipeline: &Pipeline,
    interval: Duration,
    results: &[Result<PollOutcome, PollError>],
) -> (Duration, Option<Duration>) {
    match results.iter().find_map(|r| r.as_ref().err()) {
        None => {
            let asked = results
                .iter()
                .filter_map(|r| r.as_ref().ok()?.publisher_interval)
                .max()
                .unwrap_or(Duration::ZERO);
            let cap = pipeline.config.daemon.max_publisher_interval;
            (interval.max(asked.min(cap)), None)
        }
        Some(PollError::Fetch(fetch)) => (interval, fetch.retry_after()),
        Some(_) => (interval, None),
    }
}

async fn dispatch_forever(pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    loop {
        pipeline.health.tick();
        let dispatched = pipeline
            .dispatch_due(Utc::now())
            .instrument(info_span!("dispatch"))
            .await;
        // A store error (disk full, locked) is logged and retried; alerts stay queued.
        let next_due = match dispatched {
            Ok(_) => pipeline.store.next_due().await,
            Err(e) => Err(e),
        };
        let until_next = match next_due {
            Ok(next) => next
                .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(DISPATCH_IDLE)
                .min(DISPATCH_IDLE),
            Err(e) => {
                warn!(error = %e, "cannot read the outbox; trying again");
                DISPATCH_IDLE
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = pipeline.outbox_changed.notified() => {}
            () = tokio::time::sleep(until_next) => {}
        }
    }
}
