//! Reading a whole state out, for `migrate-state`.

use rusqlite::Connection;

use super::feeds;
use crate::store::{Dump, DumpedRow, StoreError};

/// Every row of the state. Rows being sent (`sending`) are read as `pending`: no
/// process delivers them while the state directory is locked for the move.
pub fn dump(conn: &Connection) -> Result<Dump, StoreError> {
    let feeds = feeds::feed_states(conn)?
        .into_iter()
        .map(|(id, state, _)| (id, state))
        .collect();
    let seen = conn
        .prepare(
            "SELECT feed, item_key, first_seen, gone_since FROM seen_item
             ORDER BY feed, item_key",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let outbox = conn
        .prepare(
            "SELECT id, feed, item_key, channel, alert,
                    CASE state WHEN 'sending' THEN 'pending' ELSE state END, attempts,
                    next_attempt, last_error, created, finished, story_link, story_title,
                    merged_into
             FROM outbox ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(DumpedRow {
                id: r.get(0)?,
                feed: r.get(1)?,
                item_key: r.get(2)?,
                channel: r.get(3)?,
                alert: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                next_attempt: r.get(7)?,
                last_error: r.get(8)?,
                created: r.get(9)?,
                finished: r.get(10)?,
                story_link: r.get(11)?,
                story_title: r.get(12)?,
                merged_into: r.get(13)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let notes = conn
        .prepare("SELECT key, value, at FROM daemon_note ORDER BY key")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let recent = conn
        .prepare(
            "SELECT feed, item_key, seen, item, dropped_by FROM recent_item
             ORDER BY feed, item_key",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(Dump {
        feeds,
        seen,
        outbox,
        notes,
        recent,
        rule_days: super::items::rule_days(conn, i64::MIN)?,
        learned: super::notes::learned(conn)?,
    })
}
