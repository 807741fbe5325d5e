//! The dispatcher: claims due outbox rows, turns them into messages (one per alert, a
//! digest per period, a summary beyond a channel's rate limit), retries with jittered
//! exponential backoff, and turns rows that keep failing into dead letters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::observe;
use super::schedule::{DISPATCH_IDLE, doubling};
use super::shared::Shared;
use crate::config::QuietHours;
use crate::model::{Alert, later};
use crate::notify::Notifier;
use crate::render::MessageKind;
use crate::store::{ClaimPolicy, OutboxRow, StoreError};

/// A digest holds at most this many alerts; more wait for the next pass.
const MAX_DIGEST: usize = 10_000;
/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

/// Messages on their way at the same time, all channels together; each channel has
/// its own `max_in_flight` below this.
const CONCURRENT_DELIVERIES: usize = crate::config::MAX_IN_FLIGHT;

/// What one dispatch pass did, counted in alerts (a digest of 5 that went out is 5
/// sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
    /// Alerts put back to wait for their digest or their channel's rate limit.
    pub deferred: usize,
}

impl std::ops::AddAssign for DispatchReport {
    fn add_assign(&mut self, other: DispatchReport) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.deferred += other.deferred;
    }
}

/// One message to send: a single alert, or several folded into a digest or summary.
struct Send {
    channel: String,
    rows: Vec<OutboxRow>,
    kind: MessageKind,
}

/// Whether a failed alert may still be retried: its next try would come before its
/// lifetime (counted from when it was queued) runs out.
fn within_lifetime(row: &OutboxRow, now: DateTime<Utc>, lifetime: Duration) -> bool {
    later(now, backoff(row.attempts + 1)) <= later(row.created, lifetime)
}

/// The wait before try number `attempts + 1`, after `attempts` failed tries.
pub fn backoff(attempts: u32) -> Duration {
    doubling(FIRST_BACKOFF, attempts, MAX_BACKOFF)
}

/// `wait` plus up to a fifth more, so alerts that failed together (a relay outage) do
/// not all come back in the same second.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(1.0 + fastrand::f64() / 5.0)
}

/// Delivers the outbox: claims due rows, folds them into messages, sends each within
/// its channel's limits, and records what became of every row.
pub struct Dispatcher {
    shared: Arc<Shared>,
    notifier: Notifier,
    /// Per channel, bounds the messages on their way at once (`max_in_flight`).
    in_flight: HashMap<String, Semaphore>,
}

impl Dispatcher {
    pub(super) fn new(shared: Arc<Shared>) -> anyhow::Result<Dispatcher> {
        let config = &shared.config;
        let notifier = Notifier::new(config).context("cannot set up the alert channels")?;
        let in_flight = config
            .channels
            .iter()
            .map(|(name, channel)| (name.clone(), Semaphore::new(channel.max_in_flight)))
            .collect();
        Ok(Dispatcher {
            notifier,
            in_flight,
            shared,
        })
    }

    /// Dispatches until `shutdown`: whenever alerts are queued, when the next deferred
    /// or retried one is due, and at least every [`DISPATCH_IDLE`].
    pub(super) async fn run(&self, shutdown: CancellationToken) {
        loop {
            self.shared.health.tick();
            let dispatched = self
                .dispatch_due(self.shared.clock.now())
                .instrument(info_span!("dispatch"))
                .await;
            // A store error (disk full, locked) is logged and retried; alerts stay queued.
            let next_due = match dispatched {
                Ok(_) => self.shared.store.next_due().await,
                Err(e) => Err(e),
            };
            let until_next = match next_due {
                Ok(next) => next
                    .map(|at| {
                        (at - self.shared.clock.now())
                            .to_std()
                            .unwrap_or(Duration::ZERO)
                    })
                    .unwrap_or(DISPATCH_IDLE)
                    .min(DISPATCH_IDLE),
                Err(e) => {
                    warn!(error = %e, "cannot read the outbox; trying again");
                    DISPATCH_IDLE
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.shared.outbox_changed.notified() => {}
                () = tokio::time::sleep(until_next) => {}
            }
        }
    }

    /// Delivers every row due at `now`, once each. Tests call this to step the
    /// dispatcher without waiting for timers.
    pub async fn dispatch_due(&self, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        use futures_util::StreamExt;
        let mut report = DispatchReport::default();
        self.notifier.close_idle().await;
        self.shared.store.release_expired(now).await?;
        // A failed alert told to wait beyond its lifetime (by an older newshound that
        // did not cap Retry-After) gets its last try when the lifetime ends.
        self.shared
            .store
            .end_waits_at_lifetime(self.shared.config.daemon.delivery_lifetime)
            .await?;
        loop {
            let ClaimPolicy { batch, lease } = self.shared.store.claim_policy();
            let rows = self.shared.store.claim_due(now, batch, lease).await?;
            if rows.is_empty() {
                return Ok(report);
            }
            self.shared.health.tick();
            let sends = self.plan(rows, now, &mut report).await?;
            let mut deliveries = futures_util::stream::iter(sends)
                .map(|send| {
                    let span = info_span!("deliver", channel = %send.channel, alerts = send.rows.len(), first = send.rows[0].id);
                    self.deliver(send, now).instrument(span)
                })
                .buffer_unordered(CONCURRENT_DELIVERIES);
            while let Some(outcome) = deliveries.next().await {
                report += outcome?;
            }
        }
    }

    /// Turns claimed rows into messages, channel by channel: digests gather what their
    /// period holds, rate limits fold the excess into one summary, and rows that must
    /// wait are deferred (and counted in `report`).
    async fn plan(
        &self,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
        report: &mut DispatchReport,
    ) -> Result<Vec<Send>, StoreError> {
        let mut by_channel: Vec<(String, Vec<OutboxRow>)> = Vec::new();
        for row in rows {
            match by_channel.iter_mut().find(|(c, _)| *c == row.channel) {
                Some((_, rows)) => rows.push(row),
                None => by_channel.push((row.channel.clone(), vec![row])),
            }
        }
        let mut sends = Vec::new();
        for (name, mut rows) in by_channel {
            let Some(channel) = self.shared.config.channels.get(&name) else {
                let error = format!("channel {name:?} is no longer in the config");
                warn!(%error, alerts = rows.len(), "dead letter");
                self.shared
                    .store
                    .mark_dead(&ids(&rows), now, &error)
                    .await?;
                report.dead += rows.len();
                continue;
            };
            if let Some(quiet) = channel.quiet_hours {
                match self
                    .quiet(&name, quiet, rows, now, report, &mut sends)
                    .await?
                {
                    Some(rest) if !rest.is_empty() => rows = rest,
                    _ => continue,
                }
            }
            let single = |row: OutboxRow| Send {
                channel: name.clone(),
                rows: vec![row],
                kind: MessageKind::Alert,
            };
            if let Some(digest) = channel.digest {
                // When a period is due, all of the channel's due rows, so that it is one
                // message however the batches (or the instances sharing the outbox) fell.
                // (Rows only just queued wait, and cost no second claim.)
                if rows.iter().any(|r| digest.period_end(r.created) <= now) {
                    let store = &self.shared.store;
                    let lease = store.claim_policy().lease;
                    let rest = store.claim_due_in(&name, now, MAX_DIGEST, lease);
                    rows.extend(rest.await?);
                }
                // Each row waits for the end of the period it was queued in: one
                // deferral per period, not per row.
                let mut waiting: BTreeMap<DateTime<Utc>, Vec<i64>> = BTreeMap::new();
                let mut ready = Vec::new();
                for row in rows {
                    match digest.period_end(row.created) {
                        end if end <= now => ready.push(row),
                        end => waiting.entry(end).or_default().push(row.id),
                    }
                }
                for (end, ids) in &waiting {
                    self.shared.store.defer(ids, *end).await?;
                    report.deferred += ids.len();
                }
                if !ready.is_empty() {
                    sends.push(Send {
                        channel: name.clone(),
                        rows: ready,
                        kind: MessageKind::Digest {
                            period: digest.to_string(),
                        },
                    });
                }
                continue;
            }
            let Some(limit) = channel.max_per_minute else {
                sends.extend(rows.into_iter().map(single));
                continue;
            };
            let (budget, next_slot) = self
                .shared
                .store
                .reserve_sends(&name, limit, rows.len(), now)
                .await?;
            if budget == 0 {
                self.shared.store.defer(&ids(&rows), next_slot).await?;
                report.deferred += rows.len();
                continue;
            }
            if rows.len() <= budget {
                sends.extend(rows.into_iter().map(single));
                continue;
            }
            // One slot is kept for a summary of everything beyond the others.
            let rest = rows.split_off(budget - 1);
            info!(channel = %name, limit, folded = rest.len(), "rate limit reached; the excess goes as one summary");
            sends.extend(rows.into_iter().map(single));
            sends.push(Send {
                channel: name.clone(),
                rows: rest,
                kind: MessageKind::Summary { limit },
            });
        }
        Ok(sends)
    }

    /// A channel's quiet hours: within them its rows wait for their end (`None`: all
    /// deferred); after them, the rows queued during them go as one message, and the
    /// others are given back to be sent as usual.
    async fn quiet(
        &self,
        name: &str,
        quiet: QuietHours,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
        report: &mut DispatchReport,
        sends: &mut Vec<Send>,
    ) -> Result<Option<Vec<OutboxRow>>, StoreError> {
        if quiet.contains(now) {
            self.shared
                .store
                .defer(&ids(&rows), quiet.end_after(now))
                .await?;
            report.deferred += rows.len();
            return Ok(None);
        }
        let (held, rest): (Vec<OutboxRow>, Vec<OutboxRow>) =
            rows.into_iter().partition(|r| quiet.contains(r.created));
        if !held.is_empty() {
            sends.push(Send {
                channel: name.to_owned(),
                rows: held,
                kind: MessageKind::Digest {
                    period: format!("quiet hours {quiet}"),
                },
            });
        }
        Ok(Some(rest))
    }

    /// Sends one message (once its channel has room for one more in flight) and
    /// records what became of each of its rows.
    async fn deliver(&self, send: Send, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let (Some(channel), Some(room)) = (
            self.shared.config.channels.get(&send.channel),
            self.in_flight.get(&send.channel),
        ) else {
            return Ok(report);
        };
        let alerts: Vec<Alert> = send.rows.iter().map(|r| r.alert.clone()).collect();
        let result = {
            // Never closed, so acquiring can only wait.
            let _slot = room.acquire().await;
            self.notifier
                .deliver(&send.channel, channel, &alerts, &send.kind)
                .await
        };
        let count = |outcome: &'static str, n: usize| {
            metrics::counter!(observe::ALERTS, "channel" => send.channel.clone(), "outcome" => outcome)
                .increment(n as u64);
        };
        let e = match result {
            Ok(receipt) => {
                info!(title = %alerts[0].title, %receipt, "delivered");
                report.sent = send.rows.len();
                count("sent", report.sent);
                self.shared
                    .store
                    .mark_sent(&ids(&send.rows), self.shared.clock.now())
                    .await?;
                return Ok(report);
            }
            Err(e) => e,
        };
        let daemon = &self.shared.config.daemon;
        let (retry, dead): (Vec<&OutboxRow>, Vec<&OutboxRow>) = send.rows.iter().partition(|row| {
            e.retryable
                && row.attempts + 1 < daemon.delivery_attempts
                && within_lifetime(row, now, daemon.delivery_lifetime)
        });
        if !retry.is_empty() {
            let attempts = retry.iter().map(|r| r.attempts).max().unwrap_or(0);
            // The receiver's Retry-After wins over our backoff when it asks for longer,
            // up to our longest backoff: `Retry-After: 999999999` must not park an
            // alert beyond its lifetime.
            let asked = e.retry_after.unwrap_or_default().min(MAX_BACKOFF);
            let wait = jittered(backoff(attempts + 1)).max(asked);
            report.retrying = retry.len();
            count("retrying", report.retrying);
            warn!(error = %e, retry_in = ?wait, "delivery failed; will retry");
            let retry: Vec<i64> = retry.iter().map(|r| r.id).collect();
            self.shared
                .store
                .mark_retry(&retry, later(now, wait), &e.message)
                .await?;
        }
        if !dead.is_empty() {
            warn!(error = %e, attempts = dead[0].attempts + 1, "delivery failed; kept as a dead letter");
            let dead: Vec<i64> = dead.iter().map(|r| r.id).collect();
            self.shared.store.mark_dead(&dead, now, &e.message).await?;
            report.dead = dead.len();
            count("dead", report.dead);
        }
        Ok(report)
    }
}

fn ids(rows: &[OutboxRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
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
    use crate::model::{Alert, FeedId, ItemKey, Notice};

    fn row(created: DateTime<Utc>, attempts: u32) -> OutboxRow {
        OutboxRow {
            id: 1,
            channel: "me".into(),
            alert: Alert::from(Notice {
                feed: FeedId("f".into()),
                key: ItemKey("k".into()),
                title: String::new(),
                link: None,
                rules: vec![],
                text: String::new(),
                at: created,
            }),
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
