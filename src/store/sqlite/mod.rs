//! The embedded engine: one SQLite file in the state directory, in WAL mode with
//! `synchronous=FULL`, so a commit that returned is on disk.
//!
//! One writer thread owns the only connection that writes. It takes every write that
//! is waiting and commits them in one transaction, each inside its own savepoint: a
//! write that fails is rolled back alone, and nobody hears that their write succeeded
//! before the commit that holds it is durable. A poll's record waits for others to
//! share its commit while they keep coming (each within [`GROUP_PAUSE`] of the last,
//! for at most [`GROUP_WINDOW`]), so 1,000 polls finishing together cost a handful of
//! fsyncs, not 1,000; what the dispatcher writes (claims, "sent") is committed at
//! once, as is everything waiting with it.
//! Reads run on blocking threads, each on a connection of its own (WAL lets them read
//! while the writer writes). `engine` says which operation runs where; the SQL is in
//! `{feeds,items,outbox,notes,dump}.rs` and, where PostgreSQL reads it alike, in the
//! store's `sql`.

pub mod backup;
pub mod dump;
mod engine;
pub mod feeds;
pub mod items;
pub mod notes;
pub mod outbox;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::StoreError;
use super::rate::RateWindow;
pub use super::types::from_unix;

/// Each entry upgrades the schema by one version; `PRAGMA user_version` says how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("migration_2.sql"),
    include_str!("migration_3.sql"),
    include_str!("migration_4.sql"),
    include_str!("migration_5.sql"),
    include_str!("migration_6.sql"),
    include_str!("migration_7.sql"),
    include_str!("migration_8.sql"),
    include_str!("migration_9.sql"),
    include_str!("migration_10.sql"),
    include_str!("migration_11.sql"),
    include_str!("migration_12.sql"),
    include_str!("migration_13.sql"),
    include_str!("migration_14.sql"),
    include_str!("migration_15.sql"),
    include_str!("migration_16.sql"),
];

/// A batch that may wait is committed once no write came for this long: polls
/// finishing in a burst share one commit (one fsync); a lone poll waits this much.
const GROUP_PAUSE: Duration = Duration::from_millis(10);
/// ... or once its first write waited this long, however busy the burst. A poll holds
/// no fetch slot while it waits for its commit.
const GROUP_WINDOW: Duration = Duration::from_millis(50);
/// At most this many writes share a transaction, so one commit never grows without
/// bound while writes keep arriving.
const MAX_BATCH: usize = 512;
/// Reads run on at most this many connections (and blocking threads) at a time: a
/// read is a few index lookups, and every connection holds its own page cache.
const READERS: usize = 4;
/// Another process (`newshound status`, `replay`) may hold the write lock for a
/// moment; wait rather than fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a write may wait for others to share its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Within [`GROUP_WINDOW`]: a poll's outcome.
    Grouped,
    /// As soon as the writer is free: someone is waiting on it (a delivery that must
    /// be marked sent before the next, a claim).
    Now,
}

/// A write waiting for the writer thread: it runs inside the batch's transaction, then
/// hears whether the commit made it durable.
trait Write: Send {
    fn commit(&self) -> Commit;
    /// Runs the write; `false` if it failed (its savepoint is then rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Tells the caller the outcome once the batch's commit returned.
    fn finish(self: Box<Self>, committed: Result<(), &str>);
}

struct Pending<T, F> {
    commit: Commit,
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Write for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn commit(&self) -> Commit {
        self.commit
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        let result = op(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), &str>) {
        let result = match (self.result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(message)) => Err(StoreError::Commit(message.to_owned())),
            // The write panicked: nothing of it was kept.
            (None, _) => Err(StoreError::Commit("the write failed unexpectedly".into())),
        };
        // The caller may have stopped waiting (shutdown); the write stands anyway.
        let _ = self.reply.send(result);
    }
}

/// The SQLite engine: the writer thread's queue and the readers' connections.
#[derive(Debug)]
pub struct Engine {
    writes: mpsc::Sender<Box<dyn Write>>,
    readers: Arc<Readers>,
    reading: tokio::sync::Semaphore,
    /// A test hook: the writer sleeps this many microseconds before each commit, after
    /// the batch's writes ran.
    commit_delay: Arc<AtomicU64>,
    /// Each channel's messages of the last minute: with one instance, memory will do.
    rate: RateWindow,
}

impl Engine {
    /// Opens (creating if needed) the database at `path`, brings its schema up to date
    /// and starts the writer thread. Blocking: call it off the async workers.
    pub fn open(path: &Path) -> Result<Engine, StoreError> {
        if !exists(path)? {
            create(path)?;
        }
        let mut conn = connect(path)?;
        migrate(&mut conn)?;
        let (writes, queue) = mpsc::channel();
        let commit_delay = Arc::new(AtomicU64::new(0));
        let delay = Arc::clone(&commit_delay);
        std::thread::Builder::new()
            .name("newshound-store".into())
            .spawn(move || write_loop(conn, &queue, &delay))
            .map_err(|cause| StoreError::StateDir {
                path: path.to_owned(),
                cause,
            })?;
        Ok(Engine {
            writes,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                read_only: false,
                idle: Mutex::new(Vec::new()),
            }),
            reading: tokio::sync::Semaphore::new(READERS),
            commit_delay,
            rate: RateWindow::default(),
        })
    }

    /// Opens the existing database at `path` to read, writing nothing to it or beside
    /// it (no migration, no checkpoint); it has no writer, so every write fails
    /// ([`StoreError::WriterGone`]). Blocking.
    pub fn open_read_only(path: &Path) -> Result<Engine, StoreError> {
        let conn = connect_read_only(path)?;
        let known = MIGRATIONS.len() as i64;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|cause| StoreError::Open {
                path: path.to_owned(),
                cause,
            })?;
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        if found < known {
            return Err(StoreError::OlderSchema { found, known });
        }
        // No writer: a write finds the queue closed.
        let (writes, _) = mpsc::channel();
        Ok(Engine {
            writes,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                read_only: true,
                idle: Mutex::new(vec![conn]),
            }),
            reading: tokio::sync::Semaphore::new(READERS),
            commit_delay: Arc::new(AtomicU64::new(0)),
            rate: RateWindow::default(),
        })
    }

    /// Runs `op` in the next commit; returns its result once the commit is durable.
    pub async fn write<T, F>(&self, commit: Commit, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write = Box::new(Pending {
            commit,
            op: Some(op),
            result: None,
            reply,
        });
        self.writes
            .send(write)
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Runs `op` on a reader connection, on a blocking thread.
    pub async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // Never closed, so acquiring can only wait.
        let _reader = self.reading.acquire().await;
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = op(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }
}

/// Shared SQL ([`sql`](super::sql), `$1` placeholders) as SQLite spells it (`?1`). No
/// shared statement holds a `$` but in a placeholder.
pub fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Idle reader connections, opened as needed and kept for the next read.
#[derive(Debug)]
struct Readers {
    path: PathBuf,
    /// Opened by [`Engine::open_read_only`]: connect without writing anything.
    read_only: bool,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None if self.read_only => connect_read_only(&self.path),
            None => {
                let conn = connect(&self.path)?;
                conn.pragma_update(None, "query_only", true)?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |cause| StoreError::Open {
        path: path.to_owned(),
        cause,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    Ok(conn)
}

/// Whether there is a database at `path`: `false` when nothing is there, an error when
/// what is there cannot be one (a directory, an empty file) or cannot be looked at.
/// newshound never leaves an empty database file ([`create`]), so an empty one was cut
/// short or replaced, and is not taken as a new, empty state: with `first_poll =
/// "alert"` every item would be sent again.
pub fn exists(path: &Path) -> Result<bool, StoreError> {
    let damaged = |what| StoreError::Damaged {
        path: path.to_owned(),
        what,
    };
    match std::fs::metadata(path) {
        Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(cause) => Err(StoreError::Unreadable {
            path: path.to_owned(),
            cause,
        }),
        Ok(meta) if !meta.is_file() => Err(damaged("is not a file")),
        Ok(meta) if meta.len() == 0 => Err(damaged("is empty (0 bytes), so it was cut short")),
        Ok(_) => Ok(true),
    }
}

/// Creates the database at `path` whole: built beside it with its schema, then moved
/// into place, so that no crash leaves an empty database file at `path`.
fn create(path: &Path) -> Result<(), StoreError> {
    let aside = path.with_extension("db.new");
    remove_leftovers(&aside, &["", "-wal", "-shm"])?;
    let mut conn = connect(&aside)?;
    migrate(&mut conn)?;
    // Closing checkpoints the journal into the file and removes it.
    conn.close().map_err(|(_, cause)| StoreError::Open {
        path: aside.clone(),
        cause,
    })?;
    rename_durably(&aside, path)
}

/// The error of a file operation on `path`.
fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + use<> {
    let path = path.to_owned();
    move |cause| StoreError::Unreadable { path, cause }
}

/// Removes each of the files named `path` and one of `suffixes` that is there (a
/// database and its journal, left by a run cut short).
fn remove_leftovers(path: &Path, suffixes: &[&str]) -> Result<(), StoreError> {
    for suffix in suffixes {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_error(&file)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Moves the whole file `from` to `to` for good: its content synced, the rename, then
/// the folder that holds it synced.
fn rename_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::File::open(from)
        .and_then(|f| f.sync_all())
        .map_err(file_error(from))?;
    std::fs::rename(from, to).map_err(file_error(to))?;
    let dir = match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(file_error(dir))
}

/// A connection that writes nothing, not even the WAL index beside the database where
/// it is missing: a database that no writer has open is then read as immutable (the
/// daemon is stopped, perhaps on a read-only mount).
fn connect_read_only(path: &Path) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let open_err = |cause| StoreError::Open {
        path: path.to_owned(),
        cause,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let shared_index = PathBuf::from(format!("{}-shm", path.display()));
    if shared_index.exists() {
        return Ok(conn);
    }
    // A URI names a file from the root: a relative state directory (a relative
    // `--config`) is made absolute against the working directory first.
    let uri = std::path::absolute(path)
        .ok()
        .and_then(|absolute| url::Url::from_file_path(absolute).ok())
        .map(|mut url| {
            url.set_query(Some("immutable=1"));
            url.to_string()
        })
        .ok_or_else(|| StoreError::Damaged {
            path: path.to_owned(),
            what: "cannot be named as a file URI",
        })?;
    let conn =
        Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    Ok(conn)
}

/// The writer thread: batches waiting writes into one transaction until every handle
/// to the engine is gone.
fn write_loop(mut conn: Connection, queue: &mpsc::Receiver<Box<dyn Write>>, delay: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let mut now = first.commit() == Commit::Now;
        let mut batch = vec![first];
        let window_ends = Instant::now() + GROUP_WINDOW;
        while batch.len() < MAX_BATCH {
            let next = if now {
                queue.try_recv().ok()
            } else {
                let left = window_ends.saturating_duration_since(Instant::now());
                queue.recv_timeout(left.min(GROUP_PAUSE)).ok()
            };
            let Some(write) = next else { break };
            now |= write.commit() == Commit::Now;
            batch.push(write);
        }
        let committed = run_batch(&mut conn, &mut batch, delay).map_err(|e| e.to_string());
        for write in batch {
            write.finish(committed.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

/// Runs a batch's writes in one transaction and commits it (after the test hook's
/// `delay`, if any: a kill then lands after the writes, before the commit).
fn run_batch(
    conn: &mut Connection,
    batch: &mut [Box<dyn Write>],
    delay: &AtomicU64,
) -> rusqlite::Result<()> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for write in batch.iter_mut() {
        let mut savepoint = tx.savepoint()?;
        // A panic inside one write fails that write, not the writer thread.
        let ok =
            std::panic::catch_unwind(AssertUnwindSafe(|| write.run(&savepoint))).unwrap_or(false);
        if ok {
            savepoint.commit()?;
        } else {
            savepoint.rollback()?;
        }
    }
    let micros = delay.load(Ordering::Relaxed);
    if micros > 0 {
        std::thread::sleep(Duration::from_micros(micros));
    }
    tx.commit()
}

/// Turns on incremental auto-vacuum, so that the pages of pruned rows can go back to
/// the disk ([`reclaim`]). A new file takes it at once; a file made before needs one
/// `VACUUM` (a rewrite of the file, once, when this version first opens it).
fn vacuum_incrementally(conn: &Connection) -> Result<(), StoreError> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != INCREMENTAL {
        conn.pragma_update(None, "auto_vacuum", INCREMENTAL)?;
        conn.execute_batch("VACUUM")?;
    }
    Ok(())
}

/// Gives the pages that deleted rows freed back to the disk; how many bytes.
pub fn reclaim(conn: &Connection) -> Result<u64, StoreError> {
    let free = || -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT freelist_count * page_size FROM pragma_freelist_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )
    };
    let before = free()?;
    // The pragma frees a page per step: it is stepped to its end.
    let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut steps = vacuum.query([])?;
    while steps.next()?.is_some() {}
    drop(steps);
    Ok(before.saturating_sub(free()?).unsigned_abs())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    vacuum_incrementally(conn)?;
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
