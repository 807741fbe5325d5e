//! The `daemon_note` table: what the daemon wants `status` to say (a refused config),
//! and the key of feedback links; and the `learned` table: what feedback taught.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{dialect, from_unix};
use crate::store::sql::{learned, notes as sql};
use crate::store::types::learned_row;
use crate::store::{Learned, StoreError};

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

/// The note `key`, set to `value` first if it is not set yet.
pub fn note_once(
    conn: &Connection,
    key: &str,
    value: &str,
    at: DateTime<Utc>,
) -> Result<String, StoreError> {
    conn.execute(&dialect(sql::SET_ONCE), params![key, value, at.timestamp()])?;
    Ok(conn.query_row(&dialect(sql::GET), [key], |r| r.get(0))?)
}

pub fn learn(conn: &Connection, l: &Learned) -> Result<(), StoreError> {
    let vote = l.vote.to_string();
    conn.execute(
        &dialect(learned::LEARN),
        params![l.rule, l.alert, vote, l.text, l.at.timestamp()],
    )?;
    Ok(())
}

pub fn learned(conn: &Connection) -> Result<Vec<Learned>, StoreError> {
    let mut stmt = conn.prepare(&dialect(learned::ALL))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (rule, alert, vote, text, at) = row?;
        Ok(learned_row(rule, alert, &vote, text, at))
    })
    .collect()
}
