//! newshound's state: feed state, seen items and the outbox, behind one async
//! interface ([`Store`]) made of the operations the daemon needs. No SQL and no
//! engine type crosses it; all SQL lives in this module.
//!
//! The embedded engine (`sqlite`) is the default; `postgres` serves several instances
//! sharing one database (`[store] url`). Whatever the engine, an operation
//! that returned is durable: an item is recorded as seen in the same transaction as the
//! alerts it causes, and neither can exist without the other after a crash.
//!
//! This file holds [`Store`], the boundary, which holds its engine behind the one
//! contract in `engine` and never asks which it has; `types` what crosses it; `error`
//! its errors and the state directory's lock; `instances` what instances sharing a
//! database coordinate through (polls by turns, heartbeats, rate windows, how long a
//! claim lasts); `rate` the single instance's rate window in memory; `sql` the SQL both
//! engines run as written; `sqlite` and `postgres` the engines, each with the rest of
//! its SQL in `{feeds,items,outbox,notes}.rs` and its migrations beside them.

mod engine;
mod error;
mod postgres;
mod rate;
mod sql;
mod sqlite;
#[doc(hidden)]
pub mod testing;
mod trace;
mod types;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{Alert, FeedId, Item, ItemKey};
use engine::Engine;
pub use error::{StateLock, StoreError};
pub use postgres::redact as redacted_url;
pub use types::MAX_HELD_PER_FEED;
use types::{Claim, Expired, Health, Mark, Queue};
pub use types::{
    ClaimPolicy, Dedupe, Dump, DumpedRow, Failure, FeedState, Instance, Learned, NewItemTimes,
    OutboxCounts, OutboxRow, OutboxState, PollClaim, PollRecord, Pruned, RecentAlert, Replayable,
    Retention, Retrying, RuleDay,
};

/// An instance silent for this long (ten of its heartbeats; killed, or cut off) is
/// no longer listed among those sharing the database.
pub const INSTANCE_GONE_AFTER: Duration = Duration::from_secs(5 * 60);

/// How many days of what each rule caught the store keeps and the charts show.
pub const RULE_DAYS: u32 = 30;

/// How long items are kept for trying new rules on them.
pub const RECENT: Duration = Duration::from_secs(24 * 60 * 60);

/// Rows one statement of a pruning deletes at most: a poll's commit never waits long
/// behind one, and PostgreSQL's row locks are held briefly.
const PRUNE_BATCH: usize = 1000;
/// The turn (as a feed source's poll is taken) that lets one instance sharing the
/// database prune at a time.
const PRUNE_TURN: &str = "newshound:prune";
/// A pruning still running after this (its instance died) is taken over.
const PRUNE_LEASE: Duration = Duration::from_secs(10 * 60);
/// The store note holding the key that signs feedback links.
const FEEDBACK_KEY: &str = "feedback_key";
/// The store note holding what the last pruning deleted.
const LAST_PRUNE: &str = "last_prune";

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "newshound.db";
/// File a running daemon holds locked inside the state directory.
pub const LOCK_FILE: &str = "newshound.lock";

pub use sqlite::backup::Contents;
pub use trace::{Trace, TracedAlert};

/// Writes a consistent copy of the SQLite state in `state_dir` to the new file `to`,
/// while a daemon may be running on it (it goes on polling and delivering). Blocking.
pub fn backup(state_dir: &Path, to: &Path) -> Result<Contents, StoreError> {
    sqlite::backup::backup(&state_dir.join(DB_FILE), to)
}

/// Puts the state saved in `from` (checked first: a whole newshound state, its schema
/// not newer than this version's) in place of the one in `state_dir`, which is kept
/// beside it as `newshound.db.replaced-<time>` (returned). `_lock` proves that no
/// daemon runs on the state. Blocking.
pub fn restore(
    state_dir: &Path,
    from: &Path,
    _lock: &StateLock,
    now: DateTime<Utc>,
) -> Result<(Contents, Option<std::path::PathBuf>), StoreError> {
    sqlite::backup::restore(&state_dir.join(DB_FILE), from, now)
}

/// The state store: a handle on its engine, shared by the daemon's tasks. Every
/// operation is async and runs off the async workers; a write returns once it is
/// durable.
#[derive(Debug)]
pub struct Store {
    engine: Box<dyn Engine>,
}

mod instances;

impl Store {
    /// Opens (creating if needed) the embedded database in `state_dir` and brings its
    /// schema up to date.
    pub async fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let dir = state_dir.to_owned();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|cause| StoreError::StateDir {
                path: dir.clone(),
                cause,
            })?;
            Ok(Store {
                engine: Box::new(sqlite::Engine::open(&dir.join(DB_FILE))?),
            })
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }

    /// Opens the database in `state_dir` if there is one; `None` if newshound has
    /// never run there (nothing is created). A database that is damaged (a directory,
    /// an empty file) or cannot be read is an error.
    pub async fn open_existing(state_dir: &Path) -> Result<Option<Store>, StoreError> {
        if !sqlite::exists(&state_dir.join(DB_FILE))? {
            return Ok(None);
        }
        Store::open(state_dir).await.map(Some)
    }

    /// [`Store::open_existing`] for reading only: nothing is written in `state_dir`,
    /// so it works for a user who may only read it, or on a read-only mount. Writes
    /// fail.
    pub async fn open_read_only(state_dir: &Path) -> Result<Option<Store>, StoreError> {
        let path = state_dir.join(DB_FILE);
        tokio::task::spawn_blocking(move || {
            if !sqlite::exists(&path)? {
                return Ok(None);
            }
            Ok(Some(Store {
                engine: Box::new(sqlite::Engine::open_read_only(&path)?),
            }))
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }

    /// Connects to the PostgreSQL database at `url` (the password from `password` when
    /// the URL has none) and brings its schema up to date; several instances may share
    /// it.
    /// `instance` names this process among those sharing the database.
    pub async fn connect(
        url: &str,
        password: Option<&str>,
        instance: &str,
    ) -> Result<Store, StoreError> {
        let engine = postgres::Engine::connect(url, password, instance).await?;
        Ok(Store {
            engine: Box::new(engine),
        })
    }

    /// Every row of the embedded state, to move it to a database (`migrate-state`).
    pub async fn dump(&self) -> Result<Dump, StoreError> {
        self.engine.dump().await
    }

    /// Fills an empty database with a state moved from the embedded engine, in one
    /// transaction.
    pub async fn load(&self, dump: &Dump) -> Result<(), StoreError> {
        self.engine.load(dump).await
    }

    /// A test hook: every commit (of the embedded engine; of the polls' group commit
    /// on PostgreSQL) waits this long first, as on a slow disk.
    #[doc(hidden)]
    pub fn delay_commits(&self, by: Duration) {
        self.engine.delay_commits(by);
    }

    pub async fn feed_state(&self, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
        self.engine.feed_state(feed.clone()).await
    }

    /// The state of each of `feeds` (the default for one never polled), in order.
    pub async fn feed_states_of(&self, feeds: &[FeedId]) -> Result<Vec<FeedState>, StoreError> {
        self.engine.feed_states_of(feeds.to_vec()).await
    }

    /// Every feed the store knows: its state and how many items it has recorded.
    pub async fn feed_states(&self) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
        self.engine.feed_states().await
    }

    /// When polls of each feed brought new items, newest first, at most `limit` times
    /// per feed; one read for all feeds.
    pub async fn new_item_times(&self, limit: usize) -> Result<NewItemTimes, StoreError> {
        self.engine.new_item_times(limit).await
    }

    /// Which of `keys` have never been recorded for `feed`, in the order given.
    pub async fn unseen(
        &self,
        feed: &FeedId,
        keys: Vec<ItemKey>,
    ) -> Result<Vec<ItemKey>, StoreError> {
        self.engine.unseen(feed.clone(), keys).await
    }

    /// Records a successful poll: new items as seen, their alerts queued, and the feed's
    /// validators, all in one transaction. Returns the ids of the queued rows.
    pub async fn record_poll(&self, poll: PollRecord) -> Result<Vec<i64>, StoreError> {
        self.engine.record_poll(poll).await
    }

    /// Records a poll that found nothing new (304) as a success.
    pub async fn record_unchanged(
        &self,
        feed: &FeedId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.engine.record_unchanged(feed.clone(), at).await
    }

    /// Records a failed poll; returns how many polls in a row have now failed.
    pub async fn record_failure(
        &self,
        feed: &FeedId,
        failure: Failure,
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        self.engine.record_failure(feed.clone(), failure, at).await
    }

    /// Declares a feed broken (`broken`) or recovered, and queues the alerts that say
    /// so, in one transaction: the change is announced exactly once.
    pub async fn set_health(
        &self,
        feed: &FeedId,
        broken: bool,
        alerts: Vec<(String, Alert)>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let health = Health {
            feed: feed.clone(),
            broken,
            alerts,
            at,
        };
        self.engine.set_health(health).await
    }

    /// Claims up to `limit` pending alerts due at `now`, oldest first: they become
    /// `sending` until `now + lease`, so no other pass takes them meanwhile.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let claim = Claim {
            channel: None,
            now,
            limit,
            lease,
        };
        self.engine.claim_due(claim).await
    }

    /// [`Store::claim_due`] for one channel: the rest of a digest that is due.
    pub async fn claim_due_in(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let claim = Claim {
            channel: Some(channel.to_owned()),
            now,
            limit,
            lease,
        };
        self.engine.claim_due(claim).await
    }

    /// Returns claims whose lease ran out to `pending`; says how many.
    pub async fn release_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.engine.release_expired(now).await
    }

    /// Failed alerts waiting for a retry beyond their lifetime (counted from when they
    /// were queued) are due when it ends instead; says how many.
    pub async fn end_waits_at_lifetime(&self, lifetime: Duration) -> Result<usize, StoreError> {
        self.engine.end_waits_at(lifetime).await
    }

    /// Returns every claim to `pending`. Only for start-up, while holding the
    /// [`StateLock`]: then no living process can be delivering them. On a database
    /// shared by several instances another one may be, so there claims are left to
    /// expire with their lease.
    pub async fn release_claims(&self, _lock: &StateLock) -> Result<usize, StoreError> {
        self.engine.release_claims().await
    }

    /// When the earliest pending alert is due, if any is pending.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.engine.next_due().await
    }

    /// Claimed rows that the receiver accepted.
    pub async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        self.engine.mark(ids.to_vec(), Mark::Sent { at }).await
    }

    /// Claimed rows that failed and get another try at `next_attempt`.
    pub async fn mark_retry(
        &self,
        ids: &[i64],
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        let mark = Mark::Retry {
            next_attempt,
            error,
        };
        self.engine.mark(ids.to_vec(), mark).await
    }

    /// Claimed rows that wait, untried, until `until`: the end of their digest period,
    /// or a free slot in their channel's per-minute limit.
    pub async fn defer(&self, ids: &[i64], until: DateTime<Utc>) -> Result<(), StoreError> {
        self.engine.mark(ids.to_vec(), Mark::Defer { until }).await
    }

    /// Gives up on claimed rows: they stay in the outbox as dead letters with the error.
    pub async fn mark_dead(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.engine
            .mark(ids.to_vec(), Mark::Dead { at, error })
            .await
    }

    /// Puts finished or held rows back in the queue as new: pending, no attempts, due
    /// at `now`.
    pub async fn requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.engine.mark(ids.to_vec(), Mark::Requeue { now }).await
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.engine.outbox_counts().await
    }

    /// The bytes the state takes on disk: the SQLite file's pages, or the PostgreSQL
    /// database's size.
    pub async fn state_bytes(&self) -> Result<u64, StoreError> {
        self.engine.state_bytes().await
    }

    /// Deletes what `retention` says expired, a batch at a time, then gives the space
    /// back to the disk; `None` when the state was pruned less than `every` ago (by
    /// this process, an earlier one, or another instance sharing the database) or
    /// another instance is pruning it now. What was deleted is kept for
    /// [`Store::last_prune`].
    pub async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        every: Duration,
    ) -> Result<Option<Pruned>, StoreError> {
        let next = now + every;
        let recently = |(_, at): (Pruned, DateTime<Utc>)| at <= now && now < at + every;
        if self.last_prune().await?.is_some_and(recently) {
            return Ok(None);
        }
        if let PollClaim::Later(_) = self.claim_poll(PRUNE_TURN, now, PRUNE_LEASE).await? {
            return Ok(None);
        }
        let pruned = self.prune_all(retention, now).await;
        // A pruning that failed is due again at once.
        let again = if pruned.is_ok() { next } else { now };
        self.poll_done(PRUNE_TURN, again).await?;
        let pruned = pruned?;
        let json = serde_json::to_string(&pruned).unwrap_or_default();
        self.set_note(LAST_PRUNE, Some(&json), now).await?;
        Ok(Some(pruned))
    }

    async fn prune_all(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        let sent = self.expire(Expired::Sent, retention.sent_before).await?;
        let dead = self.expire(Expired::Dead, retention.dead_before).await?;
        let held = self.expire(Expired::Held, retention.dead_before).await?;
        // After their alerts: what was merged into an alert goes with it.
        let merged = self.expire(Expired::Orphans, now).await?;
        // The charts show 30 days; a day more is kept for time zones ahead of UTC.
        let days = chrono::Duration::days(i64::from(RULE_DAYS) + 1);
        self.expire(Expired::RuleDays, now - days).await?;
        let gone = self.expire(Expired::Gone, retention.forget_before).await?;
        let (feeds, items) = self
            .engine
            .forget_feeds(retention.forget_before, retention.configured.clone())
            .await?;
        let mut pruned = Pruned {
            seen_items: gone + items,
            feeds,
            sent,
            dead,
            held,
            merged,
            bytes_freed: 0,
        };
        if pruned != Pruned::default() {
            pruned.bytes_freed = self.engine.reclaim().await?;
        }
        Ok(pruned)
    }

    /// Deletes every row of `what` that expired before `before`, a batch at a time.
    async fn expire(&self, what: Expired, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.engine.expire(what, before, PRUNE_BATCH).await?;
            total += n as u64;
            if n < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }

    /// What the last pruning (of any instance) deleted, and when.
    pub async fn last_prune(&self) -> Result<Option<(Pruned, DateTime<Utc>)>, StoreError> {
        Ok(self
            .note(LAST_PRUNE)
            .await?
            .and_then(|(json, at)| Some((serde_json::from_str(&json).ok()?, at))))
    }

    /// Rows in `state` created at or after `since`, oldest first.
    pub async fn replayable(
        &self,
        state: OutboxState,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Replayable>, StoreError> {
        self.engine.replayable(state, since).await
    }

    /// Items first seen at or after `since` (and within [`RECENT`]), oldest first.
    pub async fn recent_items(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(FeedId, Item)>, StoreError> {
        self.engine.recent_items(since).await
    }

    /// The key that signs feedback links: the state's own, made from `fresh` the first
    /// time it is asked for (by whichever instance asks first).
    pub async fn feedback_key(
        &self,
        fresh: String,
        at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        self.engine
            .note_once(FEEDBACK_KEY.to_owned(), fresh, at)
            .await
    }

    /// Records an example learned from feedback (replacing an earlier, other vote on
    /// the same item for the same rule, whichever of its alerts carried it; the same
    /// vote again changes nothing).
    pub async fn learn(&self, learned: Learned) -> Result<(), StoreError> {
        self.engine.learn(learned).await
    }

    /// Every example learned from feedback, oldest first.
    pub async fn learned(&self) -> Result<Vec<Learned>, StoreError> {
        self.engine.learned().await
    }

    /// The alert of outbox row `id`, while it is kept.
    pub async fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        self.engine.alert(id).await
    }

    /// What each rule caught on each of the last [`RULE_DAYS`] days before `now`
    /// (today included), by rule and day; days it caught nothing are left out.
    pub async fn rule_days(&self, now: DateTime<Utc>) -> Result<Vec<RuleDay>, StoreError> {
        let first = now - chrono::Duration::days(i64::from(RULE_DAYS) - 1);
        self.engine.rule_days(types::day_of(first)).await
    }

    /// What the store remembers of the items a link, a guid (an item's key) or words
    /// of a title name: at most 20 of them, first seen first.
    pub async fn trace(&self, query: &str) -> Result<Vec<Trace>, StoreError> {
        let search = trace::Search::new(query);
        let rows = self.engine.find_items(search.clone()).await?;
        let mut found: Vec<(String, String)> = Vec::new();
        for (feed, key, json) in rows {
            let item = (feed, key);
            if !found.contains(&item) && search.finds(&item.1, json.as_deref()) {
                found.push(item);
                if found.len() == trace::MAX_FOUND {
                    break;
                }
            }
        }
        let mut traces = Vec::new();
        for (feed, key) in found {
            let (feed, key) = (FeedId(feed), ItemKey(key));
            let rows = self.engine.item_rows(feed.clone(), key.clone()).await?;
            traces.push(rows.into_trace(feed, key)?);
        }
        traces.sort_by_key(|t| (t.first_seen, t.feed.0.clone()));
        Ok(traces)
    }

    /// Queues alerts found by trying new rules on recent items: like a poll's, an
    /// alert already queued for the item and channel is not queued again, and the
    /// same story is merged as `dedupe` says.
    pub async fn queue_backfill(
        &self,
        alerts: Vec<(String, Alert)>,
        at: DateTime<Utc>,
        dedupe: Dedupe,
    ) -> Result<Vec<i64>, StoreError> {
        let how = Queue::Send(dedupe);
        self.engine.queue(alerts, at, how).await
    }

    /// Sets (or with `None`, clears) a note for `status`.
    pub async fn set_note(
        &self,
        key: &str,
        value: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.map(str::to_owned));
        self.engine.set_note(key, value, at).await
    }

    /// A note and when it was set.
    pub async fn note(&self, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        self.engine.note(key.to_owned()).await
    }

    /// Alerts waiting to be tried again after a failure, soonest first: for status.
    pub async fn retrying(&self) -> Result<Vec<Retrying>, StoreError> {
        self.engine.retrying().await
    }

    /// The latest `limit` alerts queued, newest first, whatever became of them.
    pub async fn recent_alerts(&self, limit: usize) -> Result<Vec<RecentAlert>, StoreError> {
        self.engine.recent_alerts(limit).await
    }

    /// The last error of each dead letter, newest first, for status and tests.
    pub async fn dead_letters(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.engine.dead_letters().await
    }
}

#[cfg(test)]
mod tests;
