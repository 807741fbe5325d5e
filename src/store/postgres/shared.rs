//! What several instances on one database coordinate through: who polls which
//! source (`poll_claim`) and who is alive (`instance`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::Engine;
use crate::store::types::from_unix;
use crate::store::{INSTANCE_GONE_AFTER, Instance, PollClaim, StoreError};

/// A claim of a source's poll until `now + lease`.
#[derive(Debug)]
pub struct Claim {
    pub source: String,
    pub now: DateTime<Utc>,
    pub lease: std::time::Duration,
}

/// Claims the polls of `claims` for this instance in one statement, each until its
/// `now + lease`, where no other instance holds it and it is due; for the others,
/// when to ask again. A source is free when it is at the earliest of the claims'
/// times, so that none is polled early.
pub async fn claim_polls(
    engine: &Engine,
    claims: &[&Claim],
) -> Result<HashMap<String, PollClaim>, StoreError> {
    let mut claims = claims.to_vec();
    // The same order in every instance, so that two batches never wait for each
    // other's row locks the wrong way round.
    claims.sort_by(|a, b| a.source.cmp(&b.source));
    let sources: Vec<&str> = claims.iter().map(|c| c.source.as_str()).collect();
    let until: Vec<i64> = claims
        .iter()
        .map(|c| c.now.timestamp() + c.lease.as_secs() as i64)
        .collect();
    let now = claims.iter().map(|c| c.now.timestamp()).min().unwrap_or(0);
    // The query's snapshot is from before the claims, which is what a refusal needs.
    let rows = engine
        .query(
            "WITH wanted AS (
                 SELECT * FROM unnest($1::TEXT[], $3::BIGINT[]) WITH ORDINALITY
                     AS w(source, until, place)),
             claimed AS (
                 INSERT INTO poll_claim (source, holder, lease_until)
                 SELECT source, $2, until FROM wanted ORDER BY place
                 ON CONFLICT (source) DO UPDATE SET holder = excluded.holder,
                                                    lease_until = excluded.lease_until
                 WHERE (poll_claim.lease_until IS NULL OR poll_claim.lease_until <= $4)
                   AND (poll_claim.next_due IS NULL OR poll_claim.next_due <= $4)
                 RETURNING source)
             SELECT w.source, EXISTS (SELECT 1 FROM claimed c WHERE c.source = w.source),
                    (SELECT greatest(coalesce(lease_until, 0), coalesce(next_due, 0))
                     FROM poll_claim p WHERE p.source = w.source)
             FROM wanted w",
            &[&sources, &engine.instance, &until, &now],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let claim = if row.get(1) {
                PollClaim::Granted
            } else {
                let free_at: Option<i64> = row.get(2);
                PollClaim::Later(free_at.and_then(from_unix).unwrap_or_default())
            };
            (row.get(0), claim)
        })
        .collect())
}

/// This instance's poll of `source` is over; it is next due at `next_due`.
pub async fn poll_done(
    engine: &Engine,
    client: &impl GenericClient,
    source: &str,
    next_due: DateTime<Utc>,
) -> Result<(), StoreError> {
    engine
        .run_on(
            client,
            "UPDATE poll_claim SET lease_until = NULL, next_due = $3
             WHERE source = $1 AND holder = $2",
            &[&source, &engine.instance, &seconds_up(next_due)],
        )
        .await?;
    Ok(())
}

/// A time in whole seconds, rounded up: a source is never due before its time.
fn seconds_up(at: DateTime<Utc>) -> i64 {
    at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0)
}

/// Says this instance is alive and runs the config with `config_hash`.
pub async fn heartbeat(
    engine: &Engine,
    config_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // The first heartbeat of this run is its start, also under the name of an
    // instance that was killed without leaving.
    let first = !engine
        .joined
        .swap(true, std::sync::atomic::Ordering::Relaxed);
    engine
        .execute(
            "INSERT INTO instance (name, started, heartbeat, config_hash) VALUES ($1, $2, $2, $3)
             ON CONFLICT (name) DO UPDATE SET heartbeat = excluded.heartbeat,
                 config_hash = excluded.config_hash,
                 started = CASE WHEN $4 THEN excluded.started ELSE instance.started END",
            &[&engine.instance, &now.timestamp(), &config_hash, &first],
        )
        .await?;
    Ok(())
}

/// This instance stops: it leaves the list, and the polls it holds are free.
pub async fn leave(engine: &Engine) -> Result<(), StoreError> {
    let mut client = engine.client().await?;
    let fail = |e| engine.error(e);
    let tx = client.transaction().await.map_err(fail)?;
    for sql in [
        "DELETE FROM instance WHERE name = $1",
        "UPDATE poll_claim SET lease_until = NULL WHERE holder = $1",
    ] {
        engine.run_on(&tx, sql, &[&engine.instance]).await?;
    }
    tx.commit().await.map_err(fail)
}

/// The instances that said they are alive within [`INSTANCE_GONE_AFTER`] of `now`, by
/// name, with what each holds.
pub async fn instances(engine: &Engine, now: DateTime<Utc>) -> Result<Vec<Instance>, StoreError> {
    let gone_before = now.timestamp() - INSTANCE_GONE_AFTER.as_secs() as i64;
    let rows = engine
        .query(
            "SELECT i.name, i.started, i.heartbeat, i.config_hash,
                    (SELECT count(*) FROM poll_claim p
                     WHERE p.holder = i.name AND p.lease_until > $1),
                    (SELECT count(*) FROM outbox o
                     WHERE o.claimed_by = i.name AND o.state = 'sending')
             FROM instance i WHERE i.heartbeat >= $2 ORDER BY i.name",
            &[&now.timestamp(), &gone_before],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Instance {
            name: r.get(0),
            started: from_unix(r.get(1)).unwrap_or_default(),
            heartbeat: from_unix(r.get(2)).unwrap_or_default(),
            config_hash: r.get(3),
            polling: r.get::<_, i64>(4).unsigned_abs(),
            delivering: r.get::<_, i64>(5).unsigned_abs(),
        })
        .collect())
}

/// Takes up to `wanted` of the messages `channel` may still send in the minute up to
/// `now` (at most `limit`, all instances together): how many it got, and when the next
/// slot frees up. Instances reserving for one channel take turns (a lock per channel).
pub async fn reserve_sends(
    engine: &Engine,
    channel: &str,
    limit: u32,
    wanted: usize,
    now: DateTime<Utc>,
) -> Result<(usize, DateTime<Utc>), StoreError> {
    let mut client = engine.client().await?;
    let fail = |e| engine.error(e);
    let tx = client.transaction().await.map_err(fail)?;
    let (now, minute_ago) = (now.timestamp(), now.timestamp() - 60);
    engine
        .run_on(
            &tx,
            "SELECT pg_advisory_xact_lock(hashtext('newshound channel ' || $1))",
            &[&channel],
        )
        .await?;
    engine
        .run_on(
            &tx,
            "DELETE FROM channel_send WHERE channel = $1 AND at <= $2",
            &[&channel, &minute_ago],
        )
        .await?;
    let row = engine.row_on(&tx, "SELECT coalesce(sum(messages), 0)::BIGINT, min(at) FROM channel_send WHERE channel = $1",
            &[&channel],)
        .await?;
    let sent = usize::try_from(row.get::<_, i64>(0)).unwrap_or(usize::MAX);
    let next_slot = row.get::<_, Option<i64>>(1).map_or(now, |first| first + 60);
    let granted = (limit as usize).saturating_sub(sent).min(wanted);
    if granted > 0 {
        let messages = i32::try_from(granted).unwrap_or(i32::MAX);
        engine
            .run_on(
                &tx,
                "INSERT INTO channel_send (channel, at, messages) VALUES ($1, $2, $3)",
                &[&channel, &now, &messages],
            )
            .await?;
    }
    tx.commit().await.map_err(fail)?;
    Ok((granted, from_unix(next_slot).unwrap_or_default()))
}
