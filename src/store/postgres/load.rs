//! Filling an empty database with a state moved from the embedded engine
//! (`migrate-state`), in one transaction: all of it arrives, or none.

use super::Engine;
use crate::store::{Dump, StoreError};

/// Seen items are written this many at a time.
const CHUNK: usize = 10_000;

/// Writes `dump` into the database, which must hold no state yet.
pub async fn load(engine: &Engine, dump: &Dump) -> Result<(), StoreError> {
    let mut client = engine.client().await?;
    let fail = |e| engine.error(e);
    let tx = client.transaction().await.map_err(fail)?;
    let held: i64 = engine
        .row_on(
            &tx,
            "SELECT (SELECT count(*) FROM feed_state) + (SELECT count(*) FROM seen_item)
                    + (SELECT count(*) FROM outbox)",
            &[],
        )
        .await?
        .get(0);
    if held > 0 {
        return Err(StoreError::NotEmpty {
            place: engine.place.clone(),
        });
    }
    let feed = "INSERT INTO feed_state (feed, etag, last_modified, last_attempt, last_success,
                                     last_error_kind, last_error, consecutive_failures,
                                     failing_since, broken_since, flooding_since,
                                     retry_after_until, repaired, articles_failed,
                                     article_error, newest_item, gaps, dropped,
                                     first_success)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                     $16, $17, $18, $19)";
    let secs = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp());
    for (id, s) in &dump.feeds {
        let failures = i32::try_from(s.consecutive_failures).unwrap_or(i32::MAX);
        engine
            .run_on(
                &tx,
                feed,
                &[
                    &id.0,
                    &s.validators.etag,
                    &s.validators.last_modified,
                    &secs(s.last_attempt),
                    &secs(s.last_success),
                    &s.last_error_kind,
                    &s.last_error,
                    &failures,
                    &secs(s.failing_since),
                    &secs(s.broken_since),
                    &secs(s.flooding_since),
                    &secs(s.retry_after_until),
                    &s.repaired,
                    &i64::try_from(s.articles_failed).unwrap_or(i64::MAX),
                    &s.article_error,
                    &secs(s.newest_item),
                    &i64::try_from(s.gaps).unwrap_or(i64::MAX),
                    &i64::try_from(s.dropped).unwrap_or(i64::MAX),
                    &secs(s.first_success),
                ],
            )
            .await?;
    }
    for chunk in dump.seen.chunks(CHUNK) {
        let feeds: Vec<&str> = chunk.iter().map(|(f, ..)| f.as_str()).collect();
        let keys: Vec<&str> = chunk.iter().map(|(_, k, ..)| k.as_str()).collect();
        let times: Vec<i64> = chunk.iter().map(|(_, _, t, _)| *t).collect();
        let gone: Vec<Option<i64>> = chunk.iter().map(|(.., g)| *g).collect();
        engine
            .run_on(
                &tx,
                "INSERT INTO seen_item (feed, item_key, first_seen, gone_since)
             SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[])",
                &[&feeds, &keys, &times, &gone],
            )
            .await?;
    }
    let row = "INSERT INTO outbox (id, feed, item_key, channel, alert, state, attempts,
                                 next_attempt, last_error, created, finished, story_link,
                                 story_title, merged_into)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    for r in &dump.outbox {
        let attempts = i32::try_from(r.attempts).unwrap_or(i32::MAX);
        engine
            .run_on(
                &tx,
                row,
                &[
                    &r.id,
                    &r.feed,
                    &r.item_key,
                    &r.channel,
                    &r.alert,
                    &r.state,
                    &attempts,
                    &r.next_attempt,
                    &r.last_error,
                    &r.created,
                    &r.finished,
                    &r.story_link,
                    &r.story_title,
                    &r.merged_into,
                ],
            )
            .await?;
    }
    // New rows continue after the moved ones.
    engine
        .run_on(
            &tx,
            "SELECT setval(pg_get_serial_sequence('outbox', 'id'),
                       greatest((SELECT max(id) FROM outbox), 1))",
            &[],
        )
        .await?;
    for (key, value, at) in &dump.notes {
        engine
            .run_on(
                &tx,
                "INSERT INTO daemon_note (key, value, at) VALUES ($1, $2, $3)",
                &[key, value, at],
            )
            .await?;
    }
    for d in &dump.rule_days {
        let caught = i64::try_from(d.caught).unwrap_or(i64::MAX);
        let (day, at) = (d.day.timestamp(), d.last_at.timestamp());
        engine
            .run_on(
                &tx,
                "INSERT INTO rule_day (rule, day, caught, last_title, last_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&d.rule, &day, &caught, &d.last_title, &at],
            )
            .await?;
    }
    for l in &dump.learned {
        let (vote, at) = (l.vote.to_string(), l.at.timestamp());
        engine
            .run_on(
                &tx,
                crate::store::sql::learned::LEARN,
                &[&l.rule, &l.feed.0, &l.key.0, &l.alert, &vote, &l.text, &at],
            )
            .await?;
    }
    for (feed, key, seen, item, dropped_by) in &dump.recent {
        engine
            .run_on(
                &tx,
                "INSERT INTO recent_item (feed, item_key, seen, item, dropped_by)
                 VALUES ($1, $2, $3, $4, $5)",
                &[feed, key, seen, item, dropped_by],
            )
            .await?;
    }
    tx.commit().await.map_err(fail)
}
