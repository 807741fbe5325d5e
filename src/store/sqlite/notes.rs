//! The `daemon_note` table: what the daemon wants `status` to say (a refused config).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{dialect, from_unix};
use crate::store::StoreError;
use crate::store::sql::notes as sql;

/// Sets (or with `None`, clears) a note.
pub fn set(
    conn: &Connection,
    key: &str,
    value: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    match value {
        Some(value) => conn.execute(&dialect(sql::SET), params![key, value, at.timestamp()])?,
        None => conn.execute(&dialect(sql::CLEAR), [key])?,
    };
    Ok(())
}

/// A note and when it was set.
pub fn get(conn: &Connection, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
    Ok(conn
        .query_row(&dialect(sql::GET), [key], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?
        .map(|(value, at)| (value, from_unix(at).unwrap_or_default())))
}
