//! newshound's state: feed state, seen items and the outbox, behind one async
//! interface ([`Store`]) made of the operations the daemon needs. No SQL and no
//! engine type crosses it; all SQL lives in this module's engines.
//!
//! The embedded engine (`sqlite`) is the default; `postgres` serves several instances
//! sharing one database (`[store] url`). Whatever the engine, an operation
//! that returned is durable: an item is recorded as seen in the same transaction as the
//! alerts it causes, and neither can exist without the other after a crash.
//!
//! This file holds [`Store`], the boundary; `types` what crosses it; `error` its errors
//! and the state directory's lock; `instances` what instances sharing a database
//! coordinate through (polls by turns, heartbeats); `sqlite` the embedded engine, with all its SQL in
//! `sqlite/{feeds,items,outbox,notes}.rs` and its migrations beside them.

mod error;
mod postgres;
mod sqlite;
#[doc(hidden)]
pub mod testing;
mod types;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{Alert, FeedId, Item, ItemKey};
pub use error::{StateLock, StoreError};
pub use postgres::redact as redacted_url;
use sqlite::{Commit, Engine, feeds, items, notes, outbox};
pub use types::MAX_HELD_PER_FEED;
pub use types::{
    Dump, DumpedRow, Failure, FeedState, Instance, OutboxCounts, OutboxRow, OutboxState, PollClaim,
    PollRecord, RecentAlert, Replayable, Retrying,
};
use types::{Mark, Queue};

/// How long items are kept for trying new rules on them.
pub const RECENT: Duration = Duration::from_secs(24 * 60 * 60);

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "newshound.db";
/// File a running daemon holds locked inside the state directory.
pub const LOCK_FILE: &str = "newshound.lock";

/// The state store: a handle on its engine, shared by the daemon's tasks. Every
/// operation is async and runs off the async workers; a write returns once it is
/// durable.
#[derive(Debug)]
pub struct Store {
    engine: Backend,
}

/// The engine that holds the state.
#[derive(Debug)]
enum Backend {
    Sqlite(Engine),
    Postgres(postgres::Engine),
}

/// Runs an operation on the store's engine: `sqlite` with the SQLite engine, `pg` with
/// the PostgreSQL one.
macro_rules! on_engine {
    ($store:expr, $sqlite:ident => $on_sqlite:expr, $pg:ident => $on_pg:expr $(,)?) => {
        match &$store.engine {
            Backend::Sqlite($sqlite) => $on_sqlite,
            Backend::Postgres($pg) => $on_pg,
        }
    };
}

// After the macro, which it uses.
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
                engine: Backend::Sqlite(Engine::open(&dir.join(DB_FILE))?),
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
                engine: Backend::Sqlite(Engine::open_read_only(&path)?),
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
            engine: Backend::Postgres(engine),
        })
    }

    /// Every row of the embedded state, to move it to a database (`migrate-state`).
    pub async fn dump(&self) -> Result<Dump, StoreError> {
        on_engine!(self,
            e => e.read(sqlite::dump::dump).await,
            _pg => Err(StoreError::Unsupported(
                "a state is moved from the embedded SQLite file into PostgreSQL, not out of it",
            )),
        )
    }

    /// Fills an empty database with a state moved from the embedded engine, in one
    /// transaction.
    pub async fn load(&self, dump: &Dump) -> Result<(), StoreError> {
        on_engine!(self,
            _e => Err(StoreError::Unsupported(
                "a state is moved into a PostgreSQL database, not into a SQLite file",
            )),
            pg => postgres::load::load(pg, dump).await,
        )
    }

    /// A test hook: every commit waits this long first, as on a slow disk (the
    /// embedded engine only).
    #[doc(hidden)]
    pub fn delay_commits(&self, by: Duration) {
        if let Backend::Sqlite(engine) = &self.engine {
            engine.delay_commits(by);
        }
    }

    pub async fn feed_state(&self, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
        let feed = feed.clone();
        on_engine!(self,
            e => e.read(move |c| feeds::feed_state(c, &feed)).await,
            pg => postgres::feeds::feed_state(pg, &feed).await,
        )
    }

    /// The state of each of `feeds` (the default for one never polled), in order.
    pub async fn feed_states_of(&self, feeds: &[FeedId]) -> Result<Vec<FeedState>, StoreError> {
        let ids = feeds.to_vec();
        on_engine!(self,
            e => e.read(move |c| {
                    ids.iter()
                        .map(|id| Ok(feeds::feed_state(c, id)?.unwrap_or_default()))
                        .collect()
                })
                .await,
            pg => postgres::feeds::feed_states_of(pg, &ids).await,
        )
    }

    /// Every feed the store knows: its state and how many items it has recorded.
    pub async fn feed_states(&self) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
        on_engine!(self,
            e => e.read(feeds::feed_states).await,
            pg => postgres::feeds::feed_states(pg).await,
        )
    }

    /// When polls of `feed` brought new items, newest first, at most `limit` times.
    pub async fn new_item_times(
        &self,
        feed: &FeedId,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let feed = feed.clone();
        on_engine!(self,
            e => e.read(move |c| feeds::new_item_times(c, &feed, limit)).await,
            pg => postgres::feeds::new_item_times(pg, &feed, limit).await,
        )
    }

    /// Which of `keys` have never been recorded for `feed`, in the order given.
    pub async fn unseen(
        &self,
        feed: &FeedId,
        keys: Vec<ItemKey>,
    ) -> Result<Vec<ItemKey>, StoreError> {
        let feed = feed.clone();
        on_engine!(self,
            e => e.read(move |c| items::unseen(c, &feed, keys)).await,
            pg => postgres::items::unseen(pg, &feed, keys).await,
        )
    }

    /// Records a successful poll: new items as seen, their alerts queued, and the feed's
    /// validators, all in one transaction. Returns the ids of the queued rows.
    pub async fn record_poll(&self, poll: PollRecord) -> Result<Vec<i64>, StoreError> {
        on_engine!(self,
            e => e.write(Commit::Grouped, move |c| items::record_poll(c, &poll)).await,
            pg => postgres::items::record_poll(pg, &poll).await,
        )
    }

    /// Records a poll that found nothing new (304) as a success.
    pub async fn record_unchanged(
        &self,
        feed: &FeedId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let feed = feed.clone();
        on_engine!(self,
            e => e.write(Commit::Grouped, move |c| feeds::record_unchanged(c, &feed, at)).await,
            pg => postgres::feeds::record_unchanged(pg, &feed, at).await,
        )
    }

    /// Records a failed poll; returns how many polls in a row have now failed.
    pub async fn record_failure(
        &self,
        feed: &FeedId,
        failure: Failure,
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let feed = feed.clone();
        on_engine!(self,
            e => e.write(Commit::Grouped, move |c| feeds::record_failure(c, &feed, &failure, at)).await,
            pg => postgres::feeds::record_failure(pg, &feed, &failure, at).await,
        )
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
        let feed = feed.clone();
        on_engine!(self,
            e => e.write(Commit::Grouped, move |c| feeds::set_health(c, &feed, broken, &alerts, at)).await,
            pg => postgres::feeds::set_health(pg, &feed, broken, &alerts, at).await,
        )
    }

    /// Claims up to `limit` pending alerts due at `now`, oldest first: they become
    /// `sending` until `now + lease`, so no other pass takes them meanwhile.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        on_engine!(self,
            e => e.write(Commit::Now, move |c| outbox::claim_due(c, None, now, limit, lease)).await,
            pg => postgres::outbox::claim_due(pg, None, now, limit, lease).await,
        )
    }

    /// [`Store::claim_due`] for one channel: the rest of a digest that is due.
    pub async fn claim_due_in(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let channel = channel.to_owned();
        on_engine!(self,
            e => e
                .write(Commit::Now, move |c| {
                    outbox::claim_due(c, Some(&channel), now, limit, lease)
                })
                .await,
            pg => postgres::outbox::claim_due(pg, Some(&channel), now, limit, lease).await,
        )
    }

    /// Returns claims whose lease ran out to `pending`; says how many.
    pub async fn release_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        on_engine!(self,
            e => e.write(Commit::Now, move |c| outbox::release_expired(c, now)).await,
            pg => postgres::outbox::release_expired(pg, now).await,
        )
    }

    /// Failed alerts waiting for a retry beyond their lifetime (counted from when they
    /// were queued) are due when it ends instead; says how many.
    pub async fn end_waits_at_lifetime(&self, lifetime: Duration) -> Result<usize, StoreError> {
        on_engine!(self,
            e => e.write(Commit::Now, move |c| outbox::end_waits_at(c, lifetime)).await,
            pg => postgres::outbox::end_waits_at(pg, lifetime).await,
        )
    }

    /// Returns every claim to `pending`. Only for start-up, while holding the
    /// [`StateLock`]: then no living process can be delivering them. On a database
    /// shared by several instances another one may be, so there claims are left to
    /// expire with their lease.
    pub async fn release_claims(&self, _lock: &StateLock) -> Result<usize, StoreError> {
        on_engine!(self,
            e => e.write(Commit::Now, outbox::release_claims).await,
            _pg => Ok(0),
        )
    }

    /// When the earliest pending alert is due, if any is pending.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        on_engine!(self,
            e => e.read(outbox::next_due).await,
            pg => postgres::outbox::next_due(pg).await,
        )
    }

    /// Claimed rows that the receiver accepted.
    pub async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark(ids, Mark::Sent { at }).await
    }

    /// Claimed rows that failed and get another try at `next_attempt`.
    pub async fn mark_retry(
        &self,
        ids: &[i64],
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.mark(
            ids,
            Mark::Retry {
                next_attempt,
                error,
            },
        )
        .await
    }

    /// Claimed rows that wait, untried, until `until`: the end of their digest period,
    /// or a free slot in their channel's per-minute limit.
    pub async fn defer(&self, ids: &[i64], until: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark(ids, Mark::Defer { until }).await
    }

    /// Gives up on claimed rows: they stay in the outbox as dead letters with the error.
    pub async fn mark_dead(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.mark(ids, Mark::Dead { at, error }).await
    }

    /// Puts finished or held rows back in the queue as new: pending, no attempts, due
    /// at `now`.
    pub async fn requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark(ids, Mark::Requeue { now }).await
    }

    async fn mark(&self, ids: &[i64], mark: Mark) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        on_engine!(self,
            e => e.write(Commit::Now, move |c| outbox::mark(c, &ids, &mark)).await,
            pg => postgres::outbox::mark(pg, &ids, &mark).await,
        )
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        on_engine!(self,
            e => e.read(outbox::counts).await,
            pg => postgres::outbox::counts(pg).await,
        )
    }

    /// Rows in `state` created at or after `since`, oldest first.
    pub async fn replayable(
        &self,
        state: OutboxState,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Replayable>, StoreError> {
        on_engine!(self,
            e => e.read(move |c| outbox::replayable(c, state, since)).await,
            pg => postgres::outbox::replayable(pg, state, since).await,
        )
    }

    /// Items first seen at or after `since` (and within [`RECENT`]), oldest first.
    pub async fn recent_items(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(FeedId, Item)>, StoreError> {
        on_engine!(self,
            e => e.read(move |c| items::recent_items(c, since)).await,
            pg => postgres::items::recent_items(pg, since).await,
        )
    }

    /// Queues alerts found by trying new rules on recent items: like a poll's, an
    /// alert already queued for the item and channel is not queued again, and the
    /// same story within `dedupe_within` is merged.
    pub async fn queue_backfill(
        &self,
        alerts: Vec<(String, Alert)>,
        at: DateTime<Utc>,
        dedupe_within: Duration,
    ) -> Result<Vec<i64>, StoreError> {
        let how = Queue::Send(dedupe_within);
        on_engine!(self,
            e => e.write(Commit::Now, move |c| outbox::queue(c, &alerts, at, how)).await,
            pg => postgres::outbox::queue_alone(pg, &alerts, at, how).await,
        )
    }

    /// Sets (or with `None`, clears) a note for `status`.
    pub async fn set_note(
        &self,
        key: &str,
        value: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.map(str::to_owned));
        on_engine!(self,
            e => e.write(Commit::Now, move |c| notes::set(c, &key, value.as_deref(), at)).await,
            pg => postgres::notes::set(pg, &key, value.as_deref(), at).await,
        )
    }

    /// A note and when it was set.
    pub async fn note(&self, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let key = key.to_owned();
        on_engine!(self,
            e => e.read(move |c| notes::get(c, &key)).await,
            pg => postgres::notes::get(pg, &key).await,
        )
    }

    /// Alerts waiting to be tried again after a failure, soonest first: for status.
    pub async fn retrying(&self) -> Result<Vec<Retrying>, StoreError> {
        on_engine!(self,
            e => e.read(outbox::retrying).await,
            pg => postgres::outbox::retrying(pg).await,
        )
    }

    /// The latest `limit` alerts queued, newest first, whatever became of them.
    pub async fn recent_alerts(&self, limit: usize) -> Result<Vec<RecentAlert>, StoreError> {
        on_engine!(self,
            e => e.read(move |c| outbox::recent_alerts(c, limit)).await,
            pg => postgres::outbox::recent_alerts(pg, limit).await,
        )
    }

    /// The last error of each dead letter, newest first, for status and tests.
    pub async fn dead_letters(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        on_engine!(self,
            e => e.read(outbox::dead_letters).await,
            pg => postgres::outbox::dead_letters(pg).await,
        )
    }
}

#[cfg(test)]
mod tests;
