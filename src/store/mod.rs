//! newshound's state in SQLite: feed state, seen items and the outbox. All SQL lives here.
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a transaction that
//! returned is on disk: an item is recorded as seen in the same transaction as the
//! alerts it causes, and neither can exist without the other after a crash.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::feed::Validators;
use crate::model::{Alert, FeedId, Item, ItemKey, Source, StoryKeys, floor_char_boundary};

/// Each entry upgrades the schema by one version; `PRAGMA user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("migration_2.sql"),
    include_str!("migration_3.sql"),
    include_str!("migration_4.sql"),
    include_str!("migration_5.sql"),
    include_str!("migration_6.sql"),
];

/// How long items are kept for trying new rules on them.
pub const RECENT: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// Content longer than this is cut when an item is kept (the start is what rules and
/// snippets mostly need).
const RECENT_CONTENT_BYTES: usize = 4 * 1024;

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "newshound.db";
/// File a running daemon holds locked inside the state directory.
pub const LOCK_FILE: &str = "newshound.lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {}: {source}", .path.display())]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database schema version {found} is newer than this newshound knows ({known}); upgrade newshound"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("outbox row {id} holds an unreadable alert: {source}")]
    BadAlert { id: i64, source: serde_json::Error },
    #[error(
        "another newshound is already running on state directory {} (it holds {}); stop it first, or give this one its own daemon.state_dir",
        .dir.display(), LOCK_FILE
    )]
    Locked { dir: PathBuf },
    #[error("cannot lock {}: {source}", .path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Proof that this process is the only daemon on a state directory: an exclusive lock
/// on [`LOCK_FILE`], released when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    pub fn acquire(state_dir: &Path) -> Result<StateLock, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::StateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let path = state_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StoreError::Lock {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
                dir: state_dir.to_owned(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Lock { path, source }),
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
}

/// The result of one successful poll, recorded in a single transaction.
#[derive(Debug)]
pub struct PollRecord<'a> {
    pub feed: &'a FeedId,
    /// Keys of items seen for the first time.
    pub new_keys: Vec<&'a ItemKey>,
    /// The new items, kept for [`RECENT`] so new rules can be tried on them.
    pub recent: Vec<&'a Item>,
    /// Alerts to queue, each with the channel it goes to.
    pub alerts: Vec<(String, Alert)>,
    /// Alerts to keep without sending (a flood), for `replay --held`.
    pub held: Vec<(String, Alert)>,
    /// Validators for the next conditional GET, stored only now that items are recorded.
    pub validators: Validators,
    pub at: DateTime<Utc>,
    /// An alert about a story already queued for its channel this recently (same
    /// [`StoryKeys`]) is merged into that one instead of sent again; zero turns it off.
    pub dedupe_within: std::time::Duration,
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
    fn as_str(self) -> &'static str {
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

/// The state database. Cheap operations behind a mutex, shared by the daemon's tasks.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database in `state_dir` and brings its schema up
    /// to date.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::StateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        // Another process (`newshound status`, a second `once`) may hold the write lock
        // for a moment; wait rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Opens the database in `state_dir` if there is one; `None` if newshound has
    /// never run there (nothing is created).
    pub fn open_existing(state_dir: &Path) -> Result<Option<Store>, StoreError> {
        if !state_dir.join(DB_FILE).is_file() {
            return Ok(None);
        }
        Store::open(state_dir).map(Some)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions
        // roll back on drop), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn feed_state(&self, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
        let conn = self.conn();
        let state = conn
            .query_row(
                "SELECT etag, last_modified, last_attempt, last_success, last_error_kind,
                        last_error, consecutive_failures, failing_since, broken_since
                 FROM feed_state WHERE feed = ?1",
                [&feed.0],
                feed_state_row,
            )
            .optional()?;
        Ok(state)
    }

    /// Every feed the store knows: its state and how many items it has recorded.
    pub fn feed_states(&self) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT etag, last_modified, last_attempt, last_success, last_error_kind,
                    last_error, consecutive_failures, failing_since, broken_since, feed,
                    (SELECT count(*) FROM seen_item s WHERE s.feed = f.feed)
             FROM feed_state f ORDER BY feed",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                FeedId(r.get(9)?),
                feed_state_row(r)?,
                r.get::<_, i64>(10)?.unsigned_abs(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When polls of `feed` brought new items, newest first, at most `limit` times.
    pub fn new_item_times(
        &self,
        feed: &FeedId,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT first_seen FROM seen_item WHERE feed = ?1
             ORDER BY first_seen DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![feed.0, limit as i64], |r| r.get::<_, i64>(0))?;
        rows.map(|t| Ok(from_unix(t?).unwrap_or_default()))
            .collect()
    }

    /// Which of `keys` have never been recorded for `feed`, in the order given.
    pub fn unseen<'k>(
        &self,
        feed: &FeedId,
        keys: impl IntoIterator<Item = &'k ItemKey>,
    ) -> Result<Vec<&'k ItemKey>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT 1 FROM seen_item WHERE feed = ?1 AND item_key = ?2")?;
        let mut new = Vec::new();
        for key in keys {
            if !stmt.exists(params![feed.0, key.0])? {
                new.push(key);
            }
        }
        Ok(new)
    }

    /// Records a successful poll: new items as seen, their alerts queued, and the feed's
    /// validators, all in one transaction. Returns the ids of the queued rows.
    pub fn record_poll(&self, poll: &PollRecord<'_>) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let at = poll.at.timestamp();
        {
            let mut seen = tx.prepare_cached(
                "INSERT OR IGNORE INTO seen_item (feed, item_key, first_seen) VALUES (?1, ?2, ?3)",
            )?;
            for key in &poll.new_keys {
                seen.execute(params![poll.feed.0, key.0, at])?;
            }
            let mut keep = tx.prepare_cached(
                "INSERT OR REPLACE INTO recent_item (feed, item_key, seen, item)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for item in &poll.recent {
                let mut item = (*item).clone();
                let cut = floor_char_boundary(&item.content, RECENT_CONTENT_BYTES);
                item.content.truncate(cut);
                let json = serde_json::to_string(&item)
                    .map_err(|source| StoreError::BadAlert { id: 0, source })?;
                keep.execute(params![poll.feed.0, item.key.0, at, json])?;
            }
            tx.prepare_cached("DELETE FROM recent_item WHERE seen < ?1")?
                .execute([at - RECENT.as_secs() as i64])?;
        }
        let ids = queue_alerts(&tx, &poll.alerts, poll.at, Queue::Send(poll.dedupe_within))?;
        queue_alerts(&tx, &poll.held, poll.at, Queue::Hold)?;
        tx.execute(
            "INSERT INTO feed_state (feed, etag, last_modified, last_attempt, last_success,
                                     consecutive_failures)
             VALUES (?1, ?2, ?3, ?4, ?4, 0)
             ON CONFLICT (feed) DO UPDATE SET
                etag = excluded.etag, last_modified = excluded.last_modified,
                last_attempt = excluded.last_attempt, last_success = excluded.last_success,
                last_error_kind = NULL, last_error = NULL, consecutive_failures = 0,
                failing_since = NULL",
            params![
                poll.feed.0,
                poll.validators.etag,
                poll.validators.last_modified,
                at
            ],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// Records a poll that found nothing new (304) as a success.
    pub fn record_unchanged(&self, feed: &FeedId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE feed_state SET last_attempt = ?2, last_success = ?2, last_error_kind = NULL,
                                   last_error = NULL, consecutive_failures = 0,
                                   failing_since = NULL
             WHERE feed = ?1",
            params![feed.0, at.timestamp()],
        )?;
        Ok(())
    }

    /// Records a failed poll; returns how many polls in a row have now failed.
    pub fn record_failure(
        &self,
        feed: &FeedId,
        kind: &str,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let failures = self.conn().query_row(
            "INSERT INTO feed_state (feed, last_attempt, last_error_kind, last_error,
                                     consecutive_failures, failing_since)
             VALUES (?1, ?2, ?3, ?4, 1, ?2)
             ON CONFLICT (feed) DO UPDATE SET
                last_attempt = excluded.last_attempt, last_error_kind = excluded.last_error_kind,
                last_error = excluded.last_error,
                consecutive_failures = feed_state.consecutive_failures + 1,
                failing_since = coalesce(feed_state.failing_since, excluded.failing_since)
             RETURNING consecutive_failures",
            params![feed.0, at.timestamp(), kind, message],
            |r| r.get(0),
        )?;
        Ok(failures)
    }

    /// Declares a feed broken (`broken`) or recovered, and queues the alerts that say
    /// so, in one transaction: the change is announced exactly once.
    pub fn set_health(
        &self,
        feed: &FeedId,
        broken: bool,
        alerts: &[(String, Alert)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let since = broken.then(|| at.timestamp());
        tx.execute(
            "UPDATE feed_state SET broken_since = ?2 WHERE feed = ?1",
            params![feed.0, since],
        )?;
        queue_alerts(&tx, alerts, at, Queue::Send(std::time::Duration::ZERO))?;
        tx.commit()?;
        Ok(())
    }

    /// Claims up to `limit` pending alerts due at `now`, oldest first: they become
    /// `sending` until `now + lease`, so no other pass takes them meanwhile.
    pub fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let rows = {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET state = 'sending', lease_until = ?3
                 WHERE id IN (SELECT id FROM outbox
                              WHERE state = 'pending' AND next_attempt <= ?1
                              ORDER BY next_attempt, id LIMIT ?2)
                 RETURNING id, channel, alert, attempts, created",
            )?;
            let until = now.timestamp().saturating_add(lease.as_secs() as i64);
            let rows = stmt.query_map(params![now.timestamp(), limit as i64, until], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        let mut rows = rows
            .into_iter()
            .map(|(id, channel, json, attempts, created)| {
                let alert = alert_of(id, &json)?;
                Ok(OutboxRow {
                    id,
                    channel,
                    alert,
                    attempts,
                    created: from_unix(created).unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING gives no order; deliver oldest first.
        rows.sort_by_key(|r| (r.created, r.id));
        Ok(rows)
    }

    /// Returns claims whose lease ran out to `pending`; says how many.
    pub fn release_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE outbox SET state = 'pending', lease_until = NULL
             WHERE state = 'sending' AND lease_until <= ?1",
            params![now.timestamp()],
        )?)
    }

    /// Returns every claim to `pending`. Only for start-up, while holding the
    /// [`StateLock`]: then no living process can be delivering them.
    pub fn release_claims(&self, _lock: &StateLock) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE outbox SET state = 'pending', lease_until = NULL WHERE state = 'sending'",
            [],
        )?)
    }

    /// When the earliest pending alert is due, if any is pending.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = self.conn().query_row(
            "SELECT min(next_attempt) FROM outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(next.and_then(from_unix))
    }

    /// Claimed rows that the receiver accepted.
    pub fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_each(
            ids,
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, finished = ?2,
                               last_error = NULL, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            params![at.timestamp()],
        )
    }

    /// Claimed rows that failed and get another try at `next_attempt`.
    pub fn mark_retry(
        &self,
        ids: &[i64],
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.update_each(
            ids,
            "UPDATE outbox SET state = 'pending', attempts = attempts + 1, next_attempt = ?2,
                               last_error = ?3, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            params![next_attempt.timestamp(), error],
        )
    }

    /// Claimed rows that wait, untried, until `until`: the end of their digest period,
    /// or a free slot in their channel's per-minute limit.
    pub fn defer(&self, ids: &[i64], until: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_each(
            ids,
            "UPDATE outbox SET state = 'pending', next_attempt = ?2, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            params![until.timestamp()],
        )
    }

    /// Gives up on claimed rows: they stay in the outbox as dead letters with the error.
    pub fn mark_dead(&self, ids: &[i64], at: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        self.update_each(
            ids,
            "UPDATE outbox SET state = 'dead', attempts = attempts + 1, finished = ?2,
                               last_error = ?3, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            params![at.timestamp(), error],
        )
    }

    /// Runs `sql` (with the row id as `?1` and `rest` from `?2`) for each id, in one
    /// transaction.
    fn update_each(
        &self,
        ids: &[i64],
        sql: &str,
        rest: &[&dyn rusqlite::ToSql],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(sql)?;
            for id in ids {
                let mut values: Vec<&dyn rusqlite::ToSql> = vec![id];
                values.extend_from_slice(rest);
                stmt.execute(values.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let mut counts = OutboxCounts::default();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = n.unsigned_abs();
            match state.as_str() {
                "pending" => counts.pending = n,
                "sending" => counts.sending = n,
                "sent" => counts.sent = n,
                "held" => counts.held = n,
                "merged" => counts.merged = n,
                _ => counts.dead = n,
            }
        }
        Ok(counts)
    }

    /// Rows in `state` created at or after `since`, oldest first.
    pub fn replayable(
        &self,
        state: OutboxState,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Replayable>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, channel, alert, created, last_error FROM outbox
             WHERE state = ?1 AND created >= ?2 ORDER BY created, id",
        )?;
        let since = since.map_or(i64::MIN, |s| s.timestamp());
        let rows = stmt.query_map(params![state.as_str(), since], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, channel, json, created, last_error) = row?;
            let alert = alert_of(id, &json)?;
            Ok(Replayable {
                id,
                channel,
                alert,
                created: from_unix(created).unwrap_or_default(),
                last_error,
            })
        })
        .collect()
    }

    /// Puts finished or held rows back in the queue as new: pending, no attempts, due
    /// at `now`.
    pub fn requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_each(
            ids,
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = ?2,
                               last_error = NULL, finished = NULL
             WHERE id = ?1 AND state IN ('dead', 'held', 'sent')",
            params![now.timestamp()],
        )
    }

    /// Items first seen at or after `since` (and within [`RECENT`]), oldest first.
    pub fn recent_items(&self, since: DateTime<Utc>) -> Result<Vec<(FeedId, Item)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT feed, item FROM recent_item WHERE seen >= ?1 ORDER BY seen, feed, item_key",
        )?;
        let rows = stmt.query_map([since.timestamp()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (feed, json) = row?;
            let item = serde_json::from_str(&json)
                .map_err(|source| StoreError::BadAlert { id: 0, source })?;
            Ok((FeedId(feed), item))
        })
        .collect()
    }

    /// Queues alerts found by trying new rules on recent items: like a poll's, an
    /// alert already queued for the item and channel is not queued again, and the
    /// same story within `dedupe_within` is merged.
    pub fn queue_backfill(
        &self,
        alerts: &[(String, Alert)],
        at: DateTime<Utc>,
        dedupe_within: std::time::Duration,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ids = queue_alerts(&tx, alerts, at, Queue::Send(dedupe_within))?;
        tx.commit()?;
        Ok(ids)
    }

    /// Sets (or with `None`, clears) a note for `status`.
    pub fn set_note(
        &self,
        key: &str,
        value: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        match value {
            Some(value) => conn.execute(
                "INSERT INTO daemon_note (key, value, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at",
                params![key, value, at.timestamp()],
            )?,
            None => conn.execute("DELETE FROM daemon_note WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// A note and when it was set.
    pub fn note(&self, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value, at FROM daemon_note WHERE key = ?1",
                [key],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
            .map(|(value, at)| (value, from_unix(at).unwrap_or_default())))
    }

    /// Alerts waiting to be tried again after a failure, soonest first: for status.
    pub fn retrying(&self) -> Result<Vec<Retrying>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, channel, attempts, next_attempt, coalesce(last_error, '') FROM outbox
             WHERE state = 'pending' AND attempts > 0 ORDER BY next_attempt, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Retrying {
                id: r.get(0)?,
                channel: r.get(1)?,
                attempts: r.get(2)?,
                next_attempt: from_unix(r.get(3)?).unwrap_or_default(),
                last_error: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last error of each dead letter, newest first, for status and tests.
    pub fn dead_letters(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, channel, coalesce(last_error, '') FROM outbox
             WHERE state = 'dead' ORDER BY finished DESC, id DESC",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A `FeedState` from the first nine columns of a row.
fn feed_state_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedState> {
    Ok(FeedState {
        validators: Validators {
            etag: r.get(0)?,
            last_modified: r.get(1)?,
        },
        last_attempt: r.get::<_, Option<i64>>(2)?.and_then(from_unix),
        last_success: r.get::<_, Option<i64>>(3)?.and_then(from_unix),
        last_error_kind: r.get(4)?,
        last_error: r.get(5)?,
        consecutive_failures: r.get(6)?,
        failing_since: r.get::<_, Option<i64>>(7)?.and_then(from_unix),
        broken_since: r.get::<_, Option<i64>>(8)?.and_then(from_unix),
    })
}

/// How [`queue_alerts`] files alerts.
#[derive(Debug, Clone, Copy)]
enum Queue {
    /// To send, merging same-story alerts queued within the window (if not zero).
    Send(std::time::Duration),
    /// To hold (a flood), as they are.
    Hold,
}

/// Queues alerts in the outbox (an alert already queued for the same item and channel
/// is left alone); returns the ids of the new rows to send. An alert about a story
/// already queued for the channel within the dedupe window becomes a `merged` row, and
/// its feed is added to the first alert's sources. newshound's own notices (no rule
/// matched) are never merged.
fn queue_alerts(
    tx: &rusqlite::Transaction<'_>,
    alerts: &[(String, Alert)],
    at: DateTime<Utc>,
    how: Queue,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(alerts.len());
    let mut queue = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (feed, item_key, channel, alert, state, next_attempt,
                                       created, story_link, story_title, merged_into)
         VALUES (?1, ?2, ?3, ?4, ?6, ?5, ?5, ?7, ?8, ?9)",
    )?;
    let mut earlier = tx.prepare_cached(
        "SELECT id, alert FROM outbox
         WHERE channel = ?1 AND created >= ?2
           AND state IN ('pending', 'sending', 'sent', 'held')
           AND (story_link = ?3 OR story_title = ?4)
         ORDER BY id LIMIT 1",
    )?;
    let mut add_source = tx.prepare_cached("UPDATE outbox SET alert = ?2 WHERE id = ?1")?;
    for (channel, alert) in alerts {
        let json = serde_json::to_string(alert)
            .map_err(|source| StoreError::BadAlert { id: 0, source })?;
        let story = StoryKeys::of(alert.link.as_deref(), &alert.title);
        let first = match how {
            Queue::Send(window) if !window.is_zero() && !alert.why.is_empty() => {
                let since = at.timestamp().saturating_sub(window.as_secs() as i64);
                earlier
                    .query_row(params![channel, since, story.link, story.title], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?
            }
            _ => None,
        };
        let state = match (how, &first) {
            (Queue::Hold, _) => OutboxState::Held,
            (Queue::Send(_), Some(_)) => OutboxState::Merged,
            (Queue::Send(_), None) => OutboxState::Pending,
        };
        let row = params![
            alert.feed.0,
            alert.key.0,
            channel,
            json,
            at.timestamp(),
            state.as_str(),
            story.link,
            story.title,
            first.as_ref().map(|(id, _)| *id),
        ];
        if queue.execute(row)? == 0 {
            continue;
        }
        match first {
            Some((id, first_json)) => {
                let mut first = alert_of(id, &first_json)?;
                first.also_in.push(Source {
                    feed: alert.feed.clone(),
                    title: alert.title.clone(),
                    link: alert.link.clone(),
                });
                let json = serde_json::to_string(&first)
                    .map_err(|source| StoreError::BadAlert { id, source })?;
                add_source.execute(params![id, json])?;
            }
            None if state == OutboxState::Pending => ids.push(tx.last_insert_rowid()),
            None => {}
        }
    }
    Ok(ids)
}

/// The alert stored as JSON in outbox row `id`.
fn alert_of(id: i64, json: &str) -> Result<Alert, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::BadAlert { id, source })
}

fn from_unix(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let tx = conn.transaction()?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests;
