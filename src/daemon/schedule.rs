//! When a feed is polled next: its interval, backoff after failures, the server's
//! Retry-After, and a schedule kept across restarts; when a feed is stale.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::DISPATCH_IDLE;
use crate::config::Feed;
use crate::model::FeedId;
use crate::store::FeedState;

/// Entries sharing a source are polled as often as the most eager of them asks.
pub(super) fn group_interval(group: &[Feed]) -> Duration {
    group
        .iter()
        .map(|f| f.interval)
        .min()
        .unwrap_or(DISPATCH_IDLE)
}

/// Whether no feed of the group has ever been polled, by the states in `known`.
pub(super) fn never_polled(known: &HashMap<FeedId, FeedState>, group: &[Feed]) -> bool {
    group
        .iter()
        .all(|feed| known.get(&feed.id).is_none_or(|s| s.last_attempt.is_none()))
}

/// When a feed polled before is next due after a restart: its last attempt plus its
/// interval or backoff, and not before the end of a Retry-After its server asked for,
/// so restarts neither bunch feeds together nor poll a backed-off feed early. A feed
/// never polled is due now.
pub(super) fn first_wait(
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
