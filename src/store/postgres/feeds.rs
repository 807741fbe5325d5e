//! The `feed_state` table on PostgreSQL (see the SQLite engine's for what each
//! operation keeps).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{Engine, outbox};
use crate::model::{FeedId, Validators};
use crate::store::sql::{FEED_COLUMNS, feed_columns, feeds as sql};
use crate::store::types::from_unix;
use crate::store::types::{Dedupe, Health, NewItemTimes, Queue};
use crate::store::{Failure, FeedState, PollRecord, StoreError};

/// The states of the feeds named in `$1`, each with its name.
const STATES_OF: &str = concat!(
    "SELECT ",
    feed_columns!(),
    ", feed FROM feed_state WHERE feed = ANY($1)"
);

pub async fn feed_state(engine: &Engine, feed: &FeedId) -> Result<Option<FeedState>, StoreError> {
    let row = engine.query_opt(sql::STATE, &[&feed.0]).await?;
    Ok(row.as_ref().map(feed_state_row))
}

/// The state of each of `feeds` (the default for one never polled), in order.
pub async fn feed_states_of(
    engine: &Engine,
    feeds: &[FeedId],
) -> Result<Vec<FeedState>, StoreError> {
    let names: Vec<&str> = feeds.iter().map(|f| f.0.as_str()).collect();
    let rows = engine.query(STATES_OF, &[&names]).await?;
    Ok(feeds
        .iter()
        .map(|feed| {
            rows.iter()
                .find(|r| r.get::<_, &str>(FEED_COLUMNS) == feed.0)
                .map(feed_state_row)
                .unwrap_or_default()
        })
        .collect())
}

/// Every feed the store knows: its state and how many items it has recorded.
pub async fn feed_states(engine: &Engine) -> Result<Vec<(FeedId, FeedState, u64)>, StoreError> {
    let rows = engine.query(sql::STATES, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                FeedId(r.get(FEED_COLUMNS)),
                feed_state_row(r),
                r.get::<_, i64>(FEED_COLUMNS + 1).unsigned_abs(),
            )
        })
        .collect())
}

/// As the SQLite engine's: each feed's latest `limit` times polls brought news.
pub async fn new_item_times(engine: &Engine, limit: usize) -> Result<NewItemTimes, StoreError> {
    let rows = engine
        .query(sql::NEW_ITEM_TIMES, &[&(limit as i64)])
        .await?;
    let mut times = NewItemTimes::new();
    for r in &rows {
        times
            .entry(FeedId(r.get(0)))
            .or_default()
            .push(from_unix(r.get(1)).unwrap_or_default());
    }
    Ok(times)
}

/// A successful poll: the validators for the next conditional GET, failures reset,
/// whether the feed is flooding (`None`: as it was), what its document needed
/// repaired, and the articles that could not be read.
pub async fn record_success(
    engine: &Engine,
    client: &impl GenericClient,
    poll: &PollRecord,
) -> Result<(), StoreError> {
    engine
        .run_on(
            client,
            sql::RECORD_SUCCESS,
            &[
                &poll.feed.0,
                &poll.validators.etag,
                &poll.validators.last_modified,
                &poll.at.timestamp(),
                &poll.flooding,
                &poll.repaired,
                &i64::from(poll.articles_failed),
                &poll.article_error,
                &poll.newest.map(|at| at.timestamp()),
                &i64::from(poll.gap),
                &i64::try_from(poll.dropped.len()).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    Ok(())
}

/// A poll that found nothing new (304), recorded as a success.
pub async fn record_unchanged(
    engine: &Engine,
    client: &impl GenericClient,
    feed: &FeedId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    engine
        .run_on(client, sql::RECORD_UNCHANGED, &[&feed.0, &at.timestamp()])
        .await?;
    Ok(())
}

/// A failed poll; returns how many polls in a row have now failed.
pub async fn record_failure(
    engine: &Engine,
    feed: &FeedId,
    failure: &Failure,
    at: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let retry_after_until = failure.retry_after_until.map(|t| t.timestamp());
    let row = engine
        .query_one(
            sql::RECORD_FAILURE,
            &[
                &feed.0,
                &at.timestamp(),
                &failure.kind,
                &failure.message,
                &retry_after_until,
            ],
        )
        .await?;
    Ok(row.get::<_, i32>(0).unsigned_abs())
}

/// Declares a feed broken (`broken`) or recovered and queues the alerts that say so,
/// in one transaction.
pub async fn set_health(engine: &Engine, health: &Health) -> Result<(), StoreError> {
    let Health { feed, at, .. } = health;
    let mut client = engine.client().await?;
    let fail = |e| engine.error(e);
    let tx = client.transaction().await.map_err(fail)?;
    let since = health.broken.then(|| at.timestamp());
    engine
        .run_on(&tx, sql::SET_BROKEN, &[&feed.0, &since])
        .await?;
    let how = Queue::Send(Dedupe::OFF);
    outbox::queue(engine, &tx, &health.alerts, *at, how).await?;
    tx.commit().await.map_err(fail)?;
    Ok(())
}

/// A `FeedState` from the first sixteen columns of a row (`feed_columns`).
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
        newest_item: time(14),
        gaps: r.get::<_, i64>(15).unsigned_abs(),
        dropped: r.get::<_, i64>(16).unsigned_abs(),
        first_success: time(17),
    }
}
