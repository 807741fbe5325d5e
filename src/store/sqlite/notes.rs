//! The `daemon_note` table: what the daemon wants `status` to say (a refused config).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::from_unix;
use crate::store::StoreError;

/// Sets (or with `None`, clears) a note.
pub fn set(
    conn: &Connection,
    key: &str,
    value: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
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
pub fn get(conn: &Connection, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT value, at FROM daemon_note WHERE key = ?1",
            [key],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()?
        .map(|(value, at)| (value, from_unix(at).unwrap_or_default())))
}
