//! The dispatcher: delivers due outbox rows, retries with exponential backoff, and turns
//! rows that keep failing into dead letters.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{Instrument, info, info_span, warn};

use super::Pipeline;
use crate::store::{OutboxRow, StoreError};

/// How many rows are read from the outbox at a time.
const BATCH: usize = 100;
/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

/// How long a claimed row is ours. Longer than any single delivery can take (SMTP and
/// webhook timeouts are well below it), so only a dead or hung dispatcher loses one.
pub const LEASE: Duration = Duration::from_secs(10 * 60);

/// Alerts delivered at the same time. One at a time, an SMTP session spends most of
/// its time waiting on round trips (about 40 ms a message measured locally).
const CONCURRENT_DELIVERIES: usize = 8;

/// What became of one outbox row.
enum Outcome {
    Sent,
    Retrying,
    Dead,
}

/// What one dispatch pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// Whether a failed alert may still be retried: its next try would come before its
/// lifetime (counted from when it was queued) runs out.
fn within_lifetime(row: &OutboxRow, now: DateTime<Utc>, lifetime: Duration) -> bool {
    let next = now
        + chrono::Duration::from_std(backoff(row.attempts + 1)).unwrap_or(chrono::Duration::MAX);
    next - row.created <= chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX)
}

/// The wait before try number `attempts + 1`, after `attempts` failed tries.
pub fn backoff(attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// `wait` plus up to a fifth more, so alerts that failed together (a relay outage) do
/// not all come back in the same second.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(1.0 + fastrand::f64() / 5.0)
}

impl Pipeline {
    /// Delivers every row due at `now`, once each. Tests call this to step the
    /// dispatcher without waiting for timers.
    pub async fn dispatch_due(&self, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        use futures_util::StreamExt;
        let mut report = DispatchReport::default();
        loop {
            self.store.release_expired(now)?;
            let rows = self.store.claim_due(now, BATCH, LEASE)?;
            if rows.is_empty() {
                return Ok(report);
            }
            let mut deliveries = futures_util::stream::iter(rows)
                .map(|row| {
                    let span = info_span!("deliver", id = row.id, channel = %row.channel, feed = %row.alert.feed);
                    self.deliver_row(row, now).instrument(span)
                })
                .buffer_unordered(CONCURRENT_DELIVERIES);
            while let Some(outcome) = deliveries.next().await {
                match outcome? {
                    Outcome::Sent => report.sent += 1,
                    Outcome::Retrying => report.retrying += 1,
                    Outcome::Dead => report.dead += 1,
                }
            }
        }
    }

    async fn deliver_row(&self, row: OutboxRow, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let Some(channel) = self.config.channels.get(&row.channel) else {
            let error = format!("channel {:?} is no longer in the config", row.channel);
            warn!(%error, "dead letter");
            return self
                .store
                .mark_dead(&[row.id], now, &error)
                .map(|()| Outcome::Dead);
        };
        match self
            .notifier
            .deliver(&row.channel, channel, &row.alert)
            .await
        {
            Ok(receipt) => {
                info!(title = %row.alert.title, %receipt, "delivered");
                self.store
                    .mark_sent(&[row.id], Utc::now())
                    .map(|()| Outcome::Sent)
            }
            Err(e)
                if e.retryable
                    && row.attempts + 1 < self.config.daemon.delivery_attempts
                    && within_lifetime(&row, now, self.config.daemon.delivery_lifetime) =>
            {
                // The receiver's Retry-After wins over our backoff when it asks for longer.
                let wait =
                    jittered(backoff(row.attempts + 1)).max(e.retry_after.unwrap_or_default());
                warn!(error = %e, retry_in = ?wait, "delivery failed; will retry");

                let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                self.store
                    .mark_retry(&[row.id], next, &e.message)
                    .map(|()| Outcome::Retrying)
            }
            Err(e) => {
                warn!(error = %e, attempts = row.attempts + 1, "delivery failed; kept as a dead letter");
                self.store
                    .mark_dead(&[row.id], now, &e.message)
                    .map(|()| Outcome::Dead)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30s_to_an_hour() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        let base = Duration::from_secs(100);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(waits.iter().all(|w| *w >= base && *w <= base.mul_f64(1.2)));
        assert!(waits.iter().any(|w| *w != waits[0]), "the waits differ");
    }
}

#[cfg(test)]
mod lifetime_tests {
    use super::*;
    use crate::model::{Alert, FeedId, ItemKey};

    fn row(created: DateTime<Utc>, attempts: u32) -> OutboxRow {
        OutboxRow {
            id: 1,
            channel: "me".into(),
            alert: Alert::notice(
                FeedId("f".into()),
                ItemKey("k".into()),
                String::new(),
                None,
                vec![],
                String::new(),
            ),
            attempts,
            created,
        }
    }

    #[test]
    fn an_alert_is_retried_until_its_lifetime_runs_out() {
        let created = DateTime::from_timestamp(0, 0).expect("time");
        let day = Duration::from_secs(24 * 3600);
        let at = |secs: i64| created + chrono::Duration::seconds(secs);
        assert!(within_lifetime(&row(created, 0), at(0), 5 * day));
        // Four days and 23 hours in, the next try (1 h later at most) still fits.
        assert!(within_lifetime(
            &row(created, 20),
            at(5 * 86400 - 3600),
            5 * day
        ));
        assert!(!within_lifetime(
            &row(created, 20),
            at(5 * 86400 - 1800),
            5 * day
        ));
    }
}
