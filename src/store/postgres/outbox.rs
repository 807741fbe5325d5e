//! The `outbox` table on PostgreSQL. Claims take rows with `FOR UPDATE SKIP LOCKED`,
//! so instances dispatching at once each get rows of their own without waiting.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::Engine;
use crate::model::{Alert, Gist, Sketch, StoryKeys};
use crate::store::sql::outbox as sql;
use crate::store::types::{
    Candidate, Claim, Dedupe, MAX_HELD_PER_FEED, Mark, Queue, Retelling, alert_of, from_unix,
    story_keys, with_source,
};
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
    let alerts = match (how, alerts.first()) {
        (Queue::Hold, Some((_, first))) => {
            let held: i64 = engine
                .row_on(client, sql::HELD, &[&first.feed.0])
                .await?
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
        let merging = how.merging(alert, at);
        let first = match merging {
            Some((since, dedupe)) => {
                let same = engine
                    .maybe_row_on(
                        client,
                        sql::EARLIER_STORY,
                        &[channel, &since, &story.link, &story.title],
                    )
                    .await?
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
                match same {
                    Some(same) => Some(same),
                    None => retold(engine, client, channel, since, alert, dedupe).await?,
                }
            }
            None => None,
        };
        let state = how.state(first.is_some());
        // Only a story's first alert is compared with later ones.
        let sketch = alert.sketch.as_ref().filter(|_| first.is_none());
        let gist = alert.gist.as_ref().filter(|_| first.is_none());
        let inserted = engine
            .maybe_row_on(
                client,
                "INSERT INTO outbox (feed, item_key, channel, alert, state, next_attempt,
                                     created, story_link, story_title, merged_into, sketch,
                                     gist)
                 VALUES ($1, $2, $3, $4, $6, $5, $5, $7, $8, $9, $10, $11)
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
                    &sketch.map(Sketch::to_bytes),
                    &gist.map(Gist::to_bytes),
                ],
            )
            .await?;
        let Some(row) = inserted else {
            continue;
        };
        let id: i64 = row.get(0);
        match first {
            Some((first, first_json)) => {
                let json = with_source(first, &first_json, alert)?;
                engine
                    .run_on(client, sql::ADD_SOURCE, &[&first, &json])
                    .await?;
                continue;
            }
            None if state == OutboxState::Pending => ids.push(id),
            None => {}
        }
        // The first alert of its story: later copies are looked up by its bands, and
        // rewrites by its names.
        if merging.is_some() {
            for key in story_keys(alert) {
                engine
                    .run_on(
                        client,
                        sql::ADD_BAND,
                        &[channel, &key, &id, &at.timestamp()],
                    )
                    .await?;
            }
        }
    }
    if let Some(before) = how.window_start(at) {
        engine.run_on(client, sql::FORGET_BANDS, &[&before]).await?;
    }
    Ok(ids)
}

/// As the SQLite engine's: the earlier alert whose story `alert`'s item copies or
/// rewrites, if any.
async fn retold(
    engine: &Engine,
    client: &impl GenericClient,
    channel: &str,
    since: i64,
    alert: &Alert,
    dedupe: Dedupe,
) -> Result<Option<(i64, String)>, StoreError> {
    let candidates = async |sql: &str, keys: &[i64]| -> Result<Vec<Candidate>, StoreError> {
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&channel, &since];
        params.extend(
            keys.iter()
                .map(|k| k as &(dyn tokio_postgres::types::ToSql + Sync)),
        );
        let rows = engine.rows_on(client, sql, &params).await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    };
    for retelling in Retelling::of(alert, dedupe) {
        let Some(keys) = retelling.keys() else {
            continue;
        };
        let sql = sql::retold_candidates(&retelling);
        if let Some(first) = retelling.closest(candidates(sql, &keys).await?) {
            return Ok(Some(first));
        }
    }
    Ok(None)
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
pub async fn claim_due(engine: &Engine, claim: &Claim) -> Result<Vec<OutboxRow>, StoreError> {
    let Claim {
        now, limit, lease, ..
    } = *claim;
    let channel = claim.channel.as_deref();
    let until = now.timestamp().saturating_add(lease.as_secs() as i64);
    let rows = engine
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
        .await?;
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

/// Returns claims whose lease ran out to `pending`; says how many.
pub async fn release_expired(engine: &Engine, now: DateTime<Utc>) -> Result<usize, StoreError> {
    engine
        .execute(sql::RELEASE_EXPIRED, &[&now.timestamp()])
        .await
}

/// Failed rows waiting beyond `lifetime` after they were queued are due when it ends.
pub async fn end_waits_at(
    engine: &Engine,
    lifetime: std::time::Duration,
) -> Result<usize, StoreError> {
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    engine.execute(sql::END_WAITS_AT, &[&lifetime]).await
}

/// When the earliest pending alert is due, if any is pending.
pub async fn next_due(engine: &Engine) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = engine.query_one(sql::NEXT_DUE, &[]).await?;
    Ok(row.get::<_, Option<i64>>(0).and_then(from_unix))
}

/// Moves each of `ids` as `mark` says, if it is in the state the move starts from.
pub async fn mark(engine: &Engine, ids: &[i64], mark: &Mark) -> Result<(), StoreError> {
    let sql = sql::mark(mark, "id = ANY($1)");
    let (at, error) = mark.values();
    match error {
        Some(error) => engine.execute(&sql, &[&ids, &at, &error]).await,
        None => engine.execute(&sql, &[&ids, &at]).await,
    }?;
    Ok(())
}

pub async fn counts(engine: &Engine) -> Result<OutboxCounts, StoreError> {
    let mut counts = OutboxCounts::default();
    for row in engine.query(sql::COUNTS, &[]).await? {
        counts.count(row.get(0), row.get::<_, i64>(1).unsigned_abs());
    }
    Ok(counts)
}

/// Rows in `state` created at or after `since`, oldest first.
pub async fn replayable(
    engine: &Engine,
    state: OutboxState,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Replayable>, StoreError> {
    let since = since.map_or(i64::MIN, |s| s.timestamp());
    let rows = engine
        .query(sql::REPLAYABLE, &[&state.as_str(), &since])
        .await?;
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
    let rows = engine.query(sql::RETRYING, &[]).await?;
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
    let rows = engine.query(sql::RECENT_ALERTS, &[&(limit as i64)]).await?;
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
    let rows = engine.query(sql::DEAD_LETTERS, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// As the SQLite engine's.
pub async fn alert(engine: &Engine, id: i64) -> Result<Option<Alert>, StoreError> {
    let row = engine
        .query_opt(crate::store::sql::learned::ALERT, &[&id])
        .await?;
    row.map(|r| alert_of(id, r.get(0))).transpose()
}
