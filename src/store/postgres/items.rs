//! The `seen_item` and `recent_item` tables on PostgreSQL.

use chrono::{DateTime, Utc};

use super::{Engine, feeds, outbox, shared};
use crate::model::{FeedId, Item, ItemKey};
use crate::store::sql::{items as sql, more_caught, rule_days, trace};
use crate::store::trace::{AlertRows, ItemRows, Search};
use crate::store::types::{Expired, Queue, RuleDay, caught_days, from_unix};
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

/// What a poll writes once it is over.
#[derive(Debug)]
pub enum Write {
    /// A poll that got a document.
    Poll(Box<PollRecord>),
    /// A poll answered "not modified".
    Unchanged(FeedId, DateTime<Utc>),
    /// This instance's turn at a source is over; it is next due then.
    PollDone(String, DateTime<Utc>),
}

/// Runs `writes` (the group commit's) in one transaction; for each poll, the ids of
/// the rows queued to send (none for the other writes).
pub async fn write_all(engine: &Engine, writes: &[Write]) -> Result<Vec<Vec<i64>>, StoreError> {
    let mut client = engine.client().await?;
    let fail = |e| engine.error(e);
    let tx = client.transaction().await.map_err(fail)?;
    let mut ids = Vec::with_capacity(writes.len());
    let mut newest = None;
    for write in writes {
        ids.push(match write {
            Write::Poll(poll) => {
                newest = newest.max(Some(poll.at));
                record_in(engine, &tx, poll).await?
            }
            Write::Unchanged(feed, at) => {
                feeds::record_unchanged(engine, &tx, feed, *at).await?;
                Vec::new()
            }
            Write::PollDone(source, next_due) => {
                shared::poll_done(engine, &tx, source, *next_due).await?;
                Vec::new()
            }
        });
    }
    if let Some(newest) = newest {
        let before = newest.timestamp() - RECENT.as_secs() as i64;
        engine.run_on(&tx, sql::FORGET_RECENT, &[&before]).await?;
    }
    count_caught(engine, &tx, writes).await?;
    let micros = engine
        .commit_delay
        .load(std::sync::atomic::Ordering::Relaxed);
    if micros > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
    }
    tx.commit().await.map_err(fail)?;
    Ok(ids)
}

/// What the rules caught in the polls of `writes`, added to their days in one
/// statement, in the order of (rule, day): every instance writes today's row of a
/// busy rule, and rows locked in one order cannot deadlock two transactions.
async fn count_caught(
    engine: &Engine,
    tx: &deadpool_postgres::Transaction<'_>,
    writes: &[Write],
) -> Result<(), StoreError> {
    let days = caught_days(writes.iter().filter_map(|w| match w {
        Write::Poll(poll) => Some(&**poll),
        _ => None,
    }));
    if days.is_empty() {
        return Ok(());
    }
    let (mut rules, mut day_list, mut counts, mut titles, mut times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((rule, day), (count, title, at)) in days {
        rules.push(rule);
        day_list.push(day);
        counts.push(count);
        titles.push(title);
        times.push(at);
    }
    engine
        .run_on(
            tx,
            concat!(
                "INSERT INTO rule_day (rule, day, caught, last_title, last_at)
                 SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[])
                     AS t(rule, day, caught, last_title, last_at)
                 ORDER BY rule, day ",
                more_caught!()
            ),
            &[&rules, &day_list, &counts, &titles, &times],
        )
        .await?;
    Ok(())
}

/// One poll's writes, inside `tx`.
async fn record_in(
    engine: &Engine,
    tx: &deadpool_postgres::Transaction<'_>,
    poll: &PollRecord,
) -> Result<Vec<i64>, StoreError> {
    let at = poll.at.timestamp();
    let keys: Vec<&str> = poll.new_keys.iter().map(|k| k.0.as_str()).collect();
    engine
        .run_on(
            tx,
            "INSERT INTO seen_item (feed, item_key, first_seen)
             SELECT $1, key, $3 FROM unnest($2::TEXT[]) AS key
             ON CONFLICT DO NOTHING",
            &[&poll.feed.0, &keys, &at],
        )
        .await?;
    // Only the items that left the document, or came back to it, are written.
    let present: Vec<&str> = poll
        .present
        .iter()
        .chain(&poll.new_keys)
        .map(|k| k.0.as_str())
        .collect();
    engine
        .run_on(
            tx,
            "UPDATE seen_item SET gone_since = $2
             WHERE feed = $1 AND gone_since IS NULL AND item_key <> ALL($3::TEXT[])",
            &[&poll.feed.0, &at, &present],
        )
        .await?;
    engine
        .run_on(
            tx,
            "UPDATE seen_item SET gone_since = NULL
             WHERE feed = $1 AND gone_since IS NOT NULL AND item_key = ANY($2::TEXT[])",
            &[&poll.feed.0, &present],
        )
        .await?;
    if !poll.recent.is_empty() {
        // One statement for all of them; an upsert may touch a row once, so a key
        // given twice keeps its last item.
        let dropped = poll.dropped_by();
        let mut recent: std::collections::BTreeMap<&str, String> = Default::default();
        for item in &poll.recent {
            recent.insert(&item.key.0, crate::store::types::recent_json(item)?);
        }
        let by: Vec<Option<&str>> = recent
            .keys()
            .map(|key| {
                let found = dropped.iter().find(|(k, _)| k.0 == *key);
                found.map(|(_, by)| *by)
            })
            .collect();
        let (keys, items): (Vec<&str>, Vec<String>) = recent.into_iter().unzip();
        engine
            .run_on(
                tx,
                "INSERT INTO recent_item (feed, item_key, seen, item, dropped_by)
                 SELECT $1, key, $2, item, by
                 FROM unnest($3::TEXT[], $4::TEXT[], $5::TEXT[]) AS t(key, item, by)
                 ON CONFLICT (feed, item_key)
                 DO UPDATE SET seen = excluded.seen, item = excluded.item,
                               dropped_by = excluded.dropped_by",
                &[&poll.feed.0, &at, &keys, &items, &by],
            )
            .await?;
    }
    let send = Queue::Send(poll.dedupe);
    let ids = outbox::queue(engine, tx, &poll.alerts, poll.at, send).await?;
    outbox::queue(engine, tx, &poll.held, poll.at, Queue::Hold).await?;
    feeds::record_success(engine, tx, poll).await?;
    Ok(ids)
}

/// Deletes at most `limit` rows of `what` that expired before `before`, in a
/// transaction of its own that holds its row locks only that long.
pub async fn expire(
    engine: &Engine,
    what: Expired,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    engine
        .execute(sql::expired(what), &[&before.timestamp(), &limit])
        .await
}

/// Forgets the feeds not in `configured` and not polled since `before` (by any
/// instance), with their items, and the turns of sources nobody polled since.
pub async fn forget_feeds(
    engine: &Engine,
    before: DateTime<Utc>,
    configured: &[FeedId],
) -> Result<(u64, u64), StoreError> {
    let configured: Vec<&str> = configured.iter().map(|f| f.0.as_str()).collect();
    let before = before.timestamp();
    let feeds = engine
        .query(
            "SELECT feed FROM feed_state WHERE coalesce(last_attempt, 0) < $1
               AND feed <> ALL($2::TEXT[])",
            &[&before, &configured],
        )
        .await?;
    let mut items = 0;
    for row in &feeds {
        let feed: &str = row.get(0);
        let mut client = engine.client().await?;
        let fail = |e| engine.error(e);
        let tx = client.transaction().await.map_err(fail)?;
        items += engine
            .run_on(&tx, "DELETE FROM seen_item WHERE feed = $1", &[&feed])
            .await?;
        engine
            .run_on(
                &tx,
                "DELETE FROM feed_state WHERE feed = $1 AND coalesce(last_attempt, 0) < $2",
                &[&feed, &before],
            )
            .await?;
        tx.commit().await.map_err(fail)?;
    }
    engine
        .execute(
            "DELETE FROM poll_claim WHERE coalesce(next_due, 0) < $1
               AND coalesce(lease_until, 0) < $1",
            &[&before],
        )
        .await?;
    Ok((feeds.len() as u64, items))
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

/// As the SQLite engine's.
pub async fn find(
    engine: &Engine,
    search: &Search,
) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
    let rows = engine
        .query(trace::FIND, &[&search.exact, &search.like])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// As the SQLite engine's.
pub async fn item_rows(
    engine: &Engine,
    feed: &FeedId,
    key: &ItemKey,
) -> Result<ItemRows, StoreError> {
    let item: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&feed.0, &key.0];
    let seen = engine.query_opt(trace::SEEN, &item).await?;
    let first = engine
        .query_opt(trace::FEED_FIRST_POLLED, &item[..1])
        .await?;
    let kept = engine.query_opt(trace::KEPT, &item).await?;
    let alerts = engine.query(trace::ALERTS, &item).await?;
    Ok(ItemRows {
        seen: seen.map(|r| (r.get(0), r.get(1))),
        feed_first_polled: first.and_then(|r| r.get(0)),
        kept: kept.map(|r| (r.get(0), r.get(1))),
        alerts: alerts
            .iter()
            .map(|r| AlertRows {
                id: r.get(0),
                channel: r.get(1),
                state: r.get(2),
                attempts: i64::from(r.get::<_, i32>(3)),
                last_error: r.get(4),
                created: r.get(5),
                finished: r.get(6),
                merged_into: r.get(7),
                alert: r.get(8),
                merged_alert: r.get(9),
            })
            .collect(),
    })
}

/// As the SQLite engine's.
pub async fn rule_days(engine: &Engine, since: i64) -> Result<Vec<RuleDay>, StoreError> {
    let rows = engine.query(rule_days::SINCE, &[&since]).await?;
    Ok(rows
        .iter()
        .map(|r| RuleDay {
            rule: r.get(0),
            day: from_unix(r.get(1)).unwrap_or_default(),
            caught: r.get::<_, i64>(2).unsigned_abs(),
            last_title: r.get(3),
            last_at: from_unix(r.get(4)).unwrap_or_default(),
        })
        .collect())
}
