//! The `daemon_note` table on PostgreSQL.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::store::StoreError;
use crate::store::types::from_unix;

/// Sets (or with `None`, clears) a note.
pub async fn set(
    engine: &Engine,
    key: &str,
    value: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let client = engine.client().await?;
    let done = match value {
        Some(value) => {
            client
                .execute(
                    "INSERT INTO daemon_note (key, value, at) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at",
                    &[&key, &value, &at.timestamp()],
                )
                .await
        }
        None => {
            client
                .execute("DELETE FROM daemon_note WHERE key = $1", &[&key])
                .await
        }
    };
    done.map_err(|e| engine.error(e))?;
    Ok(())
}

/// A note and when it was set.
pub async fn get(
    engine: &Engine,
    key: &str,
) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
    let client = engine.client().await?;
    let row = client
        .query_opt("SELECT value, at FROM daemon_note WHERE key = $1", &[&key])
        .await
        .map_err(|e| engine.error(e))?;
    Ok(row.map(|r| (r.get(0), from_unix(r.get(1)).unwrap_or_default())))
}
