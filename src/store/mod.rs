//! newshound's state: feed state, seen items and the outbox, behind one async
//! interface ([`Store`]) made of the operations the daemon needs. No SQL and no
//! engine type crosses it; all SQL lives in this module's engines.
//!
//! The embedded engine (`sqlite`) is the default. Whatever the engine, an operation
//! that returned is durable: an item is recorded as seen in the same transaction as the
//! alerts it causes, and neither can exist without the other after a crash.

mod sqlite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::Validators;
use crate::model::{Alert, FeedId, Item, ItemKey};
pub use sqlite::outbox::MAX_HELD_PER_FEED;
use sqlite::{Commit, Engine, feeds, items, notes, outbox};

/// How long items are kept for trying new rules on them.
pub const RECENT: Duration = Duration::from_secs(24 * 60 * 60);

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "newshound.db";
/// File a running daemon holds locked inside the state directory.
pub const LOCK_FILE: &str = "newshound.lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // Causes are said in the message and not chained (fields named `cause`, not
    // `source`), so that `{:#}` does not say them twice.
    #[error("cannot create state directory {}: {cause}", .path.display())]
    StateDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("database {}: {cause}", .path.display())]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error(
        "database schema version {found} is newer than this newshound knows ({known}); upgrade newshound"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error(
        "the state was written by an older newshound (schema version {found}, this one knows {known}); start the daemon once to upgrade it"
    )]
    OlderSchema { found: i64, known: i64 },
    #[error(
        "state database {} {what}; restore it from a backup, or move it away to start afresh (every item then counts as new)",
        .path.display()
    )]
    Damaged { path: PathBuf, what: &'static str },
    #[error("cannot read state database {}: {cause}", .path.display())]
    Unreadable {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("database: {0}")]
    Sql(rusqlite::Error),
    #[error("cannot commit to the database: {0}")]
    Commit(String),
    #[error("the state store has stopped")]
    WriterGone,
    #[error("outbox row {id} holds an unreadable alert: {cause}")]
    BadAlert { id: i64, cause: serde_json::Error },
    #[error(
        "another newshound is already running on state directory {} (it holds {}); stop it first, or give this one its own daemon.state_dir",
        .dir.display(), LOCK_FILE
    )]
    Locked { dir: PathBuf },
    #[error("cannot lock {}: {cause}", .path.display())]
    Lock {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// The SQLite error is said in the message, not chained: its own source repeats it
/// ("database or disk is full: database or disk is full").
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Sql(error)
    }
}

/// Proof that this process is the only daemon on a state directory: an exclusive lock
/// on [`LOCK_FILE`], released when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    pub fn acquire(state_dir: &Path) -> Result<StateLock, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|cause| StoreError::StateDir {
            path: state_dir.to_owned(),
            cause,
        })?;
        let path = state_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|cause| StoreError::Lock {
                path: path.clone(),
                cause,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
                dir: state_dir.to_owned(),
            }),
            Err(std::fs::TryLockError::Error(cause)) => Err(StoreError::Lock { path, cause }),
        }
    }
}

/// What the store remembers about a feed between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    pub validators: Validators,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// The first failure of the current run of failures.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the feed was declared broken; `None` while healthy.
    pub broken_since: Option<DateTime<Utc>>,
    /// When its polls started to look like a flood; `None` while they do not.
    pub flooding_since: Option<DateTime<Utc>>,
    /// Until when the server asked not to be polled (Retry-After on 429/503).
    pub retry_after_until: Option<DateTime<Utc>>,
    /// What was wrong with the last document fetched, if it was read only once made
    /// well-formed; `None` when it was well-formed.
    pub repaired: Option<String>,
}

/// A failed poll, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error's stable short name (`timeout`, `http_status`, …).
    pub kind: String,
    pub message: String,
    /// The end of the wait the server asked for, if it asked.
    pub retry_after_until: Option<DateTime<Utc>>,
}

/// The result of one successful poll, recorded in a single transaction.
#[derive(Debug, Clone)]
pub struct PollRecord {
    pub feed: FeedId,
    /// Keys of items seen for the first time.
    pub new_keys: Vec<ItemKey>,
    /// The new items, kept for [`RECENT`] so new rules can be tried on them.
    pub recent: Vec<Item>,
    /// Alerts to queue, each with the channel it goes to.
    pub alerts: Vec<(String, Alert)>,
    /// Alerts to keep without sending (a flood), for `replay --held`.
    pub held: Vec<(String, Alert)>,
    /// Validators for the next conditional GET, stored only now that items are recorded.
    pub validators: Validators,
    /// Whether this poll looked like a flood; `None` when it brought nothing new.
    pub flooding: Option<bool>,
    /// What was wrong with the document, if it was read only once made well-formed.
    pub repaired: Option<String>,
    pub at: DateTime<Utc>,
    /// An alert about a story already queued for its channel this recently (same
    /// [`StoryKeys`](crate::model::StoryKeys)) is merged into that one instead of sent again; zero turns it off.
    pub dedupe_within: Duration,
}

/// An alert waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub channel: String,
    pub alert: Alert,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When it was queued.
    pub created: DateTime<Utc>,
}

/// Where an outbox row is in its life. The transitions, each one method of [`Store`]:
///
/// | from                  | event                                   | to        | method            |
/// |-----------------------|-----------------------------------------|-----------|-------------------|
/// | —                     | an item matched                         | pending   | `record_poll`     |
/// | —                     | an item matched during a flood          | held      | `record_poll`     |
/// | —                     | the same story is already queued        | merged    | `record_poll`     |
/// | pending (due)         | a dispatcher claims it for a lease      | sending   | `claim_due`       |
/// | sending               | the receiver accepted it                | sent      | `mark_sent`       |
/// | sending               | failed, retryable, within its lifetime  | pending   | `mark_retry`      |
/// | sending               | waits for its digest or a rate slot     | pending   | `defer`           |
/// | sending               | failed for good, or out of lifetime     | dead      | `mark_dead`       |
/// | sending (lease over)  | its dispatcher died or hung             | pending   | `release_expired` |
/// | sending               | start-up, holding the [`StateLock`]     | pending   | `release_claims`  |
/// | dead, held, sent      | `newshound replay`                      | pending   | `requeue`         |
///
/// Any other event leaves a row where it is: a late `mark_sent` for a row whose lease
/// was taken back does not touch it.
///
/// A failed row told to wait beyond its lifetime stays pending but is made due when
/// its lifetime ends (`end_waits_at_lifetime`), so its last failure makes it dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Claimed by a dispatcher until its lease runs out.
    Sending,
    Sent,
    /// Given up on; kept for `replay --dead`.
    Dead,
    /// Part of a flood; kept unsent for `replay --held`.
    Held,
    /// Another feed's copy of a story already queued; listed as a source there.
    Merged,
}

impl OutboxState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
            OutboxState::Held => "held",
            OutboxState::Merged => "merged",
        }
    }
}

/// A row `replay` may put back in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayable {
    pub id: i64,
    pub channel: String,
    pub alert: Alert,
    pub created: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// An alert that failed and waits for another try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrying {
    pub id: i64,
    pub channel: String,
    /// Tries so far.
    pub attempts: u32,
    pub next_attempt: DateTime<Utc>,
    pub last_error: String,
}

/// How many outbox rows are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub merged: u64,
    pub dead: u64,
    pub held: u64,
}

/// The state store: a handle on its engine, shared by the daemon's tasks. Every
/// operation is async and runs off the async workers; a write returns once it is
/// durable.
#[derive(Debug)]
pub struct Store {
    engine: Engine,
}

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
                engine: Engine::open(&dir.join(DB_FILE))?,
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
                engine: Engine::open_read_only(&path)?,
            }))
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }

    /// A test hook: every commit waits this long first, as on a slow disk.
    #[doc(hidden)]
    pub fn delay_commits(&self, by: Duration) {
        self.engine.delay_commits(by);
    }

    pub async fn feed_state(&self, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
        let feed = feed.clone();
        self.engine.read(move |c| feeds::feed_state(c, &feed)).await
    }

    /// The state of each of `feeds` (the default for one never polled), in order.
    pub async fn feed_states_of(&self, feeds: &[FeedId]) -> Result<Vec<FeedState>, StoreError> {
        let ids = feeds.to_vec();
        self.engine
            .read(move |c| {
                ids.iter()
                    .map(|id| Ok(feeds::feed_state(c, id)?.unwrap_or_default()))
                    .collect()
            })
            .await
    }

    /// Every feed the store knows: its state and how many items it has recorded.
    pub async fn feed_states(&self) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
        self.engine.read(feeds::feed_states).await
    }

    /// When polls of `feed` brought new items, newest first, at most `limit` times.
    pub async fn new_item_times(
        &self,
        feed: &FeedId,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let feed = feed.clone();
        self.engine
            .read(move |c| feeds::new_item_times(c, &feed, limit))
            .await
    }

    /// Which of `keys` have never been recorded for `feed`, in the order given.
    pub async fn unseen(
        &self,
        feed: &FeedId,
        keys: Vec<ItemKey>,
    ) -> Result<Vec<ItemKey>, StoreError> {
        let feed = feed.clone();
        self.engine
            .read(move |c| items::unseen(c, &feed, keys))
            .await
    }

    /// Records a successful poll: new items as seen, their alerts queued, and the feed's
    /// validators, all in one transaction. Returns the ids of the queued rows.
    pub async fn record_poll(&self, poll: PollRecord) -> Result<Vec<i64>, StoreError> {
        self.engine
            .write(Commit::Grouped, move |c| items::record_poll(c, &poll))
            .await
    }

    /// Records a poll that found nothing new (304) as a success.
    pub async fn record_unchanged(
        &self,
        feed: &FeedId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let feed = feed.clone();
        self.engine
            .write(Commit::Grouped, move |c| {
                feeds::record_unchanged(c, &feed, at)
            })
            .await
    }

    /// Records a failed poll; returns how many polls in a row have now failed.
    pub async fn record_failure(
        &self,
        feed: &FeedId,
        failure: Failure,
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let feed = feed.clone();
        self.engine
            .write(Commit::Grouped, move |c| {
                feeds::record_failure(c, &feed, &failure, at)
            })
            .await
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
        self.engine
            .write(Commit::Grouped, move |c| {
                feeds::set_health(c, &feed, broken, &alerts, at)
            })
            .await
    }

    /// Claims up to `limit` pending alerts due at `now`, oldest first: they become
    /// `sending` until `now + lease`, so no other pass takes them meanwhile.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.engine
            .write(Commit::Now, move |c| {
                outbox::claim_due(c, now, limit, lease)
            })
            .await
    }

    /// Returns claims whose lease ran out to `pending`; says how many.
    pub async fn release_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.engine
            .write(Commit::Now, move |c| outbox::release_expired(c, now))
            .await
    }

    /// Failed alerts waiting for a retry beyond their lifetime (counted from when they
    /// were queued) are due when it ends instead; says how many.
    pub async fn end_waits_at_lifetime(&self, lifetime: Duration) -> Result<usize, StoreError> {
        self.engine
            .write(Commit::Now, move |c| outbox::end_waits_at(c, lifetime))
            .await
    }

    /// Returns every claim to `pending`. Only for start-up, while holding the
    /// [`StateLock`]: then no living process can be delivering them.
    pub async fn release_claims(&self, _lock: &StateLock) -> Result<usize, StoreError> {
        self.engine.write(Commit::Now, outbox::release_claims).await
    }

    /// When the earliest pending alert is due, if any is pending.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.engine.read(outbox::next_due).await
    }

    /// Claimed rows that the receiver accepted.
    pub async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark(ids, outbox::Mark::Sent { at }).await
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
            outbox::Mark::Retry {
                next_attempt,
                error,
            },
        )
        .await
    }

    /// Claimed rows that wait, untried, until `until`: the end of their digest period,
    /// or a free slot in their channel's per-minute limit.
    pub async fn defer(&self, ids: &[i64], until: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark(ids, outbox::Mark::Defer { until }).await
    }

    /// Gives up on claimed rows: they stay in the outbox as dead letters with the error.
    pub async fn mark_dead(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.mark(ids, outbox::Mark::Dead { at, error }).await
    }

    /// Puts finished or held rows back in the queue as new: pending, no attempts, due
    /// at `now`.
    pub async fn requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark(ids, outbox::Mark::Requeue { now }).await
    }

    async fn mark(&self, ids: &[i64], mark: outbox::Mark) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.engine
            .write(Commit::Now, move |c| outbox::mark(c, &ids, &mark))
            .await
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.engine.read(outbox::counts).await
    }

    /// Rows in `state` created at or after `since`, oldest first.
    pub async fn replayable(
        &self,
        state: OutboxState,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Replayable>, StoreError> {
        self.engine
            .read(move |c| outbox::replayable(c, state, since))
            .await
    }

    /// Items first seen at or after `since` (and within [`RECENT`]), oldest first.
    pub async fn recent_items(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(FeedId, Item)>, StoreError> {
        self.engine
            .read(move |c| items::recent_items(c, since))
            .await
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
        self.engine
            .write(Commit::Now, move |c| {
                outbox::queue(c, &alerts, at, outbox::Queue::Send(dedupe_within))
            })
            .await
    }

    /// Sets (or with `None`, clears) a note for `status`.
    pub async fn set_note(
        &self,
        key: &str,
        value: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.map(str::to_owned));
        self.engine
            .write(Commit::Now, move |c| {
                notes::set(c, &key, value.as_deref(), at)
            })
            .await
    }

    /// A note and when it was set.
    pub async fn note(&self, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let key = key.to_owned();
        self.engine.read(move |c| notes::get(c, &key)).await
    }

    /// Alerts waiting to be tried again after a failure, soonest first: for status.
    pub async fn retrying(&self) -> Result<Vec<Retrying>, StoreError> {
        self.engine.read(outbox::retrying).await
    }

    /// The last error of each dead letter, newest first, for status and tests.
    pub async fn dead_letters(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.engine.read(outbox::dead_letters).await
    }
}

#[cfg(test)]
mod tests;
