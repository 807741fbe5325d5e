//! The `seen_item` and `recent_item` tables: what each feed has brought, and the
//! items of the last day kept for trying new rules on them.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{dialect, feeds, outbox};
use crate::model::{FeedId, Item, ItemKey};
use crate::store::sql::items as sql;
use crate::store::types::Queue;
use crate::store::types::recent_json;
use crate::store::{PollRecord, RECENT, StoreError};

/// Which of `keys` have never been recorded for `feed`, in the order given.
pub fn unseen(
    conn: &Connection,
    feed: &FeedId,
    keys: Vec<ItemKey>,
) -> Result<Vec<ItemKey>, StoreError> {
    // One read transaction for all the lookups, not one (with its locks) per key.
    let tx = conn.unchecked_transaction()?;
    // A feed with nothing seen yet (a first poll) needs no lookup per key.
    let known = tx
        .prepare_cached("SELECT 1 FROM seen_item WHERE feed = ?1 LIMIT 1")?
        .exists([&feed.0])?;
    let new = if known {
        let mut stmt =
            tx.prepare_cached("SELECT 1 FROM seen_item WHERE feed = ?1 AND item_key = ?2")?;
        let mut new = Vec::new();
        for key in keys {
            if !stmt.exists(params![feed.0, key.0])? {
                new.push(key);
            }
        }
        new
    } else {
        keys
    };
    tx.finish()?;
    Ok(new)
}

/// Records a successful poll: new items as seen, their alerts queued, and the feed's
/// validators. Returns the ids of the rows queued to send.
pub fn record_poll(conn: &Connection, poll: &PollRecord) -> Result<Vec<i64>, StoreError> {
    let at = poll.at.timestamp();
    let mut seen = conn.prepare_cached(
        "INSERT OR IGNORE INTO seen_item (feed, item_key, first_seen) VALUES (?1, ?2, ?3)",
    )?;
    for key in &poll.new_keys {
        seen.execute(params![poll.feed.0, key.0, at])?;
    }
    let mut keep = conn.prepare_cached(
        "INSERT OR REPLACE INTO recent_item (feed, item_key, seen, item) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for item in &poll.recent {
        let json = recent_json(item)?;
        keep.execute(params![poll.feed.0, item.key.0, at, json])?;
    }
    conn.prepare_cached(&dialect(sql::FORGET_RECENT))?
        .execute([at - RECENT.as_secs() as i64])?;
    let ids = outbox::queue(conn, &poll.alerts, poll.at, Queue::Send(poll.dedupe_within))?;
    outbox::queue(conn, &poll.held, poll.at, Queue::Hold)?;
    feeds::record_success(conn, poll)?;
    Ok(ids)
}

/// Items first seen at or after `since` (and within [`RECENT`]), oldest first.
pub fn recent_items(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Result<Vec<(FeedId, Item)>, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::RECENT))?;
    let rows = stmt.query_map([since.timestamp()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    rows.map(|row| {
        let (feed, json) = row?;
        let item =
            serde_json::from_str(&json).map_err(|cause| StoreError::BadAlert { id: 0, cause })?;
        Ok((FeedId(feed), item))
    })
    .collect()
}
