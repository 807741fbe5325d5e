//! When a feed is polled next: its interval, backoff after failures, the server's
//! Retry-After, and a schedule kept across restarts; the loop that polls a source by
//! turns with the other instances; when a feed is stale.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::clock::Clock;
use super::outcome::{PollError, PollOutcome};
use crate::config::{Config, Daemon, Feed};
use crate::model::{FeedId, later};
use crate::store::{FeedState, PollClaim, Store, StoreError};

/// The dispatcher looks at the outbox at least this often, even when nobody wakes it.
pub const DISPATCH_IDLE: Duration = Duration::from_secs(60);
/// Feeds never polled before (at start, or added by a reload) are all fetched within
/// this long, spread evenly: prompt for a new user, no burst for a new list of 1,000.
const NEW_FEEDS_WITHIN: Duration = Duration::from_secs(10);
/// How long a poll claimed by an instance is its own, at least: one that died
/// mid-poll leaves the source to the others after this long.
const POLL_LEASE: Duration = Duration::from_secs(60);
/// A poll the store could not record (down, locked) is tried again this soon, then
/// twice as long each time up to the feed's interval.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// What one poll of a group of feeds gave: each entry's outcome or failure, in the
/// group's order; an error of the store itself fails the whole group.
pub(super) type GroupPoll = Result<Vec<Result<PollOutcome, PollError>>, StoreError>;

/// What polling a source by turns needs: the store, where instances sharing a
/// database take their turns and say when the source is next due; the clock; and the
/// daemon's settings.
pub(super) struct Turns<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub daemon: &'a Daemon,
}

impl Turns<'_> {
    /// Polls a group of feeds (one source) until `shutdown`, each time calling `poll`:
    /// first after `wait`, then on its interval. `failures` is how many of its polls in
    /// a row had failed before.
    pub async fn poll_forever<Polled: Future<Output = GroupPoll>>(
        &self,
        group: &[Feed],
        mut wait: Duration,
        mut failures: u32,
        shutdown: CancellationToken,
        poll: impl Fn() -> Polled,
    ) {
        let interval = group_interval(group);
        // Every feed of a group is read from one source.
        let floor = group
            .first()
            .map_or(interval, |f| crate::config::min_interval(&f.source));
        let mut halvings = 0;
        let source = group
            .first()
            .map(|f| f.source.to_string())
            .unwrap_or_default();
        let mut unrecorded_wait = STORE_RETRY;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            // Instances sharing a database poll a source by turns.
            if let Some(later) = self.claim(&source).await {
                wait = later;
                continue;
            }
            // A poll in progress is not abandoned on shutdown: `run` waits for it
            // (bounded). Its failures are recorded and logged inside.
            let polled = poll().await;
            if !recorded(&polled) {
                // Not the feed's failure: it does not back off, and what it published
                // meanwhile is fetched again soon after the store answers (sooner
                // than its interval, never more often than every STORE_RETRY).
                if let Err(e) = &polled {
                    warn!(error = %e, "cannot read feed state; trying again soon");
                }
                wait = unrecorded_wait;
                unrecorded_wait = (unrecorded_wait * 2).min(interval.max(STORE_RETRY));
                continue;
            }
            unrecorded_wait = STORE_RETRY;
            let results = polled.unwrap_or_default();
            failures = if results.iter().any(Result::is_err) {
                failures.saturating_add(1)
            } else {
                0
            };
            let next = after_poll(
                interval,
                &results,
                self.daemon.max_publisher_interval,
                floor,
                halvings,
            );
            halvings = next.halvings;
            let base = next_poll_in(
                next.interval,
                failures,
                next.retry_after,
                self.daemon.max_backoff,
            );
            // ±10% so that feeds with the same interval drift apart instead of firing
            // together.
            wait = base.mul_f64(0.9 + 0.2 * fastrand::f64());
            let next_due = later(self.clock.now(), wait);
            if let Err(e) = self.store.poll_done(&source, next_due).await {
                warn!(error = %e, "cannot record when the feed is next due");
            }
        }
    }

    /// Claims the poll of `source` for this instance; `None` when it may poll now,
    /// else how long to wait before asking again (another instance polls it, or polled
    /// it and set when it is next due).
    async fn claim(&self, source: &str) -> Option<Duration> {
        let now = self.clock.now();
        let lease = POLL_LEASE.max(self.daemon.fetch_timeout * 2);
        match self.store.claim_poll(source, now, lease).await {
            Ok(PollClaim::Granted) => None,
            // A moment more, so that instances asking again do not all ask at once.
            Ok(PollClaim::Later(at)) => Some(
                (at - now).to_std().unwrap_or(Duration::ZERO)
                    + Duration::from_millis(fastrand::u64(0..1000)),
            ),
            Err(e) => {
                warn!(error = %e, "cannot claim the feed's poll; trying again soon");
                Some(STORE_RETRY)
            }
        }
    }
}

/// Whether the store recorded a poll: it read the feeds' state, and kept what each
/// poll found.
fn recorded(polled: &GroupPoll) -> bool {
    polled.as_ref().is_ok_and(|results| {
        !results
            .iter()
            .any(|r| matches!(r, Err(PollError::Store(_))))
    })
}

/// What the next poll of a group depends on besides its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Next {
    /// Its interval: the configured one, halved after gaps, lengthened if the
    /// publisher asks.
    interval: Duration,
    /// The server's Retry-After, when a fetch failed with one.
    retry_after: Option<Duration>,
    /// How many times its interval is halved: one more after each poll that found a
    /// gap (while the result stays at `floor` or above), one fewer after each poll
    /// that did not.
    halvings: u32,
}

/// When a group polled every `interval` (halved `halvings` times after gaps, never
/// below `floor`) is polled next, after `results`. The precedence, from the weakest:
/// the interval; halved after a gap, to catch up with a feed that publishes more than
/// it keeps; the publisher's TTL or `max-age`, up to `cap` (a gap does not poll a
/// publisher more often than it asks); the server's Retry-After after a failure
/// (applied by [`next_poll_in`], which also backs off).
fn after_poll(
    interval: Duration,
    results: &[Result<PollOutcome, PollError>],
    cap: Duration,
    floor: Duration,
    halvings: u32,
) -> Next {
    let hurried = |halvings: u32| {
        let shorter = interval / 2u32.saturating_pow(halvings);
        (shorter >= floor).then_some(shorter)
    };
    let outcomes = results.iter().map(|r| r.as_ref().ok());
    match results.iter().find_map(|r| r.as_ref().err()) {
        None => {
            let gap = outcomes.clone().flatten().any(|o| o.gap);
            let halvings = match gap {
                true if hurried(halvings + 1).is_some() => halvings + 1,
                true => halvings,
                false => halvings.saturating_sub(1),
            };
            let asked = outcomes
                .flatten()
                .filter_map(|o| o.publisher_interval)
                .max()
                .unwrap_or(Duration::ZERO);
            Next {
                interval: hurried(halvings).unwrap_or(interval).max(asked.min(cap)),
                retry_after: None,
                halvings,
            }
        }
        Some(failed) => Next {
            interval: hurried(halvings).unwrap_or(interval),
            retry_after: match failed {
                PollError::Fetch(fetch) => fetch.retry_after(),
                _ => None,
            },
            halvings,
        },
    }
}

/// The feeds grouped by source, in config order: entries with the same URL are
/// fetched once.
pub fn by_source(feeds: &[Feed]) -> Vec<Vec<Feed>> {
    grouped(feeds)
        .into_iter()
        .map(|group| group.into_iter().cloned().collect())
        .collect()
}

/// As [`by_source`], borrowed. Linear in the number of feeds (100,000 are grouped in
/// milliseconds).
pub fn grouped(feeds: &[Feed]) -> Vec<Vec<&Feed>> {
    let mut groups: Vec<Vec<&Feed>> = Vec::new();
    let mut group_of: HashMap<&crate::model::FeedSource, usize> = HashMap::new();
    for feed in feeds {
        match group_of.get(&feed.source) {
            Some(&i) => groups[i].push(feed),
            None => {
                group_of.insert(&feed.source, groups.len());
                groups.push(vec![feed]);
            }
        }
    }
    groups
}

/// When each group of `config` is first polled after a start, and how many of its
/// polls in a row had failed before. Feeds never polled are fetched within the first
/// seconds (spread evenly over [`NEW_FEEDS_WITHIN`], under the usual limits), so a new
/// user sees them work; known feeds keep their stored schedule.
pub(super) fn first_polls(
    config: &Config,
    known: &HashMap<FeedId, FeedState>,
    now: DateTime<Utc>,
) -> Vec<(Vec<Feed>, Duration, u32)> {
    let groups = by_source(&config.feeds);
    let new_count = groups.iter().filter(|g| never_polled(known, g)).count();
    // Each process takes the new feeds in an order of its own: instances sharing a
    // database, started together, then share the first round evenly instead of the
    // first one started claiming nearly all of it.
    let mut places: Vec<usize> = (0..new_count).collect();
    fastrand::shuffle(&mut places);
    let mut places = places.into_iter();
    let mut planned = Vec::with_capacity(groups.len());
    for group in groups {
        let (first, failures) = if never_polled(known, &group) {
            let place = places.next().unwrap_or(0);
            let spread = NEW_FEEDS_WITHIN.min(group_interval(&group));
            (spread.mul_f64(place as f64 / new_count as f64), 0)
        } else {
            let max_backoff = config.daemon.max_backoff;
            let failures = group
                .iter()
                .filter_map(|feed| known.get(&feed.id))
                .map(|s| s.consecutive_failures)
                .max()
                .unwrap_or(0);
            let due = group_due_at(&group, known, max_backoff, now);
            let wait = (due - now).to_std().unwrap_or(Duration::ZERO);
            (wait, failures)
        };
        planned.push((group, first, failures));
    }
    planned
}

/// Entries sharing a source are polled as often as the most eager of them asks.
pub fn group_interval(group: &[impl Borrow<Feed>]) -> Duration {
    group
        .iter()
        .map(|f| f.borrow().interval)
        .min()
        .unwrap_or(DISPATCH_IDLE)
}

/// Whether no feed of the group has ever been polled, by the states in `known`.
pub(super) fn never_polled(known: &HashMap<FeedId, FeedState>, group: &[Feed]) -> bool {
    group
        .iter()
        .all(|feed| known.get(&feed.id).is_none_or(|s| s.last_attempt.is_none()))
}

/// When a group of feeds sharing a source is next due, by its members' stored states:
/// the earliest of their last attempts plus the group's interval or backoff, and not
/// before the end of a Retry-After the server asked for; `now` when a member was never
/// polled. A restart uses it to keep each feed's place in time, and `status` shows it.
pub fn group_due_at(
    group: &[impl Borrow<Feed>],
    known: &HashMap<FeedId, FeedState>,
    max_backoff: Duration,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let interval = group_interval(group);
    group
        .iter()
        .map(|feed| {
            known
                .get(&feed.borrow().id)
                .and_then(|state| next_poll_at(state, interval, max_backoff))
                .unwrap_or(now)
        })
        .min()
        .unwrap_or(now)
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
    let due = later(last, wait);
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
    let backoff = doubling(interval, failures, max_backoff.max(interval));
    backoff.max(retry_after.unwrap_or(Duration::ZERO).min(max_backoff))
}

/// The one backoff of the daemon, for feeds and for deliveries alike: `first` after
/// at most one failure, doubled for each further one, never more than `cap`.
pub fn doubling(first: Duration, failures: u32, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    first.saturating_mul(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const MIN: Duration = Duration::from_secs(60);
    const WEB: Duration = Duration::from_secs(30);
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
        let due = group_due_at(std::slice::from_ref(known), &known_states, DAY, now);
        assert_eq!(due, now + chrono::Duration::seconds(20 * 60 - 30));
        let due = group_due_at(std::slice::from_ref(new), &known_states, DAY, now);
        assert_eq!(due, now);
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

    #[test]
    fn a_publisher_may_lengthen_the_interval_up_to_the_cap() {
        let asked = |minutes: u32| {
            Ok(PollOutcome {
                publisher_interval: Some(MIN * minutes),
                ..PollOutcome::default()
            })
        };
        let results = [asked(30), Ok(PollOutcome::default()), asked(90)];
        let interval = |every: Duration, cap: Duration| {
            let next = after_poll(every, &results, cap, WEB, 0);
            assert_eq!(next.retry_after, None);
            next.interval
        };
        assert_eq!(interval(10 * MIN, DAY), 90 * MIN);
        assert_eq!(interval(10 * MIN, 60 * MIN), 60 * MIN);
        assert_eq!(interval(120 * MIN, DAY), 120 * MIN);
    }

    /// A poll that found a gap, or one that did not.
    fn polled(gap: bool) -> [Result<PollOutcome, PollError>; 1] {
        [Ok(PollOutcome {
            gap,
            ..PollOutcome::default()
        })]
    }

    #[test]
    fn each_gap_halves_the_interval_down_to_the_floor_and_each_overlap_doubles_it_back() {
        let mut halvings = 0;
        let mut intervals = Vec::new();
        for gap in [
            true, true, true, true, true, false, false, false, false, false,
        ] {
            let next = after_poll(10 * MIN, &polled(gap), DAY, WEB, halvings);
            halvings = next.halvings;
            intervals.push(next.interval.as_secs());
        }
        assert_eq!(
            intervals,
            [300, 150, 75, 37, 37, 75, 150, 300, 600, 600],
            "10 min halved to 37.5 s, not below the 30 s web minimum, then back"
        );
    }

    #[test]
    fn the_publishers_ttl_and_retry_after_outweigh_a_gap() {
        let asked = [Ok(PollOutcome {
            gap: true,
            publisher_interval: Some(20 * MIN),
            ..PollOutcome::default()
        })];
        let next = after_poll(10 * MIN, &asked, DAY, WEB, 2);
        assert_eq!((next.interval, next.halvings), (20 * MIN, 3));
        let busy = crate::feed::FetchError::HttpStatus {
            status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Some(2 * 60 * MIN),
        };
        let next = after_poll(10 * MIN, &[Err(PollError::Fetch(busy))], DAY, WEB, 3);
        assert_eq!(next.halvings, 3, "a failure neither hurries nor relaxes");
        assert_eq!(
            next_poll_in(next.interval, 1, next.retry_after, DAY),
            2 * 60 * MIN,
            "the Retry-After is waited out"
        );
    }

    #[test]
    fn a_failed_fetch_passes_on_the_servers_retry_after() {
        let busy = crate::feed::FetchError::HttpStatus {
            status: reqwest::StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(30 * MIN),
        };
        let results = [
            Ok(PollOutcome {
                publisher_interval: Some(DAY),
                ..PollOutcome::default()
            }),
            Err(PollError::Fetch(busy)),
        ];
        assert_eq!(
            after_poll(10 * MIN, &results, DAY, WEB, 0),
            Next {
                interval: 10 * MIN,
                retry_after: Some(30 * MIN),
                halvings: 0
            },
            "a failure leaves the interval as it was"
        );
    }

    #[test]
    fn a_poll_the_store_could_not_record_is_not_the_feeds_failure() {
        let down = || StoreError::WriterGone;
        let fetched = || Ok(PollOutcome::default());
        let refused = || Err(PollError::Fetch(crate::feed::FetchError::Timeout(MIN)));
        assert!(
            recorded(&Ok(vec![fetched(), refused()])),
            "a feed's own failure"
        );
        assert!(!recorded(&Ok(vec![
            fetched(),
            Err(PollError::Store(down()))
        ])));
        assert!(
            !recorded(&Err(down())),
            "the feeds' state could not be read"
        );
    }
}
