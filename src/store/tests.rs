use super::*;
use crate::model::Snippet;
use crate::model::Source;
use std::path::Path;

fn alert(feed: &FeedId, key: &str) -> Alert {
    Alert {
        feed: feed.clone(),
        key: ItemKey(key.into()),
        title: format!("title of {key}"),
        link: None,
        published: None,
        rules: vec!["talks".into()],
        terms: vec!["NATO".into()],
        snippet: Snippet::default(),
        why: Vec::new(),
        summary_html: None,
        also_in: Vec::new(),
    }
}

fn failure(kind: &str, message: &str) -> Failure {
    Failure {
        kind: kind.into(),
        message: message.into(),
        retry_after_until: None,
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("valid time")
}

#[tokio::test]
async fn a_poll_records_items_alerts_and_validators_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    let keys = [ItemKey("a".into()), ItemKey("b".into())];
    assert_eq!(
        store
            .unseen(&feed, keys.to_vec())
            .await
            .expect("query")
            .len(),
        2
    );
    assert_eq!(store.feed_state(&feed).await.expect("query"), None);

    let validators = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: None,
    };
    let ids = store
        .record_poll(PollRecord {
            feed: feed.clone(),
            new_keys: keys.to_vec(),
            recent: vec![],
            alerts: vec![("me".into(), alert(&feed, "a"))],
            held: vec![],
            validators: validators.clone(),
            flooding: None,
            repaired: None,
            at: at(1000),
            dedupe_within: std::time::Duration::ZERO,
        })
        .await
        .expect("recorded");
    assert_eq!(ids.len(), 1);
    assert!(
        store
            .unseen(&feed, keys.to_vec())
            .await
            .expect("query")
            .is_empty()
    );
    let state = store
        .feed_state(&feed)
        .await
        .expect("query")
        .expect("state row");
    assert_eq!(state.validators, validators);
    assert_eq!(state.last_success, Some(at(1000)));

    // State survives a reopen, as after a crash.
    drop(store);
    let store = Store::open(dir.path()).await.expect("store reopens");
    assert!(
        store
            .unseen(&feed, keys.to_vec())
            .await
            .expect("query")
            .is_empty()
    );
    let due = store.claim_due(at(1000), 10, LEASE).await.expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].channel, "me");
    assert_eq!(due[0].alert, alert(&feed, "a"));
}

#[tokio::test]
async fn the_same_alert_is_never_queued_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    let record = PollRecord {
        feed: feed.clone(),
        new_keys: vec![],
        recent: vec![],
        alerts: vec![("me".into(), alert(&feed, "a"))],
        held: vec![],
        validators: Validators::default(),
        flooding: None,
        repaired: None,
        at: at(5),
        dedupe_within: std::time::Duration::ZERO,
    };
    assert_eq!(
        store
            .record_poll(record.clone())
            .await
            .expect("first")
            .len(),
        1
    );
    assert_eq!(
        store
            .record_poll(record.clone())
            .await
            .expect("second")
            .len(),
        0
    );
    assert_eq!(store.outbox_counts().await.expect("counts").pending, 1);
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(600);

async fn queue(store: &Store, feed: &FeedId, keys: &[&str], when: i64) {
    store
        .record_poll(PollRecord {
            feed: feed.clone(),
            new_keys: vec![],
            recent: vec![],
            alerts: keys
                .iter()
                .map(|k| ("me".to_string(), alert(feed, k)))
                .collect(),
            held: vec![],
            validators: Validators::default(),
            flooding: None,
            repaired: None,
            at: at(when),
            dedupe_within: std::time::Duration::ZERO,
        })
        .await
        .expect("recorded");
}

/// A connection of the test's own to the store's database, for what the store's
/// interface does not show.
fn raw(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).expect("raw open");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

fn state_of(dir: &Path, id: i64) -> String {
    raw(dir)
        .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))
        .expect("row exists")
}

#[tokio::test]
async fn outbox_rows_are_claimed_then_retried_sent_or_dead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    queue(&store, &feed, &["a", "b"], 100).await;
    let due = store.claim_due(at(100), 10, LEASE).await.expect("claim");
    let (a, b) = (due[0].id, due[1].id);
    assert!(
        store
            .claim_due(at(100), 10, LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "claimed rows are not handed out twice"
    );

    store
        .mark_retry(&[a], at(160), "451 try later")
        .await
        .expect("retry");
    assert_eq!(
        store.retrying().await.expect("query"),
        [Retrying {
            id: a,
            channel: "me".into(),
            attempts: 1,
            next_attempt: at(160),
            last_error: "451 try later".into(),
        }]
    );
    assert!(
        store
            .claim_due(at(159), 10, LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "a waits"
    );
    assert_eq!(store.next_due().await.expect("query"), Some(at(160)));
    store.mark_sent(&[b], at(101)).await.expect("sent");
    let retried = store.claim_due(at(160), 10, LEASE).await.expect("claim");
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);

    store
        .mark_dead(&[a], at(170), "550 no such user")
        .await
        .expect("dead");
    assert_eq!(
        store.outbox_counts().await.expect("counts"),
        OutboxCounts {
            sent: 1,
            dead: 1,
            ..OutboxCounts::default()
        }
    );
    assert_eq!(
        store.dead_letters().await.expect("query"),
        [(a, "me".to_string(), "550 no such user".to_string())]
    );
    assert_eq!(store.next_due().await.expect("query"), None);
}

#[tokio::test]
async fn claims_go_oldest_first_and_respect_the_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    queue(&store, &feed, &["new"], 200).await;
    queue(&store, &feed, &["old"], 100).await;
    let first = store.claim_due(at(300), 1, LEASE).await.expect("claim");
    assert_eq!(first[0].alert.key.0, "old");
    let second = store.claim_due(at(300), 5, LEASE).await.expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].alert.key.0, "new");
}

#[tokio::test]
async fn an_expired_lease_returns_the_row_to_pending_and_a_live_one_does_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    queue(&store, &feed, &["a"], 100).await;
    let id = store.claim_due(at(100), 10, LEASE).await.expect("claim")[0].id;
    assert_eq!(store.release_expired(at(699)).await.expect("release"), 0);
    assert_eq!(state_of(dir.path(), id), "sending");
    assert_eq!(store.release_expired(at(700)).await.expect("release"), 1);
    assert_eq!(state_of(dir.path(), id), "pending");
    // The dispatcher that lost the lease reports late: the row is not touched.
    store.mark_sent(&[id], at(701)).await.expect("late mark");
    assert_eq!(state_of(dir.path(), id), "pending");
    assert_eq!(
        store
            .claim_due(at(701), 10, LEASE)
            .await
            .expect("claim")
            .len(),
        1
    );
}

#[tokio::test]
async fn at_start_up_the_lock_holder_takes_back_every_claim() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    queue(&store, &feed, &["a"], 100).await;
    let id = store.claim_due(at(100), 10, LEASE).await.expect("claim")[0].id;
    drop(store);
    // As after kill -9: the lease has not run out, but its owner is gone.
    let lock = StateLock::acquire(dir.path()).expect("lock");
    let store = Store::open(dir.path()).await.expect("store reopens");
    assert_eq!(store.release_claims(&lock).await.expect("release"), 1);
    assert_eq!(state_of(dir.path(), id), "pending");
}

#[tokio::test]
async fn a_second_lock_on_the_state_dir_is_refused_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = StateLock::acquire(dir.path()).expect("first lock");
    let second = StateLock::acquire(dir.path()).expect_err("second lock refused");
    assert!(
        second
            .to_string()
            .contains("another newshound is already running"),
        "{second}"
    );
    drop(first);
    StateLock::acquire(dir.path()).expect("free again");
}

/// Every event applied to a row in every state: the table in [`OutboxState`]'s docs.
#[tokio::test]
async fn outbox_state_machine_follows_its_table() {
    async fn apply(event: &str, s: &Store, id: i64, dir: &Path) {
        match event {
            "defer" => s.defer(&[id], at(3600)).await.expect("defer"),
            "claim" => {
                s.claim_due(at(100), 10, LEASE).await.expect("claim");
            }
            "sent" => s.mark_sent(&[id], at(100)).await.expect("sent"),
            "retry" => s.mark_retry(&[id], at(130), "4xx").await.expect("retry"),
            "dead" => s.mark_dead(&[id], at(100), "5xx").await.expect("dead"),
            "expire" => {
                s.release_expired(at(100)).await.expect("release");
            }
            "start-up" => {
                let lock = StateLock::acquire(dir).expect("lock");
                s.release_claims(&lock).await.expect("release");
            }
            "replay" => s.requeue(&[id], at(100)).await.expect("requeue"),
            other => unreachable!("no event {other}"),
        }
    }
    let events = [
        "defer", "claim", "sent", "retry", "dead", "expire", "start-up", "replay",
    ];
    let states = ["pending", "sending", "sent", "dead", "held", "merged"];
    let expected = |from: &str, event: &str| -> &'static str {
        match (from, event) {
            ("pending", "claim") => "sending",
            ("sending", "sent") => "sent",
            ("sending", "retry" | "defer" | "expire" | "start-up") => "pending",
            ("sending", "dead") => "dead",
            ("dead" | "held" | "sent", "replay") => "pending",
            _ => states.iter().find(|s| **s == from).expect("known state"),
        }
    };
    let mut checked = 0;
    for from in states {
        for event in events {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(dir.path()).await.expect("store opens");
            let feed = FeedId("wire".into());
            queue(&store, &feed, &["a"], 50).await;
            let id: i64 = raw(dir.path())
                .query_row(
                    "UPDATE outbox SET state = ?1, lease_until = 60 RETURNING id",
                    [from],
                    |r| r.get(0),
                )
                .expect("set state");
            apply(event, &store, id, dir.path()).await;
            assert_eq!(
                state_of(dir.path(), id),
                expected(from, event),
                "{from} --{event}-->"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 48);
}

#[tokio::test]
async fn failures_count_up_and_a_success_resets_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
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
    store
        .record_poll(PollRecord {
            feed: feed.clone(),
            new_keys: vec![],
            recent: vec![],
            alerts: vec![],
            held: vec![],
            validators: Validators::default(),
            flooding: None,
            repaired: None,
            at: at(3),
            dedupe_within: std::time::Duration::ZERO,
        })
        .await
        .expect("recorded");
    let state = store.feed_state(&feed).await.expect("query").expect("row");
    assert_eq!(state.consecutive_failures, 0);
    assert_eq!(state.last_error, None);
    assert_eq!(state.retry_after_until, None, "a success ends the wait");
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
            feed: wire.clone(),
            new_keys: keys.to_vec(),
            recent: vec![],
            alerts: vec![],
            held: vec![],
            validators: Validators::default(),
            flooding: None,
            repaired: None,
            at: at(10),
            dedupe_within: std::time::Duration::ZERO,
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
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    for (t, keys) in [(10, vec!["a", "b"]), (20, vec!["c"]), (30, vec![])] {
        let keys: Vec<ItemKey> = keys.into_iter().map(|k| ItemKey(k.into())).collect();
        store
            .record_poll(PollRecord {
                feed: feed.clone(),
                new_keys: keys.to_vec(),
                recent: vec![],
                alerts: vec![],
                held: vec![],
                validators: Validators::default(),
                flooding: None,
                repaired: None,
                at: at(t),
                dedupe_within: std::time::Duration::ZERO,
            })
            .await
            .expect("recorded");
    }
    assert_eq!(
        store.new_item_times(&feed, 10).await.expect("query"),
        [at(20), at(10)]
    );
    assert_eq!(
        store.new_item_times(&feed, 1).await.expect("query"),
        [at(20)]
    );
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
    let version: i64 = raw(dir.path())
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, sqlite::MIGRATIONS.len() as i64);
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

/// An alert from a rule match about a story with this title and link.
fn story(feed: &str, key: &str, title: &str, link: Option<&str>) -> Alert {
    Alert {
        title: title.into(),
        link: link.map(Into::into),
        why: vec![crate::model::RuleFields {
            rule: "talks".into(),
            fields: vec![crate::model::Field::Title],
        }],
        ..alert(&FeedId(feed.into()), key)
    }
}

async fn poll_with(store: &Store, alerts: Vec<(String, Alert)>, when: i64) -> Vec<i64> {
    let feed = alerts[0].1.feed.clone();
    store
        .record_poll(PollRecord {
            feed: feed.clone(),
            new_keys: vec![],
            recent: vec![],
            alerts,
            held: vec![],
            validators: Validators::default(),
            flooding: None,
            repaired: None,
            at: at(when),
            dedupe_within: std::time::Duration::from_secs(3600),
        })
        .await
        .expect("recorded")
}

#[tokio::test]
async fn the_same_story_from_another_feed_is_merged_into_the_first_alert() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let first = story(
        "wire",
        "w1",
        "Talks in Geneva",
        Some("https://news.example.org/a?id=1"),
    );
    let again = story(
        "mirror",
        "m9",
        "Geneva: the talks",
        Some("http://www.news.example.org/a?utm_source=rss&id=1"),
    );
    let same_title = story(
        "agency",
        "a3",
        "TALKS in Geneva!",
        Some("https://agency.example.com/x"),
    );
    assert_eq!(
        poll_with(&store, vec![("me".into(), first)], 100)
            .await
            .len(),
        1
    );
    assert!(
        poll_with(&store, vec![("me".into(), again)], 200)
            .await
            .is_empty()
    );
    // Too short a title to say it is the same story: a separate alert.
    assert_eq!(
        poll_with(&store, vec![("me".into(), same_title)], 300)
            .await
            .len(),
        1
    );

    let counts = store.outbox_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.merged), (2, 1));
    let due = store.claim_due(at(300), 10, LEASE).await.expect("claim");
    assert_eq!(due[0].alert.key.0, "w1");
    assert_eq!(
        due[0].alert.also_in,
        [Source {
            feed: FeedId("mirror".into()),
            title: "Geneva: the talks".into(),
            link: Some("http://www.news.example.org/a?utm_source=rss&id=1".into()),
        }]
    );
}

#[tokio::test]
async fn a_long_enough_title_makes_one_story_even_after_the_first_was_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let title = "Lavrov and Blinken meet in Geneva";
    let first = story("wire", "w1", title, Some("https://wire.example.org/1"));
    let id = poll_with(&store, vec![("me".into(), first)], 100).await[0];
    store.claim_due(at(100), 10, LEASE).await.expect("claim");
    store.mark_sent(&[id], at(101)).await.expect("sent");

    let copy = story("agency", "a1", "LAVROV and Blinken meet in Geneva.", None);
    assert!(
        poll_with(&store, vec![("me".into(), copy.clone())], 200)
            .await
            .is_empty()
    );
    // Another channel has not had it: it gets its own alert.
    assert_eq!(
        poll_with(&store, vec![("team".into(), copy)], 200)
            .await
            .len(),
        1
    );
    // After the window, the story is news again.
    let later = story("later", "l1", title, None);
    assert_eq!(
        poll_with(&store, vec![("me".into(), later)], 100 + 3601)
            .await
            .len(),
        1
    );
    let counts = store.outbox_counts().await.expect("counts");
    assert_eq!((counts.sent, counts.merged, counts.pending), (1, 1, 2));
}

#[tokio::test]
async fn notices_are_never_merged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    let notice = |key: &str| Alert {
        link: Some("https://wire.example.org/feed".into()),
        ..alert(&feed, key)
    };
    assert_eq!(
        poll_with(&store, vec![("me".into(), notice("broken"))], 100)
            .await
            .len(),
        1
    );
    assert_eq!(
        poll_with(&store, vec![("me".into(), notice("fixed"))], 200)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn notes_are_set_replaced_and_cleared() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
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

#[tokio::test]
async fn recent_items_are_kept_a_day_with_their_content_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
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
    };
    let poll = async |items: &[&Item], when: i64| {
        store
            .record_poll(PollRecord {
                feed: feed.clone(),
                new_keys: items.iter().map(|i| i.key.clone()).collect(),
                recent: items.iter().map(|i| (*i).clone()).collect(),
                alerts: vec![],
                held: vec![],
                validators: Validators::default(),
                flooding: None,
                repaired: None,
                at: at(when),
                dedupe_within: std::time::Duration::ZERO,
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

/// Rows an older newshound parked beyond their lifetime (an uncapped Retry-After) get
/// their last try when the lifetime ends; rows waiting for a digest are left alone.
#[tokio::test]
async fn waits_beyond_the_lifetime_end_when_it_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    queue(&store, &feed, &["failed", "digest"], 100).await;
    let rows = store.claim_due(at(100), 10, LEASE).await.expect("claim");
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
    let due = store
        .claim_due(at(100 + 3600), 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id("failed"));
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
