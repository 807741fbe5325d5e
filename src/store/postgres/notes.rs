//! The `daemon_note` table on PostgreSQL.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::store::StoreError;
use crate::store::sql::notes as sql;
use crate::store::types::from_unix;

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
