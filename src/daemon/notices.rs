//! What the daemon says about a feed besides its alerts: a poll's outcome in the log,
//! a feed that breaks or recovers, a flood held back, a feed that moved.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{Instrument, debug, info, warn};

use super::metrics;
use super::outcome::{PollError, PollOutcome};
use super::shared::Shared;
use crate::config::Feed;
use crate::model::{Alert, ItemKey, Notice, later};
use crate::store::{Failure, FeedState, StoreError};

/// Logs a poll's outcome, records a failure in the store, and announces a feed that
/// breaks or recovers. `before` is the feed's state before this poll.
pub(super) async fn report(
    shared: &Shared,
    feed: &Feed,
    before: &FeedState,
    result: Result<PollOutcome, PollError>,
) -> Result<PollOutcome, PollError> {
    let span = tracing::info_span!("poll", feed = %feed.id);
    let counted = match &result {
        Ok(outcome) if outcome.not_modified => "not_modified",
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    metrics::polled(counted);
    let now = shared.clock.now();
    let mut after = before.clone();
    match &result {
        Ok(outcome) => {
            shared.health.polled();
            metrics::items_seen(outcome.new_items);
            if outcome.gap {
                metrics::gap();
                span.in_scope(|| {
                    warn!(
                        new_items = outcome.new_items,
                        "every item is new and newer than the last poll's: the feed published \
                         more than it keeps since, so some items were probably missed; polling \
                         it more often"
                    );
                });
            }
            if outcome.alerts > 0 || outcome.new_items > 0 {
                span.in_scope(|| {
                    info!(
                        new_items = outcome.new_items,
                        alerts = outcome.alerts,
                        "polled"
                    );
                });
            } else {
                span.in_scope(|| {
                    debug!(not_modified = outcome.not_modified, "polled, nothing new");
                });
            }
            after.consecutive_failures = 0;
            after.failing_since = None;
        }
        Err(PollError::Store(e)) => {
            span.in_scope(|| warn!(error = %e, "cannot record poll"));
            return result;
        }
        Err(e) => {
            let message = e.to_string();
            let retry_after = match e {
                PollError::Fetch(fetch) => fetch.retry_after(),
                _ => None,
            };
            let failure = Failure {
                kind: e.kind().to_owned(),
                message: message.clone(),
                // Kept with the feed, so a restart waits too (capped like the schedule).
                retry_after_until: retry_after
                    .map(|d| later(now, d.min(shared.config.daemon.max_backoff))),
            };
            let failures = match shared.store.record_failure(&feed.id, failure, now).await {
                Ok(n) => n,
                Err(store) => return Err(PollError::Store(store)),
            };
            // Log when the failure changes, not on every poll of a feed that stays broken.
            span.in_scope(|| {
                if before.last_error.as_deref() != Some(message.as_str()) {
                    warn!(kind = e.kind(), failures, error = %message, "poll failed; will retry");
                } else {
                    debug!(kind = e.kind(), failures, "poll failed again");
                }
            });
            after.consecutive_failures = failures;
            after.failing_since.get_or_insert(now);
            after.last_error = Some(message);
        }
    }
    if let Err(e) = check_health(shared, feed, &after, now)
        .instrument(span)
        .await
    {
        return Err(PollError::Store(e));
    }
    result
}

/// Declares the feed broken after `broken_after_failures` failed polls in a row
/// or `broken_after` of failing, and recovered at its next success: each change
/// once, to the health channel if there is one.
async fn check_health(
    shared: &Shared,
    feed: &Feed,
    state: &FeedState,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let daemon = &shared.config.daemon;
    let failing_for = state.failing_since.map_or(Duration::ZERO, |since| {
        (now - since).to_std().unwrap_or(Duration::ZERO)
    });
    let broken = state.consecutive_failures >= daemon.broken_after_failures
        || (state.consecutive_failures > 0 && failing_for >= daemon.broken_after);
    let recovered = state.consecutive_failures == 0;
    let (notice, snippet) = match (state.broken_since, broken, recovered) {
        (None, true, _) => {
            warn!(
                failures = state.consecutive_failures,
                "feed is broken; newshound keeps trying"
            );
            (
                format!(
                    "feed {} is broken: {}",
                    feed.id,
                    state.last_error.as_deref().unwrap_or("unknown error")
                ),
                format!(
                    "{} polls in a row failed, the first at {}. newshound keeps polling it, less often \
                         (at most every {}), and will say when it works again.",
                    state.consecutive_failures,
                    state
                        .failing_since
                        .map_or_else(|| "?".into(), crate::model::rfc3339),
                    humantime::format_duration(daemon.max_backoff)
                ),
            )
        }
        (Some(since), _, true) => {
            info!("feed recovered");
            (
                format!("feed {} works again", feed.id),
                format!(
                    "It was broken from {} to {}.",
                    crate::model::rfc3339(since),
                    crate::model::rfc3339(now)
                ),
            )
        }
        _ => return Ok(()),
    };
    let alerts: Vec<(String, Alert)> = daemon
        .health_channel
        .iter()
        .map(|channel| {
            let alert = Alert::from(Notice {
                feed: feed.id.clone(),
                key: ItemKey(format!("newshound:health:{}", now.timestamp_micros())),
                title: notice.clone(),
                link: Some(feed.source.to_string()),
                rules: vec!["feed-health".into()],
                text: snippet.clone(),
                at: now,
            });
            (channel.clone(), alert)
        })
        .collect();
    let announced = !alerts.is_empty();
    shared
        .store
        .set_health(&feed.id, state.broken_since.is_none(), alerts, now)
        .await?;
    if announced {
        shared.outbox_changed.notify_one();
    }
    Ok(())
}

/// One notice for each channel the held alerts would have gone to.
pub(super) fn flood_notices(
    feed: &Feed,
    new_items: usize,
    held: &[(String, Alert)],
    now: DateTime<Utc>,
) -> Vec<(String, Alert)> {
    let mut channels: Vec<&str> = held.iter().map(|(c, _)| c.as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    channels
            .into_iter()
            .map(|channel| {
                let mine: Vec<&Alert> = held.iter().filter(|(c, _)| c == channel).map(|(_, a)| a).collect();
                let mut rules: Vec<String> = mine.iter().flat_map(|a| a.rules.iter().cloned()).collect();
                rules.sort();
                rules.dedup();
                let examples: Vec<&str> = mine.iter().take(5).map(|a| a.title.as_str()).collect();
                let alert = Alert::from(Notice {
                    feed: feed.id.clone(),
                    key: ItemKey(format!("newshound:flood:{}", now.timestamp_micros())),
                    title: format!(
                        "feed {}: {new_items} new items at once look re-keyed or flooded; {} alerts held \
                         (at most {} per feed)",
                        feed.id,
                        mine.len(),
                        crate::store::MAX_HELD_PER_FEED
                    ),
                    link: Some(feed.source.to_string()),
                    rules,
                    text: format!(
                        "They are recorded as seen and were not sent one by one. To send them: \
                         newshound replay --held. Some of them: {}",
                        examples.join(" · ")
                    ),
                    at: now,
                });
                (channel.to_owned(), alert)
            })
            .collect()
}
