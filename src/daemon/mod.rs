//! Running the pipeline: polling feeds on their schedules, dispatching the outbox, and
//! shutting down within a bound. The only module that spawns tasks.

mod dispatch;
mod matching;
mod notices;
pub mod observe;
mod poll;
mod service;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

pub use dispatch::{DispatchReport, backoff};
pub use poll::{PollError, PollOutcome};
pub use service::{CONFIG_ERROR, Health, Loader, ServiceEvent, ServiceManager, serve};

use crate::config::{Config, Feed};
use crate::feed::Fetcher;
use crate::model::{FeedId, FeedSource};
use crate::notify::Notifier;
use crate::store::{FeedState, StateLock, Store, StoreError};

/// In-flight polls and deliveries get this long to finish after a shutdown request
/// (systemd's stop timeout in the unit is 20 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// The dispatcher looks at the outbox at least this often, even when nobody wakes it.
const DISPATCH_IDLE: Duration = Duration::from_secs(60);
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

/// Entries sharing a source are polled as often as the most eager of them asks.
fn group_interval(group: &[Feed]) -> Duration {
    group
        .iter()
        .map(|f| f.interval)
        .min()
        .unwrap_or(DISPATCH_IDLE)
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

/// Whether no feed of the group has ever been polled, by the states in `known`.
fn never_polled(known: &HashMap<FeedId, FeedState>, group: &[Feed]) -> bool {
    group
        .iter()
        .all(|feed| known.get(&feed.id).is_none_or(|s| s.last_attempt.is_none()))
}

/// When a feed polled before is next due after a restart: its last attempt plus its
/// interval or backoff, and not before the end of a Retry-After its server asked for,
/// so restarts neither bunch feeds together nor poll a backed-off feed early. A feed
/// never polled is due now.
fn first_wait(
    known: &HashMap<FeedId, FeedState>,
    feed: &Feed,
    max_backoff: Duration,
    now: DateTime<Utc>,
) -> Duration {
    let Some(state) = known.get(&feed.id) else {
        return Duration::ZERO;
    };
    match next_poll_at(state, feed.interval, max_backoff) {
        Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
        None => Duration::ZERO,
    }
}

/// When a feed in `state` is next due: its last attempt plus its interval or backoff,
/// or the end of its server's Retry-After if later; `None` if it was never polled.
pub fn next_poll_at(
    state: &FeedState,
    interval: Duration,
    max_backoff: Duration,
) -> Option<DateTime<Utc>> {
    let last = state.last_attempt?;
    let wait = next_poll_in(interval, state.consecutive_failures, None, max_backoff);
    let due = crate::model::later(last, wait);
    Some(state.retry_after_until.map_or(due, |until| due.max(until)))
}

/// Whether a feed has gone quiet: nothing new for more than `factor` times its usual
/// gap (the median gap between the polls that brought new items, newest first in
/// `times`). Fewer than four such polls tell too little, and say not stale.
pub fn is_stale(times: &[DateTime<Utc>], now: DateTime<Utc>, factor: u32) -> bool {
    if times.len() < 4 {
        return false;
    }
    let mut gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[0] - w[1]).num_seconds())
        .collect();
    gaps.sort_unstable();
    let usual = gaps[gaps.len() / 2].max(1);
    (now - times[0]).num_seconds() > usual.saturating_mul(i64::from(factor))
}

/// How long a feed waits before its next poll: its interval while it works; after
/// `failures` failed polls in a row, the interval doubled per further failure, but
/// never more than `max_backoff` (the feed is never given up); and never sooner than
/// the server's `Retry-After`, itself capped by `max_backoff`.
pub fn next_poll_in(
    interval: Duration,
    failures: u32,
    retry_after: Option<Duration>,
    max_backoff: Duration,
) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    let backoff = interval
        .saturating_mul(factor)
        .min(max_backoff.max(interval));
    backoff.max(retry_after.unwrap_or(Duration::ZERO).min(max_backoff))
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    #[test]
    fn a_feed_is_stale_after_several_usual_gaps_without_news() {
        let at = |h: i64| DateTime::from_timestamp(h * 3600, 0).expect("time");
        // New items every 2 hours, the last at hour 10.
        let times = [at(10), at(8), at(6), at(4), at(2)];
        assert!(!is_stale(&times, at(10 + 2 * 5), 5));
        assert!(is_stale(&times, at(10 + 2 * 5 + 1), 5));
        assert!(!is_stale(&times[..3], at(1000), 5), "too little history");
    }

    #[test]
    fn a_working_feed_waits_its_interval() {
        assert_eq!(next_poll_in(10 * MIN, 0, None, DAY), 10 * MIN);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let waits: Vec<u64> = (1..=10)
            .map(|f| next_poll_in(10 * MIN, f, None, DAY).as_secs() / 60)
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1280, 1440, 1440]);
        assert_eq!(next_poll_in(10 * MIN, u32::MAX, None, DAY), DAY);
    }

    #[test]
    fn an_interval_longer_than_the_cap_is_kept() {
        assert_eq!(next_poll_in(2 * DAY, 5, None, DAY), 2 * DAY);
    }

    /// A restart keeps each known feed's place in time; a new feed goes first.
    #[test]
    fn after_a_restart_known_feeds_keep_their_schedule() {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml = "[daemon]\nstate_dir = \"state\"\n\n[[feeds]]\nname = \"known\"\nurl = \"file:k.xml\"\n\
                    interval = \"10m\"\n\n[[feeds]]\nname = \"new\"\nurl = \"file:n.xml\"\ninterval = \"10m\"\n";
        let config =
            Config::from_toml(&dir.path().join("n.toml"), toml, &HashMap::new()).expect("config");
        let now = DateTime::from_timestamp(1_000_000, 0).expect("time");
        let state = FeedState {
            last_attempt: Some(now - chrono::Duration::seconds(30)),
            consecutive_failures: 2,
            ..FeedState::default()
        };
        let known_states = HashMap::from([(FeedId("known".into()), state)]);
        let (known, new) = (&config.feeds[0], &config.feeds[1]);
        // Two failures: 20 minutes after the last attempt, 30 s ago.
        let wait = first_wait(&known_states, known, DAY, now);
        assert_eq!(wait, Duration::from_secs(20 * 60 - 30));
        assert_eq!(first_wait(&known_states, new, DAY, now), Duration::ZERO);
        assert!(never_polled(&known_states, std::slice::from_ref(new)));
        assert!(!never_polled(&known_states, &config.feeds));
    }

    /// Regression: a restart polled a feed at once although its server had asked,
    /// with Retry-After, for an hour's rest.
    #[test]
    fn after_a_restart_a_stored_retry_after_is_still_honoured() {
        let now = DateTime::from_timestamp(1_000_000, 0).expect("time");
        let state = FeedState {
            last_attempt: Some(now - chrono::Duration::seconds(60)),
            consecutive_failures: 1,
            retry_after_until: Some(now + chrono::Duration::seconds(3540)),
            ..FeedState::default()
        };
        assert_eq!(
            next_poll_at(&state, 10 * MIN, DAY),
            Some(now + chrono::Duration::seconds(3540))
        );
        let short = FeedState {
            retry_after_until: Some(now - chrono::Duration::seconds(30)),
            ..state
        };
        assert_eq!(
            next_poll_at(&short, 10 * MIN, DAY),
            Some(now + chrono::Duration::seconds(540)),
            "a wait already over leaves the interval"
        );
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        assert_eq!(next_poll_in(MIN, 1, Some(30 * MIN), DAY), 30 * MIN);
        assert_eq!(next_poll_in(30 * MIN, 1, Some(MIN), DAY), 30 * MIN);
        assert_eq!(next_poll_in(MIN, 1, Some(7 * DAY), DAY), DAY);
    }
}
