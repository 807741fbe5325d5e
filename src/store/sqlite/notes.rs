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
        params![
            l.rule,
            l.feed.0,
            l.key.0,
            l.alert,
            vote,
            l.text,
            l.at.timestamp()
        ],
    )?;
    Ok(())
}

pub fn learned(conn: &Connection) -> Result<Vec<Learned>, StoreError> {
    let mut stmt = conn.prepare(&dialect(learned::ALL))?;
    let rows = stmt.query_map([], |r| {
        let item = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        Ok((item, r.get::<_, String>(4)?, r.get(5)?, r.get(6)?))
    })?;
    rows.map(|row| {
        let (item, vote, text, at) = row?;
        Ok(learned_row(item, &vote, text, at))
    })
    .collect()
}
