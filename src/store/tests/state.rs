//! Feed state, items, notes and opening the database.

use super::*;

#[tokio::test]
async fn failures_count_up_and_a_success_resets_them() {
    for store in each_engine().await {
        let feed = FeedId("flaky".into());
        assert_eq!(
            store
                .record_failure(&feed, failure("timeout", "slow"), at(1))
                .await
                .expect("1"),
            1
        );
        // Regression: a feed's Retry-After lived only in memory, so a restart polled it at
        // once and `status` showed the interval's next poll.
        let busy = Failure {
            retry_after_until: Some(at(3600)),
            ..failure("http_status", "503")
        };
        assert_eq!(
            store.record_failure(&feed, busy, at(2)).await.expect("2"),
            2
        );
        let state = store.feed_state(&feed).await.expect("query").expect("row");
        assert_eq!(state.last_error_kind.as_deref(), Some("http_status"));
        assert_eq!(state.last_success, None);
        assert_eq!(state.retry_after_until, Some(at(3600)));
        store.record_poll(record(&feed, 3)).await.expect("recorded");
        let state = store.feed_state(&feed).await.expect("query").expect("row");
        assert_eq!(state.consecutive_failures, 0);
        assert_eq!(state.last_error, None);
        assert_eq!(state.retry_after_until, None, "a success ends the wait");
    }
}

/// Unreadable articles add up over polls; the last reason stays until another.
#[tokio::test]
async fn unreadable_articles_add_up_and_the_last_reason_stays() {
    for store in each_engine().await {
        let feed = FeedId("teasers".into());
        let poll = |failed: u32, error: Option<&str>, when: i64| PollRecord {
            articles_failed: failed,
            article_error: error.map(str::to_owned),
            ..record(&feed, when)
        };
        store
            .record_poll(poll(2, Some("https://a.example/1: server answered 404"), 1))
            .await
            .expect("first");
        store.record_poll(poll(0, None, 2)).await.expect("second");
        store
            .record_poll(poll(1, Some("https://a.example/3: no readable article"), 3))
            .await
            .expect("third");
        let state = store.feed_state(&feed).await.expect("query").expect("row");
        assert_eq!(state.articles_failed, 3);
        assert_eq!(
            state.article_error.as_deref(),
            Some("https://a.example/3: no readable article")
        );
    }
}

/// `migrate-state` carries every column of a feed's state into PostgreSQL, and what
/// rules caught and learned.
#[tokio::test]
async fn a_feeds_whole_state_is_moved_to_postgres() {
    let [sqlite, postgres] = &engines().await[..] else {
        return;
    };
    let feed = FeedId("teasers".into());
    let poll = PollRecord {
        validators: Validators {
            etag: Some("\"v1\"".into()),
            last_modified: None,
        },
        repaired: Some("a bare &".into()),
        articles_failed: 2,
        article_error: Some("https://a.example/1: server answered 404".into()),
        flooding: Some(true),
        newest: Some(at(4)),
        gap: true,
        ..record(&feed, 5)
    };
    let poll = PollRecord {
        caught: vec![("talks".into(), "Lavrov speaks".into())],
        dropped: vec![(ItemKey("ad".into()), "no ads".into())],
        ..poll
    };
    sqlite.store.record_poll(poll).await.expect("recorded");
    let learned = Learned {
        rule: "talks".into(),
        feed: feed.clone(),
        key: ItemKey("k7".into()),
        alert: 7,
        vote: crate::model::Vote::Not,
        text: "Lavrov's tea".into(),
        at: at(6),
    };
    sqlite.store.learn(learned.clone()).await.expect("learned");
    let dump = sqlite.store.dump().await.expect("dump");
    postgres.store.load(&dump).await.expect("load");
    assert_eq!(
        postgres.store.feed_state(&feed).await.expect("query"),
        sqlite.store.feed_state(&feed).await.expect("query")
    );
    assert_eq!(postgres.store.learned().await.expect("learned"), [learned]);
    assert_eq!(
        postgres.store.rule_days(at(5)).await.expect("days"),
        sqlite.store.rule_days(at(5)).await.expect("days")
    );
}

#[tokio::test]
async fn feed_states_list_every_feed_with_its_item_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        Store::open_existing(dir.path())
            .await
            .expect("query")
            .is_none()
    );
    assert!(
        !dir.path().join(DB_FILE).exists(),
        "looking creates nothing"
    );
    let store = Store::open(dir.path()).await.expect("store opens");
    let (wire, flaky) = (FeedId("wire".into()), FeedId("flaky".into()));
    let keys = [ItemKey("a".into()), ItemKey("b".into())];
    store
        .record_poll(PollRecord {
            new_keys: keys.to_vec(),
            ..record(&wire, 10)
        })
        .await
        .expect("recorded");
    store
        .record_failure(&flaky, failure("timeout", "slow"), at(11))
        .await
        .expect("recorded");
    let states = store.feed_states().await.expect("query");
    let summary: Vec<(&str, u32, u64)> = states
        .iter()
        .map(|(f, s, n)| (f.0.as_str(), s.consecutive_failures, *n))
        .collect();
    assert_eq!(summary, [("flaky", 1, 0), ("wire", 0, 2)]);
    drop(store);
    assert!(
        Store::open_existing(dir.path())
            .await
            .expect("query")
            .is_some()
    );
}

#[tokio::test]
async fn new_item_times_are_the_distinct_polls_that_brought_news() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        for (t, keys) in [(10, vec!["a", "b"]), (20, vec!["c"]), (30, vec![])] {
            let keys: Vec<ItemKey> = keys.into_iter().map(|k| ItemKey(k.into())).collect();
            store
                .record_poll(PollRecord {
                    new_keys: keys,
                    ..record(&feed, t)
                })
                .await
                .expect("recorded");
        }
        store
            .record_poll(PollRecord {
                new_keys: vec![ItemKey("x".into())],
                ..record(&FeedId("other".into()), 15)
            })
            .await
            .expect("recorded");
        let times = store.new_item_times(10).await.expect("query");
        assert_eq!(times[&feed], [at(20), at(10)]);
        assert_eq!(times[&FeedId("other".into())], [at(15)]);
        assert_eq!(
            store.new_item_times(1).await.expect("query")[&feed],
            [at(20)]
        );
    }
}

#[tokio::test]
async fn a_version_1_database_is_migrated_keeping_its_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("raw open");
        conn.execute_batch(sqlite::MIGRATIONS[0])
            .expect("version 1 schema");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute(
            "INSERT INTO feed_state (feed, last_success, consecutive_failures) VALUES ('wire', 5, 0)",
            [],
        )
        .expect("row");
    }
    let store = Store::open(dir.path()).await.expect("migrates");
    let state = store
        .feed_state(&FeedId("wire".into()))
        .await
        .expect("query")
        .expect("row kept");
    assert_eq!(state.last_success, Some(at(5)));
    assert_eq!(state.broken_since, None);
    assert_eq!(
        state.first_success, None,
        "not known of a feed polled before"
    );
    store
        .record_poll(record(&FeedId("wire".into()), 10))
        .await
        .expect("polled after the upgrade");
    let state = store
        .feed_state(&FeedId("wire".into()))
        .await
        .expect("query")
        .expect("row kept");
    assert_eq!(state.first_success, None, "a later poll is not its first");
    let version: i64 = raw(dir.path())
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, sqlite::MIGRATIONS.len() as i64);
    let auto_vacuum: i64 = raw(dir.path())
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(
        auto_vacuum, 2,
        "a file made before can give pruned space back"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_release_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(Store::open(dir.path()).await.expect("store opens"));
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("raw open");
    conn.pragma_update(None, "user_version", 99).expect("bump");
    drop(conn);
    let err = Store::open(dir.path()).await.expect_err("newer schema");
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_database_runs_in_wal_mode_with_full_sync() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _store = Store::open(dir.path()).await.expect("store opens");
    let conn = raw(dir.path());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "FULL");
}

#[tokio::test]
async fn notes_are_set_replaced_and_cleared() {
    for store in each_engine().await {
        assert_eq!(store.note("config_error").await.expect("query"), None);
        store
            .set_note("config_error", Some("bad"), at(10))
            .await
            .expect("set");
        store
            .set_note("config_error", Some("worse"), at(20))
            .await
            .expect("replace");
        assert_eq!(
            store.note("config_error").await.expect("query"),
            Some(("worse".to_string(), at(20)))
        );
        store
            .set_note("config_error", None, at(30))
            .await
            .expect("clear");
        assert_eq!(store.note("config_error").await.expect("query"), None);
    }
}

#[tokio::test]
async fn recent_items_are_kept_a_day_with_their_content_cut() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        let item = |key: &str, content: String| Item {
            key: ItemKey(key.into()),
            title: format!("title {key}"),
            link: None,
            published: None,
            summary: String::new(),
            content,
            author: String::new(),
            categories: String::new(),
            html: None,
            article: String::new(),
        };
        let poll = async |items: &[&Item], when: i64| {
            store
                .record_poll(PollRecord {
                    new_keys: items.iter().map(|i| i.key.clone()).collect(),
                    recent: items.iter().map(|i| (*i).clone()).collect(),
                    ..record(&feed, when)
                })
                .await
                .expect("recorded");
        };
        let day = RECENT.as_secs() as i64;
        let old = item("old", "é".repeat(10_000));
        poll(&[&old], 1000).await;
        let kept = store.recent_items(at(0)).await.expect("query");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].1.content.len(), 4 * 1024, "cut at a char boundary");
        assert_eq!(kept[0].0, feed);

        let new = item("new", "short".into());
        poll(&[&new], 1000 + day + 1).await;
        let kept = store.recent_items(at(0)).await.expect("query");
        assert_eq!(kept.len(), 1, "the day-old item is pruned");
        assert_eq!(kept[0].1, new);
        assert!(
            store
                .recent_items(at(1000 + day + 2))
                .await
                .expect("query")
                .is_empty()
        );
    }
}

/// Rows an older newshound parked beyond their lifetime (an uncapped Retry-After) get
/// their last try when the lifetime ends; rows waiting for a digest are left alone.
#[tokio::test]
async fn waits_beyond_the_lifetime_end_when_it_does() {
    for store in each_engine().await {
        queue(&store, &["failed", "digest"], 100).await;
        let rows = claim_at(&store, 100).await;
        let id = |key: &str| rows.iter().find(|r| r.alert.key.0 == key).expect("row").id;
        let year_9999 = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
            .expect("date")
            .with_timezone(&Utc);
        store
            .mark_retry(&[id("failed")], year_9999, "503")
            .await
            .expect("retry");
        store
            .defer(&[id("digest")], at(100 + 7200))
            .await
            .expect("defer");
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(store.end_waits_at_lifetime(hour).await.expect("end"), 1);
        assert_eq!(store.next_due().await.expect("query"), Some(at(100 + 3600)));
        let due = claim_at(&store, 100 + 3600).await;
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, id("failed"));
    }
}

/// Regression: error chains repeated themselves in the one line a user sees
/// ("database: database or disk is full: database or disk is full"). Each store error
/// says its cause once, whether shown alone or with its chain.
#[test]
fn store_errors_say_their_cause_once() {
    let full = || {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        )
    };
    let errors = [
        StoreError::from(full()),
        StoreError::Open {
            path: "/var/lib/newshound/newshound.db".into(),
            cause: full(),
        },
        StoreError::Lock {
            path: "/var/lib/newshound/newshound.lock".into(),
            cause: std::io::Error::other("database or disk is full"),
        },
    ];
    for error in errors {
        let line = format!("{:#}", anyhow::Error::new(error));
        assert_eq!(line.matches("disk is full").count(), 1, "{line}");
    }
}

/// A database is built beside its place and moved there whole, so a crash while
/// creating it leaves a stray `newshound.db.new`, never an empty `newshound.db` (which
/// is refused as damaged); the stray file is replaced by the next start.
#[tokio::test]
async fn a_new_database_appears_whole_and_a_half_built_one_is_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("newshound.db.new"), b"half built").expect("leftover");
    let store = Store::open(dir.path()).await.expect("store opens");
    assert!(!dir.path().join("newshound.db.new").exists());
    store
        .record_unchanged(&FeedId("wire".into()), at(1))
        .await
        .expect("writes");
    drop(store);
    assert!(
        std::fs::metadata(dir.path().join(DB_FILE))
            .expect("db")
            .len()
            > 0
    );
}

#[tokio::test]
async fn a_read_only_store_reads_and_refuses_writes_and_old_schemas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    store
        .record_failure(&FeedId("flaky".into()), failure("timeout", "slow"), at(2))
        .await
        .expect("recorded");
    drop(store);
    let reader = Store::open_read_only(dir.path())
        .await
        .expect("opens")
        .expect("exists");
    assert_eq!(reader.feed_states().await.expect("reads").len(), 1);
    assert!(
        reader
            .record_unchanged(&FeedId("flaky".into()), at(3))
            .await
            .is_err()
    );
    drop(reader);
    rusqlite::Connection::open(dir.path().join(DB_FILE))
        .and_then(|c| c.pragma_update(None, "user_version", 3))
        .expect("made old");
    let old = Store::open_read_only(dir.path()).await.map(|_| ());
    let message = old.expect_err("an older schema").to_string();
    assert!(
        message.contains("start the daemon once to upgrade it"),
        "{message}"
    );
}

/// The status page's latest alerts: newest first, at most as many as asked, each
/// with its channel, state and the alert itself.
#[tokio::test]
async fn the_latest_alerts_come_newest_first_with_their_state() {
    for store in each_engine().await {
        queue(&store, &["a", "b", "c"], 10).await;
        let due = store
            .claim_due(at(20), 10, std::time::Duration::from_secs(60))
            .await
            .expect("claim");
        let first = due.iter().find(|r| r.alert.key.0 == "a").expect("a").id;
        store.mark_sent(&[first], at(21)).await.expect("sent");
        let latest = store.recent_alerts(2).await.expect("recent");
        let keys: Vec<&str> = latest.iter().map(|r| r.alert.key.0.as_str()).collect();
        assert_eq!(keys, ["c", "b"]);
        assert_eq!(latest[0].channel, "me");
        let all = store.recent_alerts(10).await.expect("recent");
        let sent = all.iter().find(|r| r.id == first).expect("a");
        assert_eq!((sent.state.as_str(), sent.created), ("sent", at(10)));
    }
}

#[tokio::test]
async fn a_stopped_store_at_a_relative_path_opens_read_only() {
    // Unit tests run in the package's folder; the state goes under `target/`.
    let dir = tempfile::tempdir_in("target").expect("temp dir");
    let relative = dir
        .path()
        .strip_prefix(std::env::current_dir().expect("cwd"))
        .expect("under the package")
        .to_owned();
    let store = Store::open(&relative).await.expect("store opens");
    store
        .record_failure(&FeedId("flaky".into()), failure("timeout", "slow"), at(2))
        .await
        .expect("recorded");
    drop(store);
    // The writer closes the database on its thread; once it has, no WAL index is left.
    let index = relative.join(format!("{DB_FILE}-shm"));
    for _ in 0..500 {
        if !index.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        !index.exists(),
        "a clean stop leaves no {}",
        index.display()
    );
    let reader = Store::open_read_only(&relative)
        .await
        .expect("a healthy database opens")
        .expect("exists");
    assert_eq!(reader.feed_states().await.expect("reads").len(), 1);
}

#[tokio::test]
async fn the_state_says_how_much_it_takes_on_disk() {
    for store in each_engine().await {
        let empty = store.state_bytes().await.expect("size");
        assert!(empty > 0, "a state with its schema takes some room");
        let feed = FeedId("wire".into());
        let keys: Vec<ItemKey> = (0..5000).map(|i| ItemKey(format!("item-{i:05}"))).collect();
        let poll = PollRecord {
            new_keys: keys,
            ..record(&feed, 5)
        };
        store.record_poll(poll).await.expect("recorded");
        let full = store.state_bytes().await.expect("size");
        assert!(
            full > empty,
            "5,000 seen items take room: {empty} then {full}"
        );
    }
}

/// `why` finds an item by key, link or title words, with its kept text, the filter
/// that dropped it, and each alert with what became of it.
#[tokio::test]
async fn an_item_is_traced_by_key_link_or_title_words() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        let item = |key: &str, title: &str| Item {
            key: ItemKey(key.into()),
            title: title.into(),
            link: Some(format!("https://news.test/{key}")),
            published: None,
            summary: String::new(),
            content: String::new(),
            author: String::new(),
            categories: String::new(),
            html: None,
            article: String::new(),
        };
        let (kept, dropped) = (
            item("k1", "Lavrov meets Blinken"),
            item("k2", "50% off_sale"),
        );
        let accented = item("k3", "Émeutes à Paris");
        let quoted = item("k4", r#"A "shocking" C:\path\result"#);
        store
            .record_poll(PollRecord {
                new_keys: vec![ItemKey("k0".into()), kept.key.clone(), dropped.key.clone()],
                recent: vec![kept.clone(), dropped.clone(), accented, quoted],
                dropped: vec![(dropped.key.clone(), "no ads".into())],
                alerts: vec![("me".into(), alert(&feed, "k1"))],
                ..record(&feed, 100)
            })
            .await
            .expect("recorded");
        let traced = store.trace("k1").await.expect("by key");
        assert_eq!(traced.len(), 1);
        let t = &traced[0];
        assert_eq!((t.feed.0.as_str(), t.key.0.as_str()), ("wire", "k1"));
        assert_eq!(
            (t.first_seen, t.feed_first_polled),
            (Some(at(100)), Some(at(100)))
        );
        assert_eq!(t.kept, Some((kept.clone(), None)));
        assert_eq!(t.alerts.len(), 1);
        assert_eq!(
            (t.alerts[0].channel.as_str(), t.alerts[0].state.as_str()),
            ("me", "pending")
        );
        assert_eq!(t.alerts[0].alert.rules, ["talks"]);
        for query in ["https://news.test/k1", "blinken LAVROV", "  meets  "] {
            let found = store.trace(query).await.expect("found");
            let keys: Vec<&str> = found.iter().map(|t| t.key.0.as_str()).collect();
            assert_eq!(keys, ["k1"], "{query}");
        }
        let found = store
            .trace("50% off_sale")
            .await
            .expect("LIKE wildcards are literal");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].kept,
            Some((dropped.clone(), Some("no ads".into())))
        );
        assert!(store.trace("0% o").await.expect("words").len() <= 1);
        // SQLite folds only ASCII letters; the search does not depend on it.
        let found = store.trace("émeutes PARIS").await.expect("accented words");
        let keys: Vec<&str> = found.iter().map(|t| t.key.0.as_str()).collect();
        assert_eq!(keys, ["k3"]);
        // In the stored JSON a quote and a backslash are escaped.
        for query in [r#""shocking""#, r#"c:\path\result"#] {
            let found = store.trace(query).await.expect("quoted words");
            let keys: Vec<&str> = found.iter().map(|t| t.key.0.as_str()).collect();
            assert_eq!(keys, ["k4"], "{query}");
        }
        let bare = store.trace("k0").await.expect("seen, not kept");
        assert_eq!(bare.len(), 1);
        assert_eq!((bare[0].kept.clone(), bare[0].alerts.len()), (None, 0));
        assert!(
            store
                .trace("nothing of the sort")
                .await
                .expect("none")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_vote_is_kept_per_rule_and_item_whatever_alert_carried_it() {
    for store in each_engine().await {
        let vote = |key: &str, alert: i64, vote, text: &str, secs| Learned {
            rule: "talks".into(),
            feed: FeedId("wire".into()),
            key: ItemKey(key.into()),
            alert,
            vote,
            text: text.into(),
            at: at(secs),
        };
        use crate::model::Vote::{More, Not};
        store.learn(vote("k1", 1, Not, "A", 1)).await.expect("k1");
        // Alert 1 gone and its id used again for another item: both examples stay.
        store.learn(vote("k2", 1, More, "B", 2)).await.expect("k2");
        // The first item's alert on another channel: its vote replaces the first.
        store
            .learn(vote("k1", 5, More, "A", 3))
            .await
            .expect("k1 again");
        let other_rule = Learned {
            rule: "summits".into(),
            ..vote("k1", 5, Not, "A", 4)
        };
        store.learn(other_rule.clone()).await.expect("another rule");
        // The same vote again, through a third alert: nothing changes.
        store
            .learn(vote("k2", 9, More, "B", 5))
            .await
            .expect("k2 again");
        assert_eq!(
            store.learned().await.expect("learned"),
            [
                vote("k2", 1, More, "B", 2),
                vote("k1", 5, More, "A", 3),
                other_rule
            ]
        );
    }
}

#[tokio::test]
async fn a_feeds_first_poll_is_its_first_success_not_its_oldest_item() {
    for store in each_engine().await {
        let feed = FeedId("late".into());
        store
            .record_failure(&feed, failure("timeout", "slow"), at(5))
            .await
            .expect("a failure first");
        store
            .record_poll(record(&feed, 10))
            .await
            .expect("empty on its first poll");
        store
            .record_poll(PollRecord {
                new_keys: vec![ItemKey("b1".into())],
                ..record(&feed, 20)
            })
            .await
            .expect("an item later");
        let state = store.feed_state(&feed).await.expect("state").expect("kept");
        assert_eq!(state.first_success, Some(at(10)));
        let traced = store.trace("b1").await.expect("traced");
        assert_eq!(
            (traced[0].first_seen, traced[0].feed_first_polled),
            (Some(at(20)), Some(at(10)))
        );
    }
}
