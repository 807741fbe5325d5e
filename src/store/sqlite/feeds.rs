//! The `feed_state` table: validators, poll results and health of each feed.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{dialect, from_unix, outbox};
use crate::model::FeedId;
use crate::model::Validators;
use crate::store::sql::{FEED_COLUMNS, feeds as sql};
use crate::store::types::{Dedupe, Health, NewItemTimes, Queue};
use crate::store::{FeedState, PollRecord, StoreError};

pub fn feed_state(conn: &Connection, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
    let state = conn
        .prepare_cached(&dialect(sql::STATE))?
        .query_row([&feed.0], feed_state_row)
        .optional()?;
    Ok(state)
}

/// Every feed the store knows: its state and how many items it has recorded.
pub fn feed_states(conn: &Connection) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::STATES))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            FeedId(r.get(FEED_COLUMNS)?),
            feed_state_row(r)?,
            r.get::<_, i64>(FEED_COLUMNS + 1)?.unsigned_abs(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When polls of each feed brought new items, newest first, at most `limit` times
/// per feed.
pub fn new_item_times(conn: &Connection, limit: usize) -> Result<NewItemTimes, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::NEW_ITEM_TIMES))?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut times = NewItemTimes::new();
    for row in rows {
        let (feed, at) = row?;
        times
            .entry(FeedId(feed))
            .or_default()
            .push(from_unix(at).unwrap_or_default());
    }
    Ok(times)
}

/// A successful poll: the validators for the next conditional GET, failures reset,
/// whether the feed is flooding (`None`: as it was), what its document needed
/// repaired, and the articles that could not be read.
pub fn record_success(conn: &Connection, poll: &PollRecord) -> Result<(), StoreError> {
    conn.prepare_cached(&dialect(sql::RECORD_SUCCESS))?
        .execute(params![
            poll.feed.0,
            poll.validators.etag,
            poll.validators.last_modified,
            poll.at.timestamp(),
            poll.flooding,
            poll.repaired,
            poll.articles_failed,
            poll.article_error,
            poll.newest.map(|at| at.timestamp()),
            i64::from(poll.gap),
            i64::try_from(poll.dropped.len()).unwrap_or(i64::MAX),
        ])?;
    Ok(())
}

/// A poll that found nothing new (304), recorded as a success.
pub fn record_unchanged(
    conn: &Connection,
    feed: &FeedId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(&dialect(sql::RECORD_UNCHANGED))?
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
        .prepare_cached(&dialect(sql::RECORD_FAILURE))?
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
pub fn set_health(conn: &Connection, health: &Health) -> Result<(), StoreError> {
    let Health { feed, at, .. } = health;
    let since = health.broken.then(|| at.timestamp());
    conn.prepare_cached(&dialect(sql::SET_BROKEN))?
        .execute(params![feed.0, since])?;
    outbox::queue(conn, &health.alerts, *at, Queue::Send(Dedupe::OFF))?;
    Ok(())
}

/// A `FeedState` from the first sixteen columns of a row (`sql::feed_columns`).
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
        newest_item: r.get::<_, Option<i64>>(14)?.and_then(from_unix),
        gaps: r.get::<_, i64>(15)?.unsigned_abs(),
        dropped: r.get::<_, i64>(16)?.unsigned_abs(),
        first_success: r.get::<_, Option<i64>>(17)?.and_then(from_unix),
    })
}
