//! The `feed_state` table on PostgreSQL (see the SQLite engine's for what each
//! operation keeps).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{Engine, outbox};
use crate::model::{Alert, FeedId, Validators};
use crate::store::types::Queue;
use crate::store::types::from_unix;
use crate::store::{Failure, FeedState, PollRecord, StoreError};

const COLUMNS: &str = "etag, last_modified, last_attempt, last_success, last_error_kind,
                       last_error, consecutive_failures, failing_since, broken_since,
                       flooding_since, retry_after_until, repaired, articles_failed,
                       article_error";

pub async fn feed_state(engine: &Engine, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
    let client = engine.client().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM feed_state WHERE feed = $1"),
            &[&feed.0],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(row.as_ref().map(feed_state_row))
}

/// The state of each of `feeds` (the default for one never polled), in order.
pub async fn feed_states_of(
    engine: &Engine,
    feeds: &[FeedId],
) -> Result<Vec<FeedState>, StoreError> {
    let client = engine.client().await?;
    let names: Vec<&str> = feeds.iter().map(|f| f.0.as_str()).collect();
    let rows = client
        .query(
            &format!("SELECT {COLUMNS}, feed FROM feed_state WHERE feed = ANY($1)"),
            &[&names],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(feeds
        .iter()
        .map(|feed| {
            rows.iter()
                .find(|r| r.get::<_, &str>(14) == feed.0)
                .map(feed_state_row)
                .unwrap_or_default()
        })
        .collect())
}

/// Every feed the store knows: its state and how many items it has recorded.
pub async fn feed_states(engine: &Engine) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
    let client = engine.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS}, feed, (SELECT count(*) FROM seen_item s WHERE s.feed = f.feed)
                 FROM feed_state f ORDER BY feed"
            ),
            &[],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                FeedId(r.get(14)),
                feed_state_row(r),
                r.get::<_, i64>(15).unsigned_abs(),
            )
        })
        .collect())
}

/// When polls of `feed` brought new items, newest first, at most `limit` times.
pub async fn new_item_times(
    engine: &Engine,
    feed: &FeedId,
    limit: usize,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let client = engine.client().await?;
    let rows = client
        .query(
            "SELECT DISTINCT first_seen FROM seen_item WHERE feed = $1
             ORDER BY first_seen DESC LIMIT $2",
            &[&feed.0, &(limit as i64)],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(rows
        .iter()
        .map(|r| from_unix(r.get(0)).unwrap_or_default())
        .collect())
}

/// A successful poll: the validators for the next conditional GET, failures reset,
/// whether the feed is flooding (`None`: as it was), what its document needed
/// repaired, and the articles that could not be read.
pub async fn record_success(
    engine: &Engine,
    client: &impl GenericClient,
    poll: &PollRecord,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO feed_state (feed, etag, last_modified, last_attempt, last_success,
                                     consecutive_failures, flooding_since, repaired,
                                     articles_failed, article_error)
             VALUES ($1, $2, $3, $4::BIGINT, $4::BIGINT, 0, CASE WHEN $5::BOOLEAN THEN $4::BIGINT END, $6,
                     $7, $8)
             ON CONFLICT (feed) DO UPDATE SET
                etag = excluded.etag, last_modified = excluded.last_modified,
                repaired = excluded.repaired,
                articles_failed = feed_state.articles_failed + excluded.articles_failed,
                article_error = coalesce(excluded.article_error, feed_state.article_error),
                last_attempt = excluded.last_attempt, last_success = excluded.last_success,
                last_error_kind = NULL, last_error = NULL, consecutive_failures = 0,
                failing_since = NULL, retry_after_until = NULL,
                flooding_since = CASE $5::BOOLEAN
                                    WHEN TRUE THEN coalesce(feed_state.flooding_since, $4::BIGINT)
                                    WHEN FALSE THEN NULL
                                    ELSE feed_state.flooding_since END",
            &[
                &poll.feed.0,
                &poll.validators.etag,
                &poll.validators.last_modified,
                &poll.at.timestamp(),
                &poll.flooding,
                &poll.repaired,
                &i64::from(poll.articles_failed),
                &poll.article_error,
            ],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(())
}

/// A poll that found nothing new (304), recorded as a success.
pub async fn record_unchanged(
    engine: &Engine,
    feed: &FeedId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let client = engine.client().await?;
    client
        .execute(
            "UPDATE feed_state SET last_attempt = $2, last_success = $2, last_error_kind = NULL,
                                   last_error = NULL, consecutive_failures = 0,
                                   failing_since = NULL, retry_after_until = NULL
             WHERE feed = $1",
            &[&feed.0, &at.timestamp()],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(())
}

/// A failed poll; returns how many polls in a row have now failed.
pub async fn record_failure(
    engine: &Engine,
    feed: &FeedId,
    failure: &Failure,
    at: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let client = engine.client().await?;
    let row = client
        .query_one(
            "INSERT INTO feed_state (feed, last_attempt, last_error_kind, last_error,
                                     consecutive_failures, failing_since, retry_after_until)
             VALUES ($1, $2, $3, $4, 1, $2, $5)
             ON CONFLICT (feed) DO UPDATE SET
                last_attempt = excluded.last_attempt, last_error_kind = excluded.last_error_kind,
                last_error = excluded.last_error,
                consecutive_failures = feed_state.consecutive_failures + 1,
                failing_since = coalesce(feed_state.failing_since, excluded.failing_since),
                retry_after_until = excluded.retry_after_until
             RETURNING consecutive_failures",
            &[
                &feed.0,
                &at.timestamp(),
                &failure.kind,
                &failure.message,
                &failure.retry_after_until.map(|t| t.timestamp()),
            ],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(row.get::<_, i32>(0).unsigned_abs())
}

/// Declares a feed broken (`broken`) or recovered and queues the alerts that say so,
/// in one transaction.
pub async fn set_health(
    engine: &Engine,
    feed: &FeedId,
    broken: bool,
    alerts: &[(String, Alert)],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut client = engine.client().await?;
    let fail = |e| engine.error(e);
    let tx = client.transaction().await.map_err(fail)?;
    let since = broken.then(|| at.timestamp());
    tx.execute(
        "UPDATE feed_state SET broken_since = $2 WHERE feed = $1",
        &[&feed.0, &since],
    )
    .await
    .map_err(fail)?;
    outbox::queue(
        engine,
        &tx,
        alerts,
        at,
        Queue::Send(std::time::Duration::ZERO),
    )
    .await?;
    tx.commit().await.map_err(fail)?;
    Ok(())
}

/// A `FeedState` from the first fourteen columns of a row ([`COLUMNS`]).
fn feed_state_row(r: &Row) -> FeedState {
    let time = |i: usize| r.get::<_, Option<i64>>(i).and_then(from_unix);
    FeedState {
        validators: Validators {
            etag: r.get(0),
            last_modified: r.get(1),
        },
        last_attempt: time(2),
        last_success: time(3),
        last_error_kind: r.get(4),
        last_error: r.get(5),
        consecutive_failures: r.get::<_, i32>(6).unsigned_abs(),
        failing_since: time(7),
        broken_since: time(8),
        flooding_since: time(9),
        retry_after_until: time(10),
        repaired: r.get(11),
        articles_failed: r.get::<_, i64>(12).unsigned_abs(),
        article_error: r.get(13),
    }
}
