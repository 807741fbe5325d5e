//! The `outbox` table: alerts from queued to sent, dead, held or merged (the states and
//! their transitions are in [`crate::store::OutboxState`]).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::from_unix;
use crate::model::{Alert, StoryKeys};
use crate::store::types::{MAX_HELD_PER_FEED, Mark, Queue, alert_of, with_source};
use crate::store::{
    OutboxCounts, OutboxRow, OutboxState, RecentAlert, Replayable, Retrying, StoreError,
};

/// Queues alerts (an alert already queued for the same item and channel is left
/// alone); returns the ids of the new rows to send. An alert about a story already
/// queued for the channel within the dedupe window becomes a `merged` row, and its feed
/// is added to the first alert's sources. newshound's own notices (no rule matched)
/// are never merged.
pub fn queue(
    conn: &Connection,
    alerts: &[(String, Alert)],
    at: DateTime<Utc>,
    how: Queue,
) -> Result<Vec<i64>, StoreError> {
    let alerts = match (how, alerts.first()) {
        (Queue::Hold, Some((_, first))) => {
            let held: i64 = conn
                .prepare_cached("SELECT count(*) FROM outbox WHERE feed = ?1 AND state = 'held'")?
                .query_row([&first.feed.0], |r| r.get(0))?;
            let room = MAX_HELD_PER_FEED.saturating_sub(usize::try_from(held).unwrap_or(0));
            &alerts[..alerts.len().min(room)]
        }
        _ => alerts,
    };
    let mut ids = Vec::with_capacity(alerts.len());
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox (feed, item_key, channel, alert, state, next_attempt,
                                       created, story_link, story_title, merged_into)
         VALUES (?1, ?2, ?3, ?4, ?6, ?5, ?5, ?7, ?8, ?9)",
    )?;
    let mut earlier = conn.prepare_cached(
        "SELECT id, alert FROM outbox
         WHERE channel = ?1 AND created >= ?2
           AND state IN ('pending', 'sending', 'sent', 'held')
           AND (story_link = ?3 OR story_title = ?4)
         ORDER BY id LIMIT 1",
    )?;
    let mut add_source = conn.prepare_cached("UPDATE outbox SET alert = ?2 WHERE id = ?1")?;
    for (channel, alert) in alerts {
        let json =
            serde_json::to_string(alert).map_err(|cause| StoreError::BadAlert { id: 0, cause })?;
        let story = StoryKeys::of(alert.link.as_deref(), &alert.title);
        let first = match how {
            Queue::Send(window) if !window.is_zero() && !alert.why.is_empty() => {
                let since = at.timestamp().saturating_sub(window.as_secs() as i64);
                earlier
                    .query_row(params![channel, since, story.link, story.title], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?
            }
            _ => None,
        };
        let state = how.state(first.is_some());
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
        ];
        if insert.execute(row)? == 0 {
            continue;
        }
        match first {
            Some((id, first_json)) => {
                let json = with_source(id, &first_json, alert)?;
                add_source.execute(params![id, json])?;
            }
            None if state == OutboxState::Pending => ids.push(conn.last_insert_rowid()),
            None => {}
        }
    }
    Ok(ids)
}

/// Claims up to `limit` pending alerts due at `now`, oldest first: they become
/// `sending` until `now + lease`.
pub fn claim_due(
    conn: &Connection,
    channel: Option<&str>,
    now: DateTime<Utc>,
    limit: usize,
    lease: std::time::Duration,
) -> Result<Vec<OutboxRow>, StoreError> {
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
        .prepare_cached(
            "UPDATE outbox SET state = 'pending', lease_until = NULL
             WHERE state = 'sending' AND lease_until <= ?1",
        )?
        .execute(params![now.timestamp()])?)
}

/// Failed rows waiting beyond `lifetime` after they were queued are due when it ends.
pub fn end_waits_at(conn: &Connection, lifetime: std::time::Duration) -> Result<usize, StoreError> {
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET next_attempt = created + ?1
             WHERE state = 'pending' AND attempts > 0 AND next_attempt > created + ?1",
        )?
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
        .prepare_cached("SELECT min(next_attempt) FROM outbox WHERE state = 'pending'")?
        .query_row([], |r| r.get(0))?;
    Ok(next.and_then(from_unix))
}

/// Moves each of `ids` as `mark` says, if it is in the state the move starts from.
pub fn mark(conn: &Connection, ids: &[i64], mark: &Mark) -> Result<(), StoreError> {
    let (sql, rest): (&str, Vec<Box<dyn rusqlite::ToSql>>) = match mark {
        Mark::Sent { at } => (
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, finished = ?2,
                               last_error = NULL, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            vec![Box::new(at.timestamp())],
        ),
        Mark::Retry {
            next_attempt,
            error,
        } => (
            "UPDATE outbox SET state = 'pending', attempts = attempts + 1, next_attempt = ?2,
                               last_error = ?3, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            vec![Box::new(next_attempt.timestamp()), Box::new(error.clone())],
        ),
        Mark::Defer { until } => (
            "UPDATE outbox SET state = 'pending', next_attempt = ?2, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            vec![Box::new(until.timestamp())],
        ),
        Mark::Dead { at, error } => (
            "UPDATE outbox SET state = 'dead', attempts = attempts + 1, finished = ?2,
                               last_error = ?3, lease_until = NULL
             WHERE id = ?1 AND state = 'sending'",
            vec![Box::new(at.timestamp()), Box::new(error.clone())],
        ),
        Mark::Requeue { now } => (
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = ?2,
                               last_error = NULL, finished = NULL
             WHERE id = ?1 AND state IN ('dead', 'held', 'sent')",
            vec![Box::new(now.timestamp())],
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    for id in ids {
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![id];
        values.extend(rest.iter().map(|v| v.as_ref()));
        stmt.execute(values.as_slice())?;
    }
    Ok(())
}

pub fn counts(conn: &Connection) -> Result<OutboxCounts, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
    let mut counts = OutboxCounts::default();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        let n = n.unsigned_abs();
        match state.as_str() {
            "pending" => counts.pending = n,
            "sending" => counts.sending = n,
            "sent" => counts.sent = n,
            "held" => counts.held = n,
            "merged" => counts.merged = n,
            _ => counts.dead = n,
        }
    }
    Ok(counts)
}

/// Rows in `state` created at or after `since`, oldest first.
pub fn replayable(
    conn: &Connection,
    state: OutboxState,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Replayable>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, channel, alert, created, last_error FROM outbox
         WHERE state = ?1 AND created >= ?2 ORDER BY created, id",
    )?;
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, channel, attempts, next_attempt, coalesce(last_error, '') FROM outbox
         WHERE state = 'pending' AND attempts > 0 ORDER BY next_attempt, id",
    )?;
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, channel, state, created, alert FROM outbox ORDER BY id DESC LIMIT ?1",
    )?;
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, channel, coalesce(last_error, '') FROM outbox
         WHERE state = 'dead' ORDER BY finished DESC, id DESC",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
