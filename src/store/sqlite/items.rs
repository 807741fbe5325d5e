//! The `seen_item` and `recent_item` tables: what each feed has brought, and the
//! items of the last day kept for trying new rules on them.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{dialect, feeds, outbox};
use crate::model::{FeedId, Item, ItemKey};
use crate::store::sql::{items as sql, rule_days, trace};
use crate::store::trace::{AlertRows, ItemRows, Search};
use crate::store::types::{Expired, Queue};
use crate::store::types::{RuleDay, caught_days, from_unix, recent_json};
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
    mark_presence(conn, poll)?;
    let mut keep = conn.prepare_cached(
        "INSERT OR REPLACE INTO recent_item (feed, item_key, seen, item, dropped_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let dropped = poll.dropped_by();
    for item in &poll.recent {
        let json = recent_json(item)?;
        let by = dropped.get(&item.key);
        keep.execute(params![poll.feed.0, item.key.0, at, json, by])?;
    }
    conn.prepare_cached(&dialect(sql::FORGET_RECENT))?
        .execute([at - RECENT.as_secs() as i64])?;
    let mut caught = conn.prepare_cached(&dialect(rule_days::CAUGHT))?;
    for ((rule, day), (count, title, last)) in caught_days([poll]) {
        caught.execute(params![rule, day, count, title, last])?;
    }
    let ids = outbox::queue(conn, &poll.alerts, poll.at, Queue::Send(poll.dedupe))?;
    outbox::queue(conn, &poll.held, poll.at, Queue::Hold)?;
    feeds::record_success(conn, poll)?;
    Ok(ids)
}

/// Marks the feed's items that left its document since the last poll as gone, and
/// those that came back as present again. Only the items that changed are written.
fn mark_presence(conn: &Connection, poll: &PollRecord) -> Result<(), StoreError> {
    let present = json_list(poll.present.iter().chain(&poll.new_keys).map(|k| &k.0[..]));
    conn.prepare_cached(
        "UPDATE seen_item SET gone_since = ?2
         WHERE feed = ?1 AND gone_since IS NULL
           AND item_key NOT IN (SELECT value FROM json_each(?3))",
    )?
    .execute(params![poll.feed.0, poll.at.timestamp(), present])?;
    conn.prepare_cached(
        "UPDATE seen_item SET gone_since = NULL
         WHERE feed = ?1 AND gone_since IS NOT NULL
           AND item_key IN (SELECT value FROM json_each(?2))",
    )?
    .execute(params![poll.feed.0, present])?;
    Ok(())
}

/// Strings as a JSON array, which SQL reads as a list with `json_each`.
fn json_list<'a>(strings: impl Iterator<Item = &'a str>) -> String {
    serde_json::Value::from_iter(strings).to_string()
}

/// Deletes at most `limit` rows of `what` that expired before `before`.
pub fn expire(
    conn: &Connection,
    what: Expired,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(conn
        .prepare_cached(&dialect(sql::expired(what)))?
        .execute(params![before.timestamp(), limit])?)
}

/// Forgets the feeds not in `configured` and not polled since `before`, with their
/// items: how many feeds, and how many items.
pub fn forget_feeds(
    conn: &Connection,
    before: DateTime<Utc>,
    configured: &[FeedId],
) -> Result<(u64, u64), StoreError> {
    let configured = json_list(configured.iter().map(|f| &f.0[..]));
    let feeds: Vec<String> = conn
        .prepare_cached(
            "SELECT feed FROM feed_state WHERE coalesce(last_attempt, 0) < ?1
               AND feed NOT IN (SELECT value FROM json_each(?2))",
        )?
        .query_map(params![before.timestamp(), configured], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut items = 0;
    for feed in &feeds {
        items += conn
            .prepare_cached("DELETE FROM seen_item WHERE feed = ?1")?
            .execute([feed])? as u64;
        conn.prepare_cached("DELETE FROM feed_state WHERE feed = ?1")?
            .execute([feed])?;
    }
    Ok((feeds.len() as u64, items))
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

/// Rows that may be the item `search` seeks: feed, key, the JSON found.
pub fn find(
    conn: &Connection,
    search: &Search,
) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare(&dialect(trace::FIND))?;
    let rows = stmt.query_map(params![search.exact, search.like], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the store holds of the item `key` of `feed`.
pub fn item_rows(conn: &Connection, feed: &FeedId, key: &ItemKey) -> Result<ItemRows, StoreError> {
    let item = params![feed.0, key.0];
    let seen = conn
        .prepare(&dialect(trace::SEEN))?
        .query_row(item, |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let feed_first_polled = conn
        .prepare(&dialect(trace::FEED_FIRST_POLLED))?
        .query_row([&feed.0], |r| r.get(0))
        .optional()?
        .flatten();
    let kept = conn
        .prepare(&dialect(trace::KEPT))?
        .query_row(item, |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let alerts = conn
        .prepare(&dialect(trace::ALERTS))?
        .query_map(item, |r| {
            Ok(AlertRows {
                id: r.get(0)?,
                channel: r.get(1)?,
                state: r.get(2)?,
                attempts: r.get(3)?,
                last_error: r.get(4)?,
                created: r.get(5)?,
                finished: r.get(6)?,
                merged_into: r.get(7)?,
                alert: r.get(8)?,
                merged_alert: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(ItemRows {
        seen,
        feed_first_polled,
        kept,
        alerts,
    })
}

/// Every rule's days from `since` on.
pub fn rule_days(conn: &Connection, since: i64) -> Result<Vec<RuleDay>, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(rule_days::SINCE))?;
    let rows = stmt.query_map([since], |r| {
        Ok(RuleDay {
            rule: r.get(0)?,
            day: from_unix(r.get(1)?).unwrap_or_default(),
            caught: r.get::<_, i64>(2)?.unsigned_abs(),
            last_title: r.get(3)?,
            last_at: from_unix(r.get(4)?).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
