//! The `daemon_note` and `learned` tables on PostgreSQL.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::store::sql::{learned, notes as sql};
use crate::store::types::{from_unix, learned_row};
use crate::store::{Learned, StoreError};

/// Sets (or with `None`, clears) a note.
pub async fn set(
    engine: &Engine,
    key: &str,
    value: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    match value {
        Some(value) => {
            engine
                .execute(sql::SET, &[&key, &value, &at.timestamp()])
                .await
        }
        None => engine.execute(sql::CLEAR, &[&key]).await,
    }?;
    Ok(())
}

/// A note and when it was set.
pub async fn get(
    engine: &Engine,
    key: &str,
) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
    let row = engine.query_opt(sql::GET, &[&key]).await?;
    Ok(row.map(|r| (r.get(0), from_unix(r.get(1)).unwrap_or_default())))
}

/// As the SQLite engine's.
pub async fn note_once(
    engine: &Engine,
    key: &str,
    value: &str,
    at: DateTime<Utc>,
) -> Result<String, StoreError> {
    engine
        .execute(sql::SET_ONCE, &[&key, &value, &at.timestamp()])
        .await?;
    let row = engine.query_opt(sql::GET, &[&key]).await?;
    row.map(|r| r.get(0)).ok_or_else(|| StoreError::Postgres {
        place: engine.place.clone(),
        cause: format!("the note {key} is gone right after it was set"),
    })
}

pub async fn learn(engine: &Engine, l: &Learned) -> Result<(), StoreError> {
    let vote = l.vote.to_string();
    engine
        .execute(
            learned::LEARN,
            &[
                &l.rule,
                &l.feed.0,
                &l.key.0,
                &l.alert,
                &vote,
                &l.text,
                &l.at.timestamp(),
            ],
        )
        .await?;
    Ok(())
}

pub async fn learned(engine: &Engine) -> Result<Vec<Learned>, StoreError> {
    let rows = engine.query(learned::ALL, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let item = (r.get(0), r.get(1), r.get(2), r.get(3));
            learned_row(item, r.get(4), r.get(5), r.get(6))
        })
        .collect())
}
