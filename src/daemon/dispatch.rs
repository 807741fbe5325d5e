//! The dispatcher: claims due outbox rows, turns them into messages (one per alert, a
//! digest per period, a summary beyond a channel's rate limit), retries with jittered
//! exponential backoff, and turns rows that keep failing into dead letters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::metrics;
use super::plan::{Dead, Plan, Send, Wait, by_channel, digest_due, ids};
use super::schedule::{DISPATCH_IDLE, doubling};
use super::shared::Shared;
use crate::model::{Alert, later};
use crate::notify::Notifier;
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
        let notifier =
            Notifier::new(config.smtp.as_ref()).context("cannot set up the alert channels")?;
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
            let answered = next_due.as_ref().map(|_| ()).map_err(|e| e.to_string());
            self.shared.health.store_answered(answered);
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

    /// Dispatches whenever alerts are queued until `done`, then once more for what
    /// came last: what `once` runs beside its polls, so that the first alerts are on
    /// their way while later feeds are still fetched. A store error before the last
    /// pass is logged and the pass tried again; the last pass's error is returned.
    pub(super) async fn dispatch_until(
        &self,
        done: CancellationToken,
    ) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        loop {
            let last = done.is_cancelled();
            match self.dispatch_due(self.shared.clock.now()).await {
                Ok(pass) => report += pass,
                // The last pass, after the polls, says whether the outbox can be read.
                Err(e) if !last => warn!(error = %e, "cannot deliver yet; trying again"),
                Err(e) => return Err(e),
            }
            if last {
                return Ok(report);
            }
            tokio::select! {
                () = done.cancelled() => {}
                () = self.shared.outbox_changed.notified() => {}
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
            let plan = self.plan(rows, now).await?;
            report += self.apply(&plan, now).await?;
            let mut deliveries = futures_util::stream::iter(plan.sends)
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

    /// Decides, channel by channel, what becomes of claimed rows. Writes nothing but
    /// what the decisions need to know: the rest of a digest that is due is claimed,
    /// and a rate-limited channel's sends are reserved.
    async fn plan(&self, rows: Vec<OutboxRow>, now: DateTime<Utc>) -> Result<Plan, StoreError> {
        let mut plan = Plan::default();
        for (name, mut rows) in by_channel(rows) {
            let Some(channel) = self.shared.config.channels.get(&name) else {
                plan.gone(&name, &rows);
                continue;
            };
            if let Some(quiet) = channel.quiet_hours {
                rows = plan.quiet(&name, quiet, rows, now);
                if rows.is_empty() {
                    continue;
                }
            }
            if let Some(digest) = channel.digest {
                // When a period is due, all of the channel's due rows, so that it is one
                // message however the batches (or the instances sharing the outbox)
                // fell. (Rows only just queued wait, and cost no second claim.)
                if digest_due(digest, &rows, now) {
                    let store = &self.shared.store;
                    let lease = store.claim_policy().lease;
                    let rest = store.claim_due_in(&name, now, MAX_DIGEST, lease);
                    rows.extend(rest.await?);
                }
                plan.digest(&name, digest, rows, now);
            } else if let Some(limit) = channel.max_per_minute {
                let (budget, next_slot) = self
                    .shared
                    .store
                    .reserve_sends(&name, limit, rows.len(), now)
                    .await?;
                plan.limited(&name, limit, rows, budget, next_slot);
            } else {
                plan.each(&name, rows);
            }
        }
        Ok(plan)
    }

    /// Writes what `plan` says of the rows it does not send: which wait, and which are
    /// dead letters.
    async fn apply(&self, plan: &Plan, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        for Dead { ids, error } in &plan.dead {
            warn!(%error, alerts = ids.len(), "dead letter");
            self.shared.store.mark_dead(ids, now, error).await?;
            report.dead += ids.len();
        }
        for Wait { ids, until } in &plan.waits {
            self.shared.store.defer(ids, *until).await?;
            report.deferred += ids.len();
        }
        Ok(report)
    }

    /// The alerts of `rows`, each with its feedback links when `channel` asks for them.
    async fn with_feedback(
        &self,
        channel: &crate::config::Channel,
        rows: &[OutboxRow],
    ) -> Result<Vec<Alert>, StoreError> {
        let shared = &self.shared;
        let daemon = &shared.config.daemon;
        let mut alerts: Vec<Alert> = rows.iter().map(|r| r.alert.clone()).collect();
        let Some(base) = daemon.public_url.as_ref().filter(|_| channel.feedback) else {
            return Ok(alerts);
        };
        let now = shared.clock.now();
        let key = super::feedback::key(&shared.store, &shared.feedback_key, now).await?;
        for (alert, row) in alerts.iter_mut().zip(rows) {
            alert.feedback = super::feedback::links(base, key, row, daemon.keep_sent, now);
        }
        Ok(alerts)
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
        let alerts = self.with_feedback(channel, &send.rows).await?;
        let result = {
            // Never closed, so acquiring can only wait.
            let _slot = room.acquire().await;
            self.notifier
                .deliver(
                    &send.channel,
                    &channel.transport,
                    &channel.templates,
                    &alerts,
                    &send.kind,
                )
                .await
        };
        let count = |outcome: &'static str, n: usize| metrics::alerts(&send.channel, outcome, n);
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
