//! What can go wrong with the state, and the lock that keeps a second daemon off it.

use std::path::{Path, PathBuf};

use super::LOCK_FILE;

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
    #[error("PostgreSQL database {place}: {cause}")]
    Postgres { place: String, cause: String },
    #[error(
        "PostgreSQL database {place} already holds a newshound state; move into an empty database (createdb a new one)"
    )]
    NotEmpty { place: String },
    #[error("{0}")]
    Unsupported(&'static str),
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
    #[error("{}: no state here to back up (the daemon has not run with this state_dir)", .path.display())]
    NoState { path: PathBuf },
    #[error("{}: already exists; name a new file for the backup", .path.display())]
    BackupExists { path: PathBuf },
    #[error("{}: not a newshound state: {what}", .path.display())]
    NotAState { path: PathBuf, what: String },
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
