//! The SQL both engines run as it is written: PostgreSQL's `$1` placeholders, which the
//! SQLite engine reads as its own `?1` ([`sqlite::dialect`](super::sqlite::dialect)).
//! A statement only one dialect accepts stays in its engine's files.

/// The columns of `feed_state` that make a [`FeedState`](super::FeedState), in order.
macro_rules! feed_columns {
    () => {
        "etag, last_modified, last_attempt, last_success, last_error_kind,
         last_error, consecutive_failures, failing_since, broken_since,
         flooding_since, retry_after_until, repaired, articles_failed,
         article_error, newest_item, gaps, dropped, first_success"
    };
}
pub(super) use feed_columns;
/// How many columns [`feed_columns`] names: those a query adds come after.
pub(super) const FEED_COLUMNS: usize = 18;

/// The `feed_state` table.
pub mod feeds {
    pub const STATE: &str = concat!(
        "SELECT ",
        feed_columns!(),
        " FROM feed_state WHERE feed = $1"
    );
    pub const STATES: &str = concat!(
        "SELECT ",
        feed_columns!(),
        ", feed, (SELECT count(*) FROM seen_item s WHERE s.feed = f.feed)
         FROM feed_state f ORDER BY feed"
    );
    /// Each feed's latest `$1` times a poll brought new items: one read for all.
    pub const NEW_ITEM_TIMES: &str = "SELECT feed, first_seen FROM
           (SELECT feed, first_seen,
                   row_number() OVER (PARTITION BY feed ORDER BY first_seen DESC) AS n
            FROM (SELECT DISTINCT feed, first_seen FROM seen_item) AS polls) AS ranked
         WHERE n <= $1 ORDER BY feed, first_seen DESC";
    /// `$5` is whether the feed is flooding, `NULL` for as it was; `$9` the newest
    /// item's date (`NULL`: as it was), `$10` 1 when the poll found a gap, `$11` how
    /// many items filters dropped.
    pub const RECORD_SUCCESS: &str =
        "INSERT INTO feed_state (feed, etag, last_modified, last_attempt, last_success,
                                 consecutive_failures, flooding_since, repaired,
                                 articles_failed, article_error, newest_item, gaps, dropped,
                                 first_success)
         VALUES ($1, $2, $3, CAST($4 AS BIGINT), CAST($4 AS BIGINT), 0,
                 CASE WHEN CAST($5 AS BOOLEAN) THEN CAST($4 AS BIGINT) END, $6, $7, $8,
                 $9, $10, $11, CAST($4 AS BIGINT))
         ON CONFLICT (feed) DO UPDATE SET
            first_success = CASE WHEN feed_state.last_success IS NULL
                THEN excluded.first_success ELSE feed_state.first_success END,
            etag = excluded.etag, last_modified = excluded.last_modified,
            newest_item = coalesce(excluded.newest_item, feed_state.newest_item),
            gaps = feed_state.gaps + excluded.gaps,
            dropped = feed_state.dropped + excluded.dropped,
            repaired = excluded.repaired,
            articles_failed = feed_state.articles_failed + excluded.articles_failed,
            article_error = coalesce(excluded.article_error, feed_state.article_error),
            last_attempt = excluded.last_attempt, last_success = excluded.last_success,
            last_error_kind = NULL, last_error = NULL, consecutive_failures = 0,
            failing_since = NULL, retry_after_until = NULL,
            flooding_since = CASE CAST($5 AS BOOLEAN)
                                WHEN TRUE THEN coalesce(feed_state.flooding_since, CAST($4 AS BIGINT))
                                WHEN FALSE THEN NULL
                                ELSE feed_state.flooding_since END";
    pub const RECORD_UNCHANGED: &str =
        "UPDATE feed_state SET last_attempt = $2, last_success = $2, last_error_kind = NULL,
                               last_error = NULL, consecutive_failures = 0,
                               failing_since = NULL, retry_after_until = NULL
         WHERE feed = $1";
    pub const RECORD_FAILURE: &str =
        "INSERT INTO feed_state (feed, last_attempt, last_error_kind, last_error,
                                 consecutive_failures, failing_since, retry_after_until)
         VALUES ($1, $2, $3, $4, 1, $2, $5)
         ON CONFLICT (feed) DO UPDATE SET
            last_attempt = excluded.last_attempt, last_error_kind = excluded.last_error_kind,
            last_error = excluded.last_error,
            consecutive_failures = feed_state.consecutive_failures + 1,
            failing_since = coalesce(feed_state.failing_since, excluded.failing_since),
            retry_after_until = excluded.retry_after_until
         RETURNING consecutive_failures";
    pub const SET_BROKEN: &str = "UPDATE feed_state SET broken_since = $2 WHERE feed = $1";
}

/// The `seen_item` and `recent_item` tables.
pub mod items {
    use crate::store::types::Expired;

    pub const FORGET_RECENT: &str = "DELETE FROM recent_item WHERE seen < $1";
    /// Deletes at most `$2` rows of a kind that expired before `$1`, so that no pruning
    /// holds the writer (or PostgreSQL's row locks) for long.
    pub fn expired(what: Expired) -> &'static str {
        match what {
            Expired::Gone => {
                "DELETE FROM seen_item WHERE (feed, item_key) IN
                    (SELECT feed, item_key FROM seen_item WHERE gone_since < $1 LIMIT $2)"
            }
            Expired::Sent => {
                "DELETE FROM outbox WHERE id IN
                    (SELECT id FROM outbox WHERE state = 'sent' AND finished < $1 LIMIT $2)"
            }
            Expired::Dead => {
                "DELETE FROM outbox WHERE id IN
                    (SELECT id FROM outbox WHERE state = 'dead' AND finished < $1 LIMIT $2)"
            }
            Expired::Held => {
                "DELETE FROM outbox WHERE id IN
                    (SELECT id FROM outbox WHERE state = 'held' AND created < $1 LIMIT $2)"
            }
            Expired::RuleDays => {
                "DELETE FROM rule_day WHERE (rule, day) IN
                    (SELECT rule, day FROM rule_day WHERE day < $1 LIMIT $2)"
            }
            Expired::Orphans => {
                "DELETE FROM outbox WHERE id IN
                    (SELECT id FROM outbox m WHERE state = 'merged' AND created < $1
                       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = m.merged_into)
                     LIMIT $2)"
            }
        }
    }
    pub const RECENT: &str =
        "SELECT feed, item FROM recent_item WHERE seen >= $1 ORDER BY seen, feed, item_key";
}

/// How a rule's day already there takes more items caught: its count grows, and its
/// last title is the newer one's (a poll committed late keeps the newer title).
macro_rules! more_caught {
    () => {
        "ON CONFLICT (rule, day) DO UPDATE SET caught = rule_day.caught + excluded.caught,
            last_title = CASE WHEN excluded.last_at >= rule_day.last_at
                THEN excluded.last_title ELSE rule_day.last_title END,
            last_at = CASE WHEN excluded.last_at >= rule_day.last_at
                THEN excluded.last_at ELSE rule_day.last_at END"
    };
}
pub(super) use more_caught;

/// The `rule_day` table: what each rule caught, day by day.
pub mod rule_days {
    /// `$3` more items caught by rule `$1` on day `$2`, the last titled `$4`, at `$5`.
    pub const CAUGHT: &str = concat!(
        "INSERT INTO rule_day (rule, day, caught, last_title, last_at)
         VALUES ($1, $2, $3, $4, $5) ",
        more_caught!()
    );
    pub const SINCE: &str = "SELECT rule, day, caught, last_title, last_at FROM rule_day
         WHERE day >= $1 ORDER BY rule, day";
}

/// What `newshound why` reads of one item.
pub mod trace {
    /// Rows that may be the item sought (`$1` its key or link, `$2` a `LIKE` pattern
    /// of its JSON in lower case): by key in `seen_item`, by key or text among the
    /// kept items and the alerts. The caller checks each.
    pub const FIND: &str = "SELECT feed, item_key, NULL FROM seen_item WHERE item_key = $1
         UNION ALL
         SELECT feed, item_key, item FROM recent_item
          WHERE item_key = $1 OR lower(item) LIKE $2 ESCAPE '\\'
         UNION ALL
         SELECT feed, item_key, alert FROM outbox
          WHERE item_key = $1 OR lower(alert) LIKE $2 ESCAPE '\\'";
    pub const SEEN: &str =
        "SELECT first_seen, gone_since FROM seen_item WHERE feed = $1 AND item_key = $2";
    pub const FEED_FIRST_POLLED: &str = "SELECT first_success FROM feed_state WHERE feed = $1";
    pub const KEPT: &str =
        "SELECT item, dropped_by FROM recent_item WHERE feed = $1 AND item_key = $2";
    pub const ALERTS: &str = "SELECT o.id, o.channel, o.state, o.attempts, o.last_error,
                o.created, o.finished, o.merged_into, o.alert, m.alert
         FROM outbox o LEFT JOIN outbox m ON m.id = o.merged_into
         WHERE o.feed = $1 AND o.item_key = $2 ORDER BY o.id";
}

/// The `outbox` table.
pub mod outbox {
    use crate::store::types::Mark;

    /// Moves the rows `rows` picks (by `$1`) as `mark` says, if they are in the state
    /// the move starts from; `$2` and `$3` are [`Mark::values`].
    pub fn mark(mark: &Mark, rows: &str) -> String {
        let (set, from) = match mark {
            Mark::Sent { .. } => (
                "state = 'sent', attempts = attempts + 1, finished = $2,
                 last_error = NULL, lease_until = NULL",
                "'sending'",
            ),
            Mark::Retry { .. } => (
                "state = 'pending', attempts = attempts + 1, next_attempt = $2,
                 last_error = $3, lease_until = NULL",
                "'sending'",
            ),
            Mark::Defer { .. } => (
                "state = 'pending', next_attempt = $2, lease_until = NULL",
                "'sending'",
            ),
            Mark::Dead { .. } => (
                "state = 'dead', attempts = attempts + 1, finished = $2,
                 last_error = $3, lease_until = NULL",
                "'sending'",
            ),
            Mark::Requeue { .. } => (
                "state = 'pending', attempts = 0, next_attempt = $2,
                 last_error = NULL, finished = NULL",
                "'dead', 'held', 'sent'",
            ),
        };
        format!("UPDATE outbox SET {set} WHERE {rows} AND state IN ({from})")
    }

    pub const HELD: &str = "SELECT count(*) FROM outbox WHERE feed = $1 AND state = 'held'";
    /// The first alert about the same story queued for the channel since `$2`.
    pub const EARLIER_STORY: &str = "SELECT id, alert FROM outbox
         WHERE channel = $1 AND created >= $2
           AND state IN ('pending', 'sending', 'sent', 'held')
           AND (story_link = $3 OR story_title = $4)
         ORDER BY id LIMIT 1";
    pub const ADD_SOURCE: &str = "UPDATE outbox SET alert = $2 WHERE id = $1";
    /// The alerts queued for channel `$1` since `$2` that share `shared` or more of
    /// the `keys` story keys `$3`… (one per parameter; a repeated key counts once),
    /// with the `column` they are compared by.
    fn candidates(keys: usize, shared: usize, column: &str) -> String {
        let keys: Vec<String> = (0..keys).map(|i| format!("${}", i + 3)).collect();
        format!(
            "SELECT id, alert, {column} FROM outbox
             WHERE id IN (SELECT alert FROM story_band
                          WHERE channel = $1 AND created >= $2 AND band IN ({})
                          GROUP BY alert HAVING count(*) >= {shared})
               AND state IN ('pending', 'sending', 'sent', 'held')
             ORDER BY id",
            keys.join(", ")
        )
    }
    /// The query for the candidates of `retelling` (`$1` the channel, `$2` where the
    /// window starts, its keys from `$3` on).
    pub fn retold_candidates(retelling: &crate::store::types::Retelling<'_>) -> &'static str {
        match retelling {
            crate::store::types::Retelling::Copy(..) => copy_candidates(),
            crate::store::types::Retelling::Rewrite(..) => rewrite_candidates(),
        }
    }
    /// Candidates for the first alert of the story a sketch copies: those that share
    /// one of its bands.
    fn copy_candidates() -> &'static str {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| candidates(crate::model::sketch::BANDS, 1, "sketch"));
        &SQL
    }
    /// Candidates for the first alert of the story a gist rewrites: those that share
    /// enough of its names.
    fn rewrite_candidates() -> &'static str {
        use crate::model::gist::{MAX_NAMES, MIN_SHARED_NAMES};
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| candidates(MAX_NAMES, MIN_SHARED_NAMES, "gist"));
        &SQL
    }
    pub const ADD_BAND: &str =
        "INSERT INTO story_band (channel, band, alert, created) VALUES ($1, $2, $3, $4)";
    /// The bands of alerts queued before `$1`, out of every window.
    pub const FORGET_BANDS: &str = "DELETE FROM story_band WHERE created < $1";
    pub const RELEASE_EXPIRED: &str = "UPDATE outbox SET state = 'pending', lease_until = NULL
         WHERE state = 'sending' AND lease_until <= $1";
    pub const END_WAITS_AT: &str = "UPDATE outbox SET next_attempt = created + $1
         WHERE state = 'pending' AND attempts > 0 AND next_attempt > created + $1";
    pub const NEXT_DUE: &str = "SELECT min(next_attempt) FROM outbox WHERE state = 'pending'";
    pub const COUNTS: &str = "SELECT state, count(*) FROM outbox GROUP BY state";
    pub const REPLAYABLE: &str = "SELECT id, channel, alert, created, last_error FROM outbox
         WHERE state = $1 AND created >= $2 ORDER BY created, id";
    pub const RETRYING: &str =
        "SELECT id, channel, attempts, next_attempt, coalesce(last_error, '') FROM outbox
         WHERE state = 'pending' AND attempts > 0 ORDER BY next_attempt, id";
    pub const RECENT_ALERTS: &str =
        "SELECT id, channel, state, created, alert FROM outbox ORDER BY id DESC LIMIT $1";
    pub const DEAD_LETTERS: &str = "SELECT id, channel, coalesce(last_error, '') FROM outbox
         WHERE state = 'dead' ORDER BY finished DESC, id DESC";
}

/// The `daemon_note` table.
pub mod notes {
    pub const SET: &str = "INSERT INTO daemon_note (key, value, at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at";
    pub const CLEAR: &str = "DELETE FROM daemon_note WHERE key = $1";
    pub const GET: &str = "SELECT value, at FROM daemon_note WHERE key = $1";
    /// Sets a note only if it is not set yet (the first of two instances wins).
    pub const SET_ONCE: &str = "INSERT INTO daemon_note (key, value, at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING";
}

/// The `learned` table: examples learned from feedback.
pub mod learned {
    pub const LEARN: &str = "INSERT INTO learned (rule, feed, item_key, alert, vote, text, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (rule, feed, item_key) DO UPDATE SET alert = excluded.alert,
            vote = excluded.vote, text = excluded.text, at = excluded.at
         WHERE learned.vote <> excluded.vote OR learned.text <> excluded.text";
    pub const ALL: &str = "SELECT rule, feed, item_key, alert, vote, text, at FROM learned
         ORDER BY at, rule, feed, item_key";
    pub const ALERT: &str = "SELECT alert FROM outbox WHERE id = $1";
}
