//! The `outbox` table: alerts from queued to sent, dead, held or merged (the states and
//! their transitions are in [`crate::store::OutboxState`]).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{dialect, from_unix};
use crate::model::{Alert, Gist, Sketch, StoryKeys};
use crate::store::sql::outbox as sql;
use crate::store::types::{
    Candidate, Claim, Dedupe, MAX_HELD_PER_FEED, Mark, Queue, Retelling, alert_of, story_keys,
    with_source,
};
use crate::store::{
    OutboxCounts, OutboxRow, OutboxState, RecentAlert, Replayable, Retrying, StoreError,
};

/// Queues alerts (an alert already queued for the same item and channel is left
/// alone); returns the ids of the new rows to send. An alert about a story already
/// queued for the channel within the dedupe window (the same link or title, or a copy
/// of its text) becomes a `merged` row, and its feed is added to the first alert's
/// sources. newshound's own notices (no rule matched) are never merged.
pub fn queue(
    conn: &Connection,
    alerts: &[(String, Alert)],
    at: DateTime<Utc>,
    how: Queue,
) -> Result<Vec<i64>, StoreError> {
    let alerts = match (how, alerts.first()) {
        (Queue::Hold, Some((_, first))) => {
            let held: i64 = conn
                .prepare_cached(&dialect(sql::HELD))?
                .query_row([&first.feed.0], |r| r.get(0))?;
            let room = MAX_HELD_PER_FEED.saturating_sub(usize::try_from(held).unwrap_or(0));
            &alerts[..alerts.len().min(room)]
        }
        _ => alerts,
    };
    let mut ids = Vec::with_capacity(alerts.len());
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox (feed, item_key, channel, alert, state, next_attempt,
                                       created, story_link, story_title, merged_into, sketch,
                                       gist)
         VALUES (?1, ?2, ?3, ?4, ?6, ?5, ?5, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut earlier = conn.prepare_cached(&dialect(sql::EARLIER_STORY))?;
    let mut add_source = conn.prepare_cached(&dialect(sql::ADD_SOURCE))?;
    let mut add_band = conn.prepare_cached(&dialect(sql::ADD_BAND))?;
    for (channel, alert) in alerts {
        let json =
            serde_json::to_string(alert).map_err(|cause| StoreError::BadAlert { id: 0, cause })?;
        let story = StoryKeys::of(alert.link.as_deref(), &alert.title);
        let merging = how.merging(alert, at);
        let first = match merging {
            Some((since, dedupe)) => {
                let same = earlier
                    .query_row(params![channel, since, story.link, story.title], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?;
                match same {
                    Some(same) => Some(same),
                    None => retold(conn, channel, since, alert, dedupe)?,
                }
            }
            None => None,
        };
        let state = how.state(first.is_some());
        // Only a story's first alert is compared with later ones.
        let sketch = alert.sketch.as_ref().filter(|_| first.is_none());
        let gist = alert.gist.as_ref().filter(|_| first.is_none());
        let row = params![
            alert.feed.0,
            alert.key.0,
            channel,
            json,
            at.timestamp(),
            state.as_str(),
            story.link,
            story.title,
            first.as_ref().map(|(id, _)| *id),
            sketch.map(Sketch::to_bytes),
            gist.map(Gist::to_bytes),
        ];
        if insert.execute(row)? == 0 {
            continue;
        }
        let id = conn.last_insert_rowid();
        match first {
            Some((first, first_json)) => {
                let json = with_source(first, &first_json, alert)?;
                add_source.execute(params![first, json])?;
                continue;
            }
            None if state == OutboxState::Pending => ids.push(id),
            None => {}
        }
        // The first alert of its story: later copies are looked up by its bands, and
        // rewrites by its names.
        if merging.is_some() {
            for key in story_keys(alert) {
                add_band.execute(params![channel, key, id, at.timestamp()])?;
            }
        }
    }
    if let Some(before) = how.window_start(at) {
        conn.prepare_cached(&dialect(sql::FORGET_BANDS))?
            .execute([before])?;
    }
    Ok(ids)
}

/// The first alert for `channel` since `since` of the story `alert`'s item tells again,
/// if any: its id and JSON. A copy is looked for first, then (when `dedupe` merges
/// them) a rewrite.
fn retold(
    conn: &Connection,
    channel: &str,
    since: i64,
    alert: &Alert,
    dedupe: Dedupe,
) -> Result<Option<(i64, String)>, StoreError> {
    let candidates = |sql: &str, keys: &[i64]| -> Result<Vec<Candidate>, StoreError> {
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&channel, &since];
        params.extend(keys.iter().map(|k| k as &dyn rusqlite::ToSql));
        let mut stmt = conn.prepare_cached(&dialect(sql))?;
        let rows = stmt
            .query_map(&params[..], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    };
    for retelling in Retelling::of(alert, dedupe) {
        let Some(keys) = retelling.keys() else {
            continue;
        };
        let sql = sql::retold_candidates(&retelling);
        if let Some(first) = retelling.closest(candidates(sql, &keys)?) {
            return Ok(Some(first));
        }
    }
    Ok(None)
}

/// Claims up to `limit` pending alerts due at `now`, oldest first: they become
/// `sending` until `now + lease`.
pub fn claim_due(conn: &Connection, claim: &Claim) -> Result<Vec<OutboxRow>, StoreError> {
    let Claim {
        now, limit, lease, ..
    } = *claim;
    let channel = claim.channel.as_deref();
    let mut stmt = conn.prepare_cached(
        "UPDATE outbox SET state = 'sending', lease_until = ?3
         WHERE id IN (SELECT id FROM outbox
                      WHERE state = 'pending' AND next_attempt <= ?1
                        AND (?4 IS NULL OR channel = ?4)
                      ORDER BY next_attempt, id LIMIT ?2)
         RETURNING id, channel, alert, attempts, created",
    )?;
    let until = now.timestamp().saturating_add(lease.as_secs() as i64);
    let rows = stmt.query_map(
        params![now.timestamp(), limit as i64, until, channel],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )?;
    let mut rows = rows
        .map(|row| {
            let (id, channel, json, attempts, created) = row?;
            Ok(OutboxRow {
                id,
                alert: alert_of(id, &json)?,
                channel,
                attempts,
                created: from_unix(created).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // RETURNING gives no order; deliver oldest first.
    rows.sort_by_key(|r| (r.created, r.id));
    Ok(rows)
}

/// Returns claims whose lease ran out to `pending`; says how many.
pub fn release_expired(conn: &Connection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(&dialect(sql::RELEASE_EXPIRED))?
        .execute(params![now.timestamp()])?)
}

/// Failed rows waiting beyond `lifetime` after they were queued are due when it ends.
pub fn end_waits_at(conn: &Connection, lifetime: std::time::Duration) -> Result<usize, StoreError> {
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    Ok(conn
        .prepare_cached(&dialect(sql::END_WAITS_AT))?
        .execute([lifetime])?)
}

/// Returns every claim to `pending`.
pub fn release_claims(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET state = 'pending', lease_until = NULL WHERE state = 'sending'",
        [],
    )?)
}

/// When the earliest pending alert is due, if any is pending.
pub fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(&dialect(sql::NEXT_DUE))?
        .query_row([], |r| r.get(0))?;
    Ok(next.and_then(from_unix))
}

/// Moves each of `ids` as `mark` says, if it is in the state the move starts from.
pub fn mark(conn: &Connection, ids: &[i64], mark: &Mark) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(&sql::mark(mark, "id = $1")))?;
    let (at, error) = mark.values();
    for id in ids {
        match error {
            Some(error) => stmt.execute(params![id, at, error])?,
            None => stmt.execute(params![id, at])?,
        };
    }
    Ok(())
}

pub fn counts(conn: &Connection) -> Result<OutboxCounts, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::COUNTS))?;
    let mut counts = OutboxCounts::default();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        counts.count(&state, n.unsigned_abs());
    }
    Ok(counts)
}

/// Rows in `state` created at or after `since`, oldest first.
pub fn replayable(
    conn: &Connection,
    state: OutboxState,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Replayable>, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::REPLAYABLE))?;
    let since = since.map_or(i64::MIN, |s| s.timestamp());
    let rows = stmt.query_map(params![state.as_str(), since], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (id, channel, json, created, last_error) = row?;
        Ok(Replayable {
            id,
            channel,
            alert: alert_of(id, &json)?,
            created: from_unix(created).unwrap_or_default(),
            last_error,
        })
    })
    .collect()
}

/// Alerts waiting to be tried again after a failure, soonest first.
pub fn retrying(conn: &Connection) -> Result<Vec<Retrying>, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::RETRYING))?;
    let rows = stmt.query_map([], |r| {
        Ok(Retrying {
            id: r.get(0)?,
            channel: r.get(1)?,
            attempts: r.get(2)?,
            next_attempt: from_unix(r.get(3)?).unwrap_or_default(),
            last_error: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest `limit` alerts queued, newest first.
pub fn recent_alerts(conn: &Connection, limit: usize) -> Result<Vec<RecentAlert>, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::RECENT_ALERTS))?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (id, channel, state, created, json) = row?;
        Ok(RecentAlert {
            id,
            channel,
            state,
            created: from_unix(created).unwrap_or_default(),
            alert: alert_of(id, &json)?,
        })
    })
    .collect()
}

/// The last error of each dead letter, newest first.
pub fn dead_letters(conn: &Connection) -> Result<Vec<(i64, String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql::DEAD_LETTERS))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The alert of row `id`, if it is still there.
pub fn alert(conn: &Connection, id: i64) -> Result<Option<Alert>, StoreError> {
    let json: Option<String> = conn
        .query_row(&dialect(crate::store::sql::learned::ALERT), [id], |r| {
            r.get(0)
        })
        .optional()?;
    json.map(|json| alert_of(id, &json)).transpose()
}
