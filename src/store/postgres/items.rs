//! The `seen_item` and `recent_item` tables on PostgreSQL.

use chrono::{DateTime, Utc};

use super::{Engine, feeds, outbox};
use crate::model::{FeedId, Item, ItemKey};
use crate::store::sql::items as sql;
use crate::store::types::Queue;
use crate::store::{PollRecord, RECENT, StoreError};

/// Which of `keys` have never been recorded for `feed`, in the order given.
pub async fn unseen(
    engine: &Engine,
    feed: &FeedId,
    keys: Vec<ItemKey>,
) -> Result<Vec<ItemKey>, StoreError> {
    let wanted: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let rows = engine
        .query(
            "SELECT item_key FROM seen_item WHERE feed = $1 AND item_key = ANY($2)",
            &[&feed.0, &wanted],
        )
        .await?;
    let seen: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(keys.into_iter().filter(|k| !seen.contains(&k.0)).collect())
}

/// Records a successful poll in one transaction: new items as seen, their alerts
/// queued, and the feed's validators. Returns the ids of the rows queued to send.
pub async fn record_poll(engine: &Engine, poll: &PollRecord) -> Result<Vec<i64>, StoreError> {
    let mut client = engine.client().await?;
    let fail = |e| engine.error(e);
    let tx = client.transaction().await.map_err(fail)?;
    let at = poll.at.timestamp();
    let keys: Vec<&str> = poll.new_keys.iter().map(|k| k.0.as_str()).collect();
    tx.execute(
        "INSERT INTO seen_item (feed, item_key, first_seen)
         SELECT $1, key, $3 FROM unnest($2::TEXT[]) AS key
         ON CONFLICT DO NOTHING",
        &[&poll.feed.0, &keys, &at],
    )
    .await
    .map_err(fail)?;
    for item in &poll.recent {
        let json = crate::store::types::recent_json(item)?;
        tx.execute(
            "INSERT INTO recent_item (feed, item_key, seen, item) VALUES ($1, $2, $3, $4)
             ON CONFLICT (feed, item_key) DO UPDATE SET seen = excluded.seen, item = excluded.item",
            &[&poll.feed.0, &item.key.0, &at, &json],
        )
        .await
        .map_err(fail)?;
    }
    tx.execute(sql::FORGET_RECENT, &[&(at - RECENT.as_secs() as i64)])
        .await
        .map_err(fail)?;
    let send = Queue::Send(poll.dedupe_within);
    let ids = outbox::queue(engine, &tx, &poll.alerts, poll.at, send).await?;
    outbox::queue(engine, &tx, &poll.held, poll.at, Queue::Hold).await?;
    feeds::record_success(engine, &tx, poll).await?;
    tx.commit().await.map_err(fail)?;
    Ok(ids)
}

/// Items first seen at or after `since` (and within [`RECENT`]), oldest first.
pub async fn recent_items(
    engine: &Engine,
    since: DateTime<Utc>,
) -> Result<Vec<(FeedId, Item)>, StoreError> {
    let rows = engine.query(sql::RECENT, &[&since.timestamp()]).await?;
    rows.iter()
        .map(|r| {
            let item = serde_json::from_str(r.get(1))
                .map_err(|cause| StoreError::BadAlert { id: 0, cause })?;
            Ok((FeedId(r.get(0)), item))
        })
        .collect()
}
