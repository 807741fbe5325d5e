//! Retention: what the pruner forgets, what it never forgets, and the space it gives
//! back.

use super::stories::{poll_with, story};
use super::*;

const DAY: i64 = 24 * 60 * 60;

fn keys(names: &[&str]) -> Vec<ItemKey> {
    names.iter().map(|k| ItemKey((*k).into())).collect()
}

/// Retention as the daemon sets it on `day` with the defaults: items gone 90 days,
/// sent alerts 30 days, dead and held ones 90 days; `configured` the config's feeds.
fn retention(day: i64, configured: &[&str]) -> Retention {
    Retention {
        forget_before: at((day - 90) * DAY),
        sent_before: at((day - 30) * DAY),
        dead_before: at((day - 90) * DAY),
        configured: configured.iter().map(|f| FeedId((*f).into())).collect(),
    }
}

/// Prunes on `day` (the next pruning due at once); what it deleted.
async fn prune(store: &Store, day: i64, configured: &[&str]) -> Pruned {
    let now = at(day * DAY);
    store
        .prune(&retention(day, configured), now, std::time::Duration::ZERO)
        .await
        .expect("pruned")
        .expect("no other instance prunes")
}

/// A poll of `feed` on `day` whose document holds `present`, of which `new` are new.
async fn poll(store: &Store, feed: &FeedId, day: i64, present: &[&str], new: &[&str]) {
    let poll = PollRecord {
        present: keys(present),
        new_keys: keys(new),
        ..record(feed, day * DAY)
    };
    store.record_poll(poll).await.expect("recorded");
}

#[tokio::test]
async fn an_item_still_in_its_feed_is_never_forgotten_and_one_gone_for_forget_after_is() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        poll(&store, &feed, 0, &["a", "b", "c"], &["a", "b", "c"]).await;
        // `a` leaves on day 1; `b` on day 50, and comes back on day 60.
        poll(&store, &feed, 1, &["b", "c", "d"], &["d"]).await;
        poll(&store, &feed, 50, &["c", "d"], &[]).await;
        poll(&store, &feed, 60, &["b", "c", "d"], &[]).await;

        let nothing_yet = prune(&store, 90, &["wire"]).await;
        assert_eq!(
            nothing_yet.seen_items, 0,
            "{}: a left 89 days ago",
            store.engine
        );
        let pruned = prune(&store, 92, &["wire"]).await;
        assert_eq!(pruned.seen_items, 1, "{}", store.engine);
        assert_eq!(
            store
                .unseen(&feed, keys(&["a", "b", "c", "d"]))
                .await
                .expect("query"),
            keys(&["a"]),
            "{}: only the item gone for 90 days is forgotten; c, first seen 92 days ago, is still in the feed",
            store.engine
        );
        // Much later, all still in the feed (b came back before its 90 days were up).
        assert_eq!(prune(&store, 400, &["wire"]).await.seen_items, 0);
        assert!(
            store
                .unseen(&feed, keys(&["b", "c", "d"]))
                .await
                .expect("query")
                .is_empty()
        );
        let last = store.last_prune().await.expect("note").expect("a pruning");
        assert_eq!(last, (Pruned::default(), at(400 * DAY)), "{}", store.engine);
        // Pruned an hour ago, with a pruning a day: not again yet (`once` from cron).
        let daily = std::time::Duration::from_secs(DAY as u64);
        let hour_later = at(400 * DAY + 3600);
        let rules = retention(400, &["wire"]);
        let again = store.prune(&rules, hour_later, daily).await.expect("asked");
        assert_eq!(again, None, "{}", store.engine);
    }
}

#[tokio::test]
async fn a_feed_removed_from_the_config_is_forgotten_once_nobody_polled_it_for_forget_after() {
    for store in each_engine().await {
        let (kept, removed) = (FeedId("kept".into()), FeedId("removed".into()));
        poll(&store, &kept, 0, &["k"], &["k"]).await;
        poll(&store, &removed, 0, &["r1", "r2"], &["r1", "r2"]).await;
        // Removed from the config on day 1, but not yet forgotten…
        assert_eq!(prune(&store, 80, &["kept"]).await.feeds, 0);
        // …nor is a configured feed that nobody polled (the daemon was stopped).
        let pruned = prune(&store, 91, &["kept"]).await;
        assert_eq!(
            (pruned.feeds, pruned.seen_items),
            (1, 2),
            "{}",
            store.engine
        );
        let stored: Vec<FeedId> = store
            .feed_states()
            .await
            .expect("states")
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        assert_eq!(stored, std::slice::from_ref(&kept), "{}", store.engine);
        assert!(
            store
                .unseen(&kept, keys(&["k"]))
                .await
                .expect("query")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn sent_and_dead_alerts_go_after_their_keep_with_what_merged_into_them_and_replay_goes_on() {
    for store in each_engine().await {
        let link = Some("https://news.example.org/talks");
        let first = story("wire", "w1", "Talks in Geneva resume", link);
        let copy = story("mirror", "m1", "Talks in Geneva resume", link);
        assert_eq!(poll_with(&store, "me", first, DAY).await.len(), 1);
        assert!(poll_with(&store, "me", copy, DAY + 60).await.is_empty());
        queue(&store, &["late", "dead"], 20 * DAY).await;
        let due = claim_at(&store, 20 * DAY).await;
        let id = |key: &str| due.iter().find(|r| r.alert.key.0 == key).expect(key).id;
        store
            .mark_sent(&[id("w1")], at(DAY + 100))
            .await
            .expect("sent");
        store
            .mark_sent(&[id("late")], at(20 * DAY))
            .await
            .expect("sent");
        store
            .mark_dead(&[id("dead")], at(20 * DAY), "550 no such user")
            .await
            .expect("dead");
        let held = PollRecord {
            held: vec![("me".into(), alert(&FeedId("flood".into()), "h1"))],
            ..record(&FeedId("flood".into()), 2 * DAY)
        };
        store.record_poll(held).await.expect("held");

        // Day 40: the story sent on day 1 is past 30 days; the rest is not.
        let pruned = prune(&store, 40, &["wire", "mirror", "flood"]).await;
        assert_eq!(
            (pruned.sent, pruned.merged, pruned.dead, pruned.held),
            (1, 1, 0, 0),
            "{}",
            store.engine
        );
        let counts = store.outbox_counts().await.expect("counts");
        assert_eq!(
            (counts.sent, counts.merged, counts.dead, counts.held),
            (1, 0, 1, 1)
        );
        let replay = store
            .replayable(OutboxState::Sent, None)
            .await
            .expect("replay");
        assert_eq!(
            replay.len(),
            1,
            "{}: `replay --since` still has the late one",
            store.engine
        );
        assert_eq!(replay[0].alert.key.0, "late");

        // Day 111: the dead letter (day 20) and the held alert (day 2) are past 90 days.
        let pruned = prune(&store, 111, &[]).await;
        assert_eq!(
            (pruned.sent, pruned.dead, pruned.held),
            (1, 1, 1),
            "{}",
            store.engine
        );
        assert_eq!(
            store.outbox_counts().await.expect("counts"),
            OutboxCounts::default()
        );
        assert!(store.dead_letters().await.expect("dead").is_empty());
    }
}

#[tokio::test]
async fn two_instances_pruning_at_once_delete_each_row_once_and_only_one_prunes() {
    let Some(database) = crate::store::testing::TestDatabase::create().await else {
        return;
    };
    let open = |name: &'static str| Store::connect(&database.url, None, name);
    let (a, b) = (open("a").await.expect("a"), open("b").await.expect("b"));
    let feed = FeedId("wire".into());
    let many: Vec<String> = (0..2500).map(|i| format!("item-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    poll(&a, &feed, 0, &many, &many).await;
    poll(&a, &feed, 1, &[], &[]).await;
    let now = at(100 * DAY);
    let (next, day) = (at(101 * DAY), std::time::Duration::from_secs(DAY as u64));
    let rules = retention(100, &["wire"]);
    let (by_a, by_b) = tokio::join!(a.prune(&rules, now, day), b.prune(&rules, now, day));
    let (by_a, by_b) = (by_a.expect("a prunes"), by_b.expect("b prunes"));
    assert!(
        by_a.is_some() != by_b.is_some(),
        "one instance prunes, the other finds it taken: {by_a:?} {by_b:?}"
    );
    let pruned = by_a.or(by_b).expect("one pruned");
    assert_eq!(pruned.seen_items, 2500);
    assert_eq!(
        b.prune(&rules, at(100 * DAY + 60), day)
            .await
            .expect("asked"),
        None,
        "the next pruning is due on day 101, whoever asks"
    );
    assert!(b.prune(&rules, next, day).await.expect("asked").is_some());
}

#[tokio::test]
async fn pruning_gives_the_space_back_to_the_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let feed = FeedId("rekeying".into());
    let empty = store.state_bytes().await.expect("bytes");
    for day in 0..20 {
        let batch: Vec<String> = (0..500)
            .map(|i| format!("https://news.example.org/{day}/{i}?session={:064}", i))
            .collect();
        let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
        poll(&store, &feed, day, &batch, &batch).await;
    }
    poll(&store, &feed, 20, &[], &[]).await;
    let full = store.state_bytes().await.expect("bytes");
    assert!(
        full > empty + 1_000_000,
        "10,000 long keys take room: {empty} → {full}"
    );
    let pruned = prune(&store, 200, &["rekeying"]).await;
    assert_eq!(pruned.seen_items, 10_000);
    let after = store.state_bytes().await.expect("bytes");
    assert!(
        after < empty + (full - empty) / 10,
        "the freed pages went back: {full} → {after} (empty {empty})"
    );
    assert_eq!(pruned.bytes_freed, full - after);
}

#[tokio::test]
async fn what_rules_caught_is_kept_for_the_charts_thirty_days_and_then_pruned() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        for (day, titles) in [(1, &["a", "b"][..]), (5, &["c"][..])] {
            let poll = PollRecord {
                caught: titles
                    .iter()
                    .map(|t| ("talks".into(), (*t).into()))
                    .collect(),
                ..record(&feed, day * DAY + 60)
            };
            store.record_poll(poll).await.expect("recorded");
        }
        let days = store.rule_days(at(10 * DAY)).await.expect("days");
        let counts: Vec<(i64, u64, &str)> = days
            .iter()
            .map(|d| (d.day.timestamp() / DAY, d.caught, d.last_title.as_str()))
            .collect();
        assert_eq!(counts, [(1, 2, "b"), (5, 1, "c")]);
        // A poll recorded late (another instance's, committed after a newer one)
        // counts, but does not take the last title back in time.
        let late = PollRecord {
            caught: vec![("talks".into(), "late".into())],
            ..record(&feed, 5 * DAY + 30)
        };
        store.record_poll(late).await.expect("recorded");
        let days = store.rule_days(at(10 * DAY)).await.expect("days");
        let day5 = days.last().expect("day 5");
        assert_eq!((day5.caught, day5.last_title.as_str()), (2, "c"));
        assert_eq!(
            store.rule_days(at(33 * DAY)).await.expect("days").len(),
            1,
            "day 1 is older than the 30 days shown"
        );
        prune(&store, 33, &["wire"]).await;
        let kept = store.rule_days(at(0)).await.expect("days");
        assert_eq!(kept.len(), 1, "day 1 is pruned, day 5 stays: {kept:?}");
    }
}
