//! The `feed_state` table: validators, poll results and health of each feed.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{from_unix, outbox};
use crate::model::Validators;
use crate::model::{Alert, FeedId};
use crate::store::types::Queue;
use crate::store::{FeedState, PollRecord, StoreError};

const COLUMNS: &str = "etag, last_modified, last_attempt, last_success, last_error_kind,
                       last_error, consecutive_failures, failing_since, broken_since,
                       flooding_since, retry_after_until, repaired, articles_failed,
                       article_error";

pub fn feed_state(conn: &Connection, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
    let state = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM feed_state WHERE feed = ?1"))?
        .query_row([&feed.0], feed_state_row)
        .optional()?;
    Ok(state)
}

/// Every feed the store knows: its state and how many items it has recorded.
pub fn feed_states(conn: &Connection) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, feed, (SELECT count(*) FROM seen_item s WHERE s.feed = f.feed)
         FROM feed_state f ORDER BY feed"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            FeedId(r.get(14)?),
            feed_state_row(r)?,
            r.get::<_, i64>(15)?.unsigned_abs(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When polls of `feed` brought new items, newest first, at most `limit` times.
pub fn new_item_times(
    conn: &Connection,
    feed: &FeedId,
    limit: usize,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT first_seen FROM seen_item WHERE feed = ?1
         ORDER BY first_seen DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![feed.0, limit as i64], |r| r.get::<_, i64>(0))?;
    rows.map(|t| Ok(from_unix(t?).unwrap_or_default()))
        .collect()
}

/// A successful poll: the validators for the next conditional GET, failures reset,
/// whether the feed is flooding (`None`: as it was), what its document needed
/// repaired, and the articles that could not be read.
pub fn record_success(conn: &Connection, poll: &PollRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO feed_state (feed, etag, last_modified, last_attempt, last_success,
                                 consecutive_failures, flooding_since, repaired,
                                 articles_failed, article_error)
         VALUES (?1, ?2, ?3, ?4, ?4, 0, CASE WHEN ?5 THEN ?4 END, ?6, ?7, ?8)
         ON CONFLICT (feed) DO UPDATE SET
            etag = excluded.etag, last_modified = excluded.last_modified,
            repaired = excluded.repaired,
            articles_failed = feed_state.articles_failed + excluded.articles_failed,
            article_error = coalesce(excluded.article_error, feed_state.article_error),
            last_attempt = excluded.last_attempt, last_success = excluded.last_success,
            last_error_kind = NULL, last_error = NULL, consecutive_failures = 0,
            failing_since = NULL, retry_after_until = NULL,
            flooding_since = CASE ?5 WHEN 1 THEN coalesce(feed_state.flooding_since, ?4)
                                     WHEN 0 THEN NULL
                                     ELSE feed_state.flooding_since END",
    )?
    .execute(params![
        poll.feed.0,
        poll.validators.etag,
        poll.validators.last_modified,
        poll.at.timestamp(),
        poll.flooding,
        poll.repaired,
        poll.articles_failed,
        poll.article_error,
    ])?;
    Ok(())
}

/// A poll that found nothing new (304), recorded as a success.
pub fn record_unchanged(
    conn: &Connection,
    feed: &FeedId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE feed_state SET last_attempt = ?2, last_success = ?2, last_error_kind = NULL,
                               last_error = NULL, consecutive_failures = 0,
                               failing_since = NULL, retry_after_until = NULL
         WHERE feed = ?1",
    )?
    .execute(params![feed.0, at.timestamp()])?;
    Ok(())
}

/// A failed poll, with the end of the wait the server asked for if it did; returns how
/// many polls in a row have now failed.
pub fn record_failure(
    conn: &Connection,
    feed: &FeedId,
    failure: &crate::store::Failure,
    at: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let failures = conn
        .prepare_cached(
            "INSERT INTO feed_state (feed, last_attempt, last_error_kind, last_error,
                                     consecutive_failures, failing_since, retry_after_until)
             VALUES (?1, ?2, ?3, ?4, 1, ?2, ?5)
             ON CONFLICT (feed) DO UPDATE SET
                last_attempt = excluded.last_attempt, last_error_kind = excluded.last_error_kind,
                last_error = excluded.last_error,
                consecutive_failures = feed_state.consecutive_failures + 1,
                failing_since = coalesce(feed_state.failing_since, excluded.failing_since),
                retry_after_until = excluded.retry_after_until
             RETURNING consecutive_failures",
        )?
        .query_row(
            params![
                feed.0,
                at.timestamp(),
                failure.kind,
                failure.message,
                failure.retry_after_until.map(|t| t.timestamp())
            ],
            |r| r.get(0),
        )?;
    Ok(failures)
}

/// Declares a feed broken (`broken`) or recovered and queues the alerts that say so.
pub fn set_health(
    conn: &Connection,
    feed: &FeedId,
    broken: bool,
    alerts: &[(String, Alert)],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let since = broken.then(|| at.timestamp());
    conn.prepare_cached("UPDATE feed_state SET broken_since = ?2 WHERE feed = ?1")?
        .execute(params![feed.0, since])?;
    outbox::queue(conn, alerts, at, Queue::Send(std::time::Duration::ZERO))?;
    Ok(())
}

/// A `FeedState` from the first fourteen columns of a row ([`COLUMNS`]).
fn feed_state_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedState> {
    Ok(FeedState {
        validators: Validators {
            etag: r.get(0)?,
            last_modified: r.get(1)?,
        },
        last_attempt: r.get::<_, Option<i64>>(2)?.and_then(from_unix),
        last_success: r.get::<_, Option<i64>>(3)?.and_then(from_unix),
        last_error_kind: r.get(4)?,
        last_error: r.get(5)?,
        consecutive_failures: r.get(6)?,
        failing_since: r.get::<_, Option<i64>>(7)?.and_then(from_unix),
        broken_since: r.get::<_, Option<i64>>(8)?.and_then(from_unix),
        flooding_since: r.get::<_, Option<i64>>(9)?.and_then(from_unix),
        retry_after_until: r.get::<_, Option<i64>>(10)?.and_then(from_unix),
        repaired: r.get(11)?,
        articles_failed: r.get::<_, i64>(12)?.unsigned_abs(),
        article_error: r.get(13)?,
    })
}
