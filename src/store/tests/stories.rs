//! Story dedupe: the same story from several feeds is one alert.

use super::*;

/// An alert from a rule match about a story with this title and link.
pub(super) fn story(feed: &str, key: &str, title: &str, link: Option<&str>) -> Alert {
    Alert {
        title: title.into(),
        link: link.map(Into::into),
        why: vec![crate::model::RuleFields {
            meaning: None,
            rule: "talks".into(),
            fields: vec![crate::model::Field::Title],
        }],
        ..alert(&FeedId(feed.into()), key)
    }
}

/// Records a poll of `alert`'s feed that queues it to `channel`, merging stories
/// within an hour; the ids of the rows it queued.
pub(super) async fn poll_with(store: &Store, channel: &str, alert: Alert, when: i64) -> Vec<i64> {
    poll_deduping(store, channel, alert, when, None).await
}

/// As [`poll_with`], merging rewrites at `rewrite_threshold` too when it is set.
async fn poll_deduping(
    store: &Store,
    channel: &str,
    alert: Alert,
    when: i64,
    rewrite_threshold: Option<f32>,
) -> Vec<i64> {
    let feed = alert.feed.clone();
    let poll = PollRecord {
        alerts: vec![(channel.to_owned(), alert)],
        dedupe: Dedupe {
            window: std::time::Duration::from_secs(3600),
            copy_threshold: 0.5,
            rewrite_threshold,
        },
        ..record(&feed, when)
    };
    store.record_poll(poll).await.expect("recorded")
}

/// The same story in other words merges only when rewrites are merged, and then only
/// when the evidence agrees: another price is another story.
#[tokio::test]
async fn a_rewrite_merges_only_when_rewrites_are_merged_and_its_numbers_agree() {
    let told = |feed: &str, title: &str, text: &str| Alert {
        gist: crate::model::Gist::new(&[0.6, 0.8, 0.1], &[title, text], None),
        ..story(
            feed,
            title,
            title,
            Some(&format!("https://{feed}.example/{title}")),
        )
    };
    let first = || {
        told(
            "wire",
            "Haldane agrees deal for Corvel",
            "In Detroit Haldane Motors agreed to buy Corvel for $4.2 billion.",
        )
    };
    let rewrite = || {
        told(
            "herald",
            "What the Corvel deal means",
            "The $4.2 billion purchase makes Haldane the owner of Corvel in Detroit.",
        )
    };
    let rejected = told(
        "ledger",
        "Corvel says no to Haldane",
        "In Detroit Corvel rejected a $3.6 billion approach from Haldane Motors.",
    );
    for store in each_engine().await {
        assert_eq!(
            poll_deduping(&store, "off", first(), 100, None).await.len(),
            1
        );
        assert_eq!(
            poll_deduping(&store, "off", rewrite(), 200, None)
                .await
                .len(),
            1,
            "rewrites are not merged"
        );
        assert_eq!(
            poll_deduping(&store, "on", first(), 100, Some(0.9))
                .await
                .len(),
            1
        );
        assert!(
            poll_deduping(&store, "on", rewrite(), 200, Some(0.9))
                .await
                .is_empty(),
            "merged into the first alert"
        );
        assert_eq!(
            poll_deduping(&store, "on", rejected.clone(), 300, Some(0.9))
                .await
                .len(),
            1,
            "another price, another story"
        );
        let counts = store.outbox_counts().await.expect("counts");
        assert_eq!((counts.pending, counts.merged), (4, 1));
    }
}

#[tokio::test]
async fn the_same_story_from_another_feed_is_merged_into_the_first_alert() {
    for store in each_engine().await {
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
        assert_eq!(poll_with(&store, "me", first, 100).await.len(), 1);
        assert!(poll_with(&store, "me", again, 200).await.is_empty());
        // Too short a title to say it is the same story: a separate alert.
        assert_eq!(poll_with(&store, "me", same_title, 300).await.len(), 1);

        let counts = store.outbox_counts().await.expect("counts");
        assert_eq!((counts.pending, counts.merged), (2, 1));
        let due = claim_at(&store, 300).await;
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
}

#[tokio::test]
async fn a_long_enough_title_makes_one_story_even_after_the_first_was_sent() {
    for store in each_engine().await {
        let title = "Lavrov and Blinken meet in Geneva";
        let first = story("wire", "w1", title, Some("https://wire.example.org/1"));
        let id = poll_with(&store, "me", first, 100).await[0];
        claim_at(&store, 100).await;
        store.mark_sent(&[id], at(101)).await.expect("sent");

        let copy = story("agency", "a1", "LAVROV and Blinken meet in Geneva.", None);
        assert!(poll_with(&store, "me", copy.clone(), 200).await.is_empty());
        // Another channel has not had it: it gets its own alert.
        assert_eq!(poll_with(&store, "team", copy, 200).await.len(), 1);
        // After the window, the story is news again.
        let later = story("later", "l1", title, None);
        assert_eq!(poll_with(&store, "me", later, 100 + 3601).await.len(), 1);
        let counts = store.outbox_counts().await.expect("counts");
        assert_eq!((counts.sent, counts.merged, counts.pending), (1, 1, 2));
    }
}

#[tokio::test]
async fn notices_are_never_merged() {
    for store in each_engine().await {
        let feed = FeedId("wire".into());
        let notice = |key: &str| Alert {
            link: Some("https://wire.example.org/feed".into()),
            ..alert(&feed, key)
        };
        assert_eq!(
            poll_with(&store, "me", notice("broken"), 100).await.len(),
            1
        );
        assert_eq!(poll_with(&store, "me", notice("fixed"), 200).await.len(), 1);
    }
}

/// Only the first alert of a story keeps a sketch and bands: a copy merged into it is
/// never compared with again, so it stores neither.
#[tokio::test]
async fn a_merged_copy_stores_no_sketch_of_its_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store opens");
    let text = "Talks between the two governments over the disputed dam resumed in Geneva \
                on Monday with an offer of two billion cubic metres of water a year";
    let with_text = |feed: &str, key: &str, title: &str| Alert {
        sketch: crate::model::Sketch::of(&[title, text]),
        gist: None,
        ..story(
            feed,
            key,
            title,
            Some(&format!("https://{feed}.example/{key}")),
        )
    };
    let first = with_text("wire", "w1", "Dam talks resume in Geneva");
    assert_eq!(poll_with(&store, "me", first, 100).await.len(), 1);
    let copy = with_text("herald", "h1", "An offer of water at the Geneva table");
    assert!(
        poll_with(&store, "me", copy, 200).await.is_empty(),
        "merged"
    );
    let stored: Vec<(String, bool, i64)> = raw(dir.path())
        .prepare(
            "SELECT state, sketch IS NOT NULL,
                    (SELECT count(*) FROM story_band b WHERE b.alert = o.id)
             FROM outbox o ORDER BY id",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        stored,
        [("pending".into(), true, 16), ("merged".into(), false, 0)]
    );
}
