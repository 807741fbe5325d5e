//! A copy of the state taken while the daemon runs, and putting one back.
//!
//! `VACUUM INTO` writes a consistent snapshot from a read transaction: in WAL mode the
//! daemon goes on writing while it copies (its commits are simply not in the copy),
//! and the copy is compact, with no journal beside it. A restore checks the file as
//! the daemon would open it, then swaps it in whole, keeping the state it replaces.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::{MIGRATIONS, connect, connect_read_only, file_error, remove_leftovers, rename_durably};
use crate::store::StoreError;

/// What a state file holds, as a backup or restore reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    pub seen_items: u64,
    pub alerts: u64,
    /// Alerts still to be delivered (pending, sending or waiting for a digest).
    pub pending: u64,
    pub bytes: u64,
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} seen items, {} alerts ({} to deliver), {:.1} kB",
            self.seen_items,
            self.alerts,
            self.pending,
            self.bytes as f64 / 1000.0
        )
    }
}

/// Writes a consistent copy of the database `db` to `to`, which must not exist yet,
/// without stopping a daemon that has it open: built beside `to`, synced, then moved
/// into place, so that `to` is whole or absent.
pub fn backup(db: &Path, to: &Path) -> Result<Contents, StoreError> {
    if !super::exists(db)? {
        return Err(StoreError::NoState {
            path: db.to_owned(),
        });
    }
    if to.exists() {
        return Err(StoreError::BackupExists {
            path: to.to_owned(),
        });
    }
    let partial = PathBuf::from(format!("{}.partial", to.display()));
    remove_leftovers(&partial, &[""])?;
    let conn = connect_read_only(db)?;
    let target = partial.to_str().ok_or_else(|| StoreError::NotAState {
        path: partial.clone(),
        what: "its name is not UTF-8".into(),
    })?;
    conn.execute("VACUUM INTO ?1", [target])?;
    drop(conn);
    rename_durably(&partial, to)?;
    contents(&open_read_only(to)?, to)
}

/// `file` opened to read, as it is.
fn open_read_only(file: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(file, flags).map_err(|cause| StoreError::Open {
        path: file.to_owned(),
        cause,
    })
}

/// Checks that `file` is a whole newshound state this version can open (SQLite's
/// integrity check passes, it has newshound's tables, and its schema is not newer):
/// what it holds.
fn check(file: &Path) -> Result<Contents, StoreError> {
    let not_a_state = |what: String| StoreError::NotAState {
        path: file.to_owned(),
        what,
    };
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => {}
        Ok(meta) if meta.is_file() => return Err(not_a_state("it is empty".into())),
        Ok(_) => return Err(not_a_state("it is not a file".into())),
        Err(cause) => return Err(file_error(file)(cause)),
    }
    let conn = open_read_only(file)?;
    let said = |e: rusqlite::Error| not_a_state(e.to_string());
    let integrity: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
        .map_err(said)?;
    if integrity != "ok" {
        return Err(not_a_state(format!(
            "SQLite's integrity check says {integrity}"
        )));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(said)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::NewerSchema {
            found: version,
            known,
        });
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master
             WHERE type = 'table' AND name IN ('seen_item', 'outbox', 'feed_state')",
            [],
            |r| r.get(0),
        )
        .map_err(said)?;
    if version < 1 || tables < 3 {
        return Err(not_a_state(
            "it is an SQLite database of something else".into(),
        ));
    }
    contents(&conn, file)
}

/// Puts the state in `from` in place of the database `db` (whose daemon must be
/// stopped: the caller holds the state lock). The state it replaces is checkpointed
/// and kept beside it as `newshound.db.replaced-<time>`, returned with what the
/// restored state holds.
pub fn restore(
    db: &Path,
    from: &Path,
    now: DateTime<Utc>,
) -> Result<(Contents, Option<PathBuf>), StoreError> {
    let contents = check(from)?;
    let incoming = PathBuf::from(format!("{}.restoring", db.display()));
    std::fs::copy(from, &incoming).map_err(file_error(&incoming))?;
    // The restored file belongs to whoever owns the state (the daemon's user, when
    // root restores for a service), with the same permissions.
    let owner = match std::fs::metadata(db) {
        Ok(meta) => meta,
        Err(_) => {
            std::fs::metadata(db.parent().unwrap_or(Path::new("."))).map_err(file_error(db))?
        }
    };
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::os::unix::fs::chown(&incoming, Some(owner.uid()), Some(owner.gid()))
            .map_err(file_error(&incoming))?;
        let mode = if owner.is_dir() {
            0o600
        } else {
            owner.mode() & 0o777
        };
        std::fs::set_permissions(&incoming, std::fs::Permissions::from_mode(mode))
            .map_err(file_error(&incoming))?;
    }
    let kept = if super::exists(db)? {
        // Closing the only connection folds the journal into the file and removes it,
        // so the file kept is the whole state.
        let conn = connect(db)?;
        conn.close().map_err(|(_, cause)| StoreError::Open {
            path: db.to_owned(),
            cause,
        })?;
        let kept = PathBuf::from(format!(
            "{}.replaced-{}",
            db.display(),
            now.format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::rename(db, &kept).map_err(file_error(db))?;
        Some(kept)
    } else {
        None
    };
    remove_leftovers(db, &["-wal", "-shm"])?;
    rename_durably(&incoming, db)?;
    Ok((contents, kept))
}

/// What the state file `file`, open as `conn`, holds.
fn contents(conn: &Connection, file: &Path) -> Result<Contents, StoreError> {
    let count = |sql: &str| -> Result<u64, StoreError> {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let bytes = std::fs::metadata(file).map_err(file_error(file))?.len();
    Ok(Contents {
        seen_items: count("SELECT count(*) FROM seen_item")?,
        alerts: count("SELECT count(*) FROM outbox")?,
        pending: count("SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')")?,
        bytes,
    })
}
