use super::*;
use crate::model::Source;
use crate::model::Validators;
use crate::model::{Priority, Snippet};
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
        sketch: None,
        gist: None,
        priority: Priority::Normal,
        feedback: Vec::new(),
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
    async fn unseen(store: &Store, feed: &FeedId, keys: &[ItemKey]) -> Vec<ItemKey> {
        store.unseen(feed, keys.to_vec()).await.expect("query")
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("wire".into());
    let keys = [ItemKey("a".into()), ItemKey("b".into())];
    assert_eq!(unseen(&store, &feed, &keys).await.len(), 2);
    assert_eq!(store.feed_state(&feed).await.expect("query"), None);

    let validators = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: None,
    };
    let ids = store
        .record_poll(PollRecord {
            new_keys: keys.to_vec(),
            alerts: vec![("me".into(), alert(&feed, "a"))],
            validators: validators.clone(),
            ..record(&feed, 1000)
        })
        .await
        .expect("recorded");
    assert_eq!(ids.len(), 1);
    assert!(unseen(&store, &feed, &keys).await.is_empty());
    let later = [ItemKey("c".into()), ItemKey("b".into())];
    assert_eq!(unseen(&store, &feed, &later).await, [ItemKey("c".into())]);
    assert_eq!(
        unseen(&store, &FeedId("other".into()), &keys).await.len(),
        2,
        "another feed's items are its own"
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
    assert!(unseen(&store, &feed, &keys).await.is_empty());
    let due = claim_at(&store, 1000).await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].channel, "me");
    assert_eq!(due[0].alert, alert(&feed, "a"));
}

#[tokio::test]
async fn the_same_alert_is_never_queued_twice() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        let poll = PollRecord {
            alerts: vec![("me".into(), alert(&feed, "a"))],
            ..record(&feed, 5)
        };
        assert_eq!(
            store.record_poll(poll.clone()).await.expect("first").len(),
            1
        );
        assert_eq!(
            store.record_poll(poll.clone()).await.expect("second").len(),
            0
        );
        assert_eq!(store.outbox_counts().await.expect("counts").pending, 1);
    }
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// Claims the rows due at `when`, ten at the most, for [`LEASE`].
async fn claim_at(store: &Store, when: i64) -> Vec<OutboxRow> {
    store.claim_due(at(when), 10, LEASE).await.expect("claim")
}

/// A poll of `feed` at `when` that recorded nothing.
fn record(feed: &FeedId, when: i64) -> PollRecord {
    PollRecord::new(feed.clone(), at(when))
}

/// Queues an alert from feed `wire` to channel `me` for each of `keys`.
async fn queue(store: &Store, keys: &[&str], when: i64) {
    let feed = FeedId("wire".into());
    let alerts = keys
        .iter()
        .map(|k| ("me".to_string(), alert(&feed, k)))
        .collect();
    let poll = PollRecord {
        alerts,
        ..record(&feed, when)
    };
    store.record_poll(poll).await.expect("recorded");
}

/// A connection of the test's own to the store's database, for what the store's
/// interface does not show.
fn raw(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).expect("raw open");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

#[tokio::test]
async fn outbox_rows_are_claimed_then_retried_sent_or_dead() {
    for store in each_engine().await {
        queue(&store, &["a", "b"], 100).await;
        let due = claim_at(&store, 100).await;
        let (a, b) = (due[0].id, due[1].id);
        assert!(
            claim_at(&store, 100).await.is_empty(),
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
        assert!(claim_at(&store, 159).await.is_empty(), "a waits");
        assert_eq!(store.next_due().await.expect("query"), Some(at(160)));
        store.mark_sent(&[b], at(101)).await.expect("sent");
        let retried = claim_at(&store, 160).await;
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
}

/// The rest of a due digest is claimed by channel, whatever the batch took.
#[tokio::test]
async fn a_channels_due_rows_are_claimed_together() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        queue(&store, &["a", "b", "c"], 100).await;
        let other = PollRecord {
            alerts: vec![("them".into(), alert(&feed, "d"))],
            ..record(&feed, 100)
        };
        store.record_poll(other).await.expect("recorded");
        let first = store.claim_due(at(100), 1, LEASE).await.expect("claim");
        assert_eq!(first.len(), 1, "{}", store.engine);
        let rest = store
            .claim_due_in("me", at(100), 100, LEASE)
            .await
            .expect("claim");
        assert_eq!(rest.len(), 2, "{}: the others of `me` only", store.engine);
        assert!(rest.iter().all(|r| r.channel == "me"));
    }
}

#[tokio::test]
async fn claims_go_oldest_first_and_respect_the_limit() {
    for store in each_engine().await {
        queue(&store, &["new"], 200).await;
        queue(&store, &["old"], 100).await;
        let first = store.claim_due(at(300), 1, LEASE).await.expect("claim");
        assert_eq!(first[0].alert.key.0, "old");
        let second = store.claim_due(at(300), 5, LEASE).await.expect("claim");
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].alert.key.0, "new");
    }
}

#[tokio::test]
async fn an_expired_lease_returns_the_row_to_pending_and_a_live_one_does_not() {
    for store in each_engine().await {
        queue(&store, &["a"], 100).await;
        let id = claim_at(&store, 100).await[0].id;
        assert_eq!(store.release_expired(at(699)).await.expect("release"), 0);
        assert_eq!(store.state_of(id).await, "sending");
        assert_eq!(store.release_expired(at(700)).await.expect("release"), 1);
        assert_eq!(store.state_of(id).await, "pending");
        // The dispatcher that lost the lease reports late: the row is not touched.
        store.mark_sent(&[id], at(701)).await.expect("late mark");
        assert_eq!(store.state_of(id).await, "pending");
        assert_eq!(claim_at(&store, 701).await.len(), 1);
    }
}

#[tokio::test]
async fn at_start_up_the_lock_holder_takes_back_every_claim() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    queue(&store, &["a"], 100).await;
    let id = claim_at(&store, 100).await[0].id;
    drop(store);
    // As after kill -9: the lease has not run out, but its owner is gone.
    let lock = StateLock::acquire(dir.path()).expect("lock");
    let store = Store::open(dir.path()).await.expect("store reopens");
    assert_eq!(store.release_claims(&lock).await.expect("release"), 1);
    let pending = claim_at(&store, 100).await;
    assert_eq!(pending[0].id, id, "pending again");
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
                claim_at(s, 100).await;
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
    let stores = engines().await;
    let engines_run = stores.len();
    for each in stores {
        for from in states {
            for event in events {
                each.clear_outbox().await;
                queue(&each.store, &["a"], 50).await;
                let id = each.force_state(from).await;
                let lock_dir = tempfile::tempdir().expect("temp dir");
                apply(event, &each.store, id, lock_dir.path()).await;
                // A database shared by several instances leaves claims to their lease
                // at start-up: another instance may be delivering them.
                let shared_start_up = each.engine == "postgres" && event == "start-up";
                let expected = if shared_start_up {
                    from
                } else {
                    expected(from, event)
                };
                assert_eq!(
                    each.state_of(id).await,
                    expected,
                    "{}: {from} --{event}-->",
                    each.engine
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 48 * engines_run);
}

mod engines;
mod retention;
mod shared;
mod state;
mod stories;

use engines::{each_engine, engines};
