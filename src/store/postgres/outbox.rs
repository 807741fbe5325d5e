//! The `outbox` table on PostgreSQL. Claims take rows with `FOR UPDATE SKIP LOCKED`,
//! so instances dispatching at once each get rows of their own without waiting.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::Engine;
use crate::model::{Alert, StoryKeys};
use crate::store::types::{MAX_HELD_PER_FEED, Mark, Queue, alert_of, from_unix, with_source};
use crate::store::{
    OutboxCounts, OutboxRow, OutboxState, RecentAlert, Replayable, Retrying, StoreError,
};

/// Queues alerts, as the SQLite engine's `queue` does: an alert already queued for
/// the item and channel is left alone, the same story within the window is merged into
/// the first alert, and a flood's held alerts are capped per feed.
pub async fn queue(
    engine: &Engine,
    client: &impl GenericClient,
    alerts: &[(String, Alert)],
    at: DateTime<Utc>,
    how: Queue,
) -> Result<Vec<i64>, StoreError> {
    let fail = |e| engine.error(e);
    let alerts = match (how, alerts.first()) {
        (Queue::Hold, Some((_, first))) => {
            let held: i64 = client
                .query_one(
                    "SELECT count(*) FROM outbox WHERE feed = $1 AND state = 'held'",
                    &[&first.feed.0],
                )
                .await
                .map_err(fail)?
                .get(0);
            let room = MAX_HELD_PER_FEED.saturating_sub(usize::try_from(held).unwrap_or(0));
            &alerts[..alerts.len().min(room)]
        }
        _ => alerts,
    };
    let mut ids = Vec::with_capacity(alerts.len());
    for (channel, alert) in alerts {
        let json =
            serde_json::to_string(alert).map_err(|cause| StoreError::BadAlert { id: 0, cause })?;
        let story = StoryKeys::of(alert.link.as_deref(), &alert.title);
        let first = match how {
            Queue::Send(window) if !window.is_zero() && !alert.why.is_empty() => {
                let since = at.timestamp().saturating_sub(window.as_secs() as i64);
                client
                    .query_opt(
                        "SELECT id, alert FROM outbox
                         WHERE channel = $1 AND created >= $2
                           AND state IN ('pending', 'sending', 'sent', 'held')
                           AND (story_link = $3 OR story_title = $4)
                         ORDER BY id LIMIT 1",
                        &[channel, &since, &story.link, &story.title],
                    )
                    .await
                    .map_err(fail)?
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
            }
            _ => None,
        };
        let state = how.state(first.is_some());
        let inserted = client
            .query_opt(
                "INSERT INTO outbox (feed, item_key, channel, alert, state, next_attempt,
                                     created, story_link, story_title, merged_into)
                 VALUES ($1, $2, $3, $4, $6, $5, $5, $7, $8, $9)
                 ON CONFLICT DO NOTHING RETURNING id",
                &[
                    &alert.feed.0,
                    &alert.key.0,
                    channel,
                    &json,
                    &at.timestamp(),
                    &state.as_str(),
                    &story.link,
                    &story.title,
                    &first.as_ref().map(|(id, _)| *id),
                ],
            )
            .await
            .map_err(fail)?;
        let Some(row) = inserted else {
            continue;
        };
        match first {
            Some((id, first_json)) => {
                let json = with_source(id, &first_json, alert)?;
                client
                    .execute("UPDATE outbox SET alert = $2 WHERE id = $1", &[&id, &json])
                    .await
                    .map_err(fail)?;
            }
            None if state == OutboxState::Pending => ids.push(row.get(0)),
            None => {}
        }
    }
    Ok(ids)
}

/// Queues alerts on their own (a backfill), in one transaction.
pub async fn queue_alone(
    engine: &Engine,
    alerts: &[(String, Alert)],
    at: DateTime<Utc>,
    how: Queue,
) -> Result<Vec<i64>, StoreError> {
    let mut client = engine.client().await?;
    let tx = client.transaction().await.map_err(|e| engine.error(e))?;
    let ids = queue(engine, &tx, alerts, at, how).await?;
    tx.commit().await.map_err(|e| engine.error(e))?;
    Ok(ids)
}

/// Claims up to `limit` pending alerts due at `now`, oldest first: they become
/// `sending` until `now + lease`. Rows another instance is claiming are skipped.
pub async fn claim_due(
    engine: &Engine,
    channel: Option<&str>,
    now: DateTime<Utc>,
    limit: usize,
    lease: std::time::Duration,
) -> Result<Vec<OutboxRow>, StoreError> {
    let client = engine.client().await?;
    let until = now.timestamp().saturating_add(lease.as_secs() as i64);
    let rows = client
        .query(
            "UPDATE outbox SET state = 'sending', lease_until = $3, claimed_by = $4
             WHERE id IN (SELECT id FROM outbox
                          WHERE state = 'pending' AND next_attempt <= $1
                            AND ($5::TEXT IS NULL OR channel = $5)
                          ORDER BY next_attempt, id LIMIT $2
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, channel, alert, attempts, created",
            &[
                &now.timestamp(),
                &(limit as i64),
                &until,
                &engine.instance,
                &channel,
            ],
        )
        .await
        .map_err(|e| engine.error(e))?;
    let mut rows = rows
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            Ok(OutboxRow {
                id,
                channel: r.get(1),
                alert: alert_of(id, r.get(2))?,
                attempts: r.get::<_, i32>(3).unsigned_abs(),
                created: from_unix(r.get(4)).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    rows.sort_by_key(|r| (r.created, r.id));
    Ok(rows)
}

/// Runs one statement that changes rows; says how many.
async fn change(
    engine: &Engine,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<usize, StoreError> {
    let client = engine.client().await?;
    let n = client
        .execute(sql, params)
        .await
        .map_err(|e| engine.error(e))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Returns claims whose lease ran out to `pending`; says how many.
pub async fn release_expired(engine: &Engine, now: DateTime<Utc>) -> Result<usize, StoreError> {
    change(
        engine,
        "UPDATE outbox SET state = 'pending', lease_until = NULL
         WHERE state = 'sending' AND lease_until <= $1",
        &[&now.timestamp()],
    )
    .await
}

/// Failed rows waiting beyond `lifetime` after they were queued are due when it ends.
pub async fn end_waits_at(
    engine: &Engine,
    lifetime: std::time::Duration,
) -> Result<usize, StoreError> {
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    change(
        engine,
        "UPDATE outbox SET next_attempt = created + $1
         WHERE state = 'pending' AND attempts > 0 AND next_attempt > created + $1",
        &[&lifetime],
    )
    .await
}

/// When the earliest pending alert is due, if any is pending.
pub async fn next_due(engine: &Engine) -> Result<Option<DateTime<Utc>>, StoreError> {
    let client = engine.client().await?;
    let row = client
        .query_one(
            "SELECT min(next_attempt) FROM outbox WHERE state = 'pending'",
            &[],
        )
        .await
        .map_err(|e| engine.error(e))?;
    Ok(row.get::<_, Option<i64>>(0).and_then(from_unix))
}

/// Moves each of `ids` as `mark` says, if it is in the state the move starts from.
pub async fn mark(engine: &Engine, ids: &[i64], mark: &Mark) -> Result<(), StoreError> {
    let ids = ids.to_vec();
    match mark {
        Mark::Sent { at } => {
            change(
                engine,
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, finished = $2,
                               last_error = NULL, lease_until = NULL
             WHERE id = ANY($1) AND state = 'sending'",
                &[&ids, &at.timestamp()],
            )
            .await
        }
        Mark::Retry {
            next_attempt,
            error,
        } => {
            change(
                engine,
                "UPDATE outbox SET state = 'pending', attempts = attempts + 1, next_attempt = $2,
                               last_error = $3, lease_until = NULL
             WHERE id = ANY($1) AND state = 'sending'",
                &[&ids, &next_attempt.timestamp(), error],
            )
            .await
        }
        Mark::Defer { until } => {
            change(
                engine,
                "UPDATE outbox SET state = 'pending', next_attempt = $2, lease_until = NULL
             WHERE id = ANY($1) AND state = 'sending'",
                &[&ids, &until.timestamp()],
            )
            .await
        }
        Mark::Dead { at, error } => {
            change(
                engine,
                "UPDATE outbox SET state = 'dead', attempts = attempts + 1, finished = $2,
                               last_error = $3, lease_until = NULL
             WHERE id = ANY($1) AND state = 'sending'",
                &[&ids, &at.timestamp(), error],
            )
            .await
        }
        Mark::Requeue { now } => {
            change(
                engine,
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = $2,
                               last_error = NULL, finished = NULL
             WHERE id = ANY($1) AND state IN ('dead', 'held', 'sent')",
                &[&ids, &now.timestamp()],
            )
            .await
        }
    }?;
    Ok(())
}

pub async fn counts(engine: &Engine) -> Result<OutboxCounts, StoreError> {
    let client = engine.client().await?;
    let rows = client
        .query("SELECT state, count(*) FROM outbox GROUP BY state", &[])
        .await
        .map_err(|e| engine.error(e))?;
    let mut counts = OutboxCounts::default();
    for row in rows {
        let n = row.get::<_, i64>(1).unsigned_abs();
        match row.get::<_, &str>(0) {
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
pub async fn replayable(
    engine: &Engine,
    state: OutboxState,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Replayable>, StoreError> {
    let client = engine.client().await?;
    let since = since.map_or(i64::MIN, |s| s.timestamp());
    let rows = client
        .query(
            "SELECT id, channel, alert, created, last_error FROM outbox
             WHERE state = $1 AND created >= $2 ORDER BY created, id",
            &[&state.as_str(), &since],
        )
        .await
        .map_err(|e| engine.error(e))?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.get(0);
            Ok(Replayable {
                id,
                channel: r.get(1),
                alert: alert_of(id, r.get(2))?,
                created: from_unix(r.get(3)).unwrap_or_default(),
                last_error: r.get(4),
            })
        })
        .collect()
}

/// Alerts waiting to be tried again after a failure, soonest first.
pub async fn retrying(engine: &Engine) -> Result<Vec<Retrying>, StoreError> {
    let rows = query(
        engine,
        "SELECT id, channel, attempts, next_attempt, coalesce(last_error, '') FROM outbox
         WHERE state = 'pending' AND attempts > 0 ORDER BY next_attempt, id",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Retrying {
            id: r.get(0),
            channel: r.get(1),
            attempts: r.get::<_, i32>(2).unsigned_abs(),
            next_attempt: from_unix(r.get(3)).unwrap_or_default(),
            last_error: r.get(4),
        })
        .collect())
}

/// The latest `limit` alerts queued, newest first.
pub async fn recent_alerts(engine: &Engine, limit: usize) -> Result<Vec<RecentAlert>, StoreError> {
    let client = engine.client().await?;
    let rows = client
        .query(
            "SELECT id, channel, state, created, alert FROM outbox ORDER BY id DESC LIMIT $1",
            &[&(limit as i64)],
        )
        .await
        .map_err(|e| engine.error(e))?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.get(0);
            Ok(RecentAlert {
                id,
                channel: r.get(1),
                state: r.get(2),
                created: from_unix(r.get(3)).unwrap_or_default(),
                alert: alert_of(id, r.get(4))?,
            })
        })
        .collect()
}

/// The last error of each dead letter, newest first.
pub async fn dead_letters(engine: &Engine) -> Result<Vec<(i64, String, String)>, StoreError> {
    let rows = query(
        engine,
        "SELECT id, channel, coalesce(last_error, '') FROM outbox
         WHERE state = 'dead' ORDER BY finished DESC, id DESC",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

async fn query(engine: &Engine, sql: &str) -> Result<Vec<Row>, StoreError> {
    let client = engine.client().await?;
    client.query(sql, &[]).await.map_err(|e| engine.error(e))
}
