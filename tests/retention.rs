//! Retention through the daemon's pipeline: what the pruner forgets never comes back
//! as a second alert when the config says how old an alert may be.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use newshound::daemon::{self, Clock, Pipeline};
use support::{TestConfig, maildir_messages};

/// An RSS document of `items`: guid, title, published.
fn rss(items: &[(&str, &str, DateTime<Utc>)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title, published)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><pubDate>{}</pubDate></item>",
                published.to_rfc2822()
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>"
    )
}

#[tokio::test]
async fn an_item_forgotten_after_leaving_its_feed_is_judged_by_max_age_when_it_comes_back() {
    support::init();
    let config = TestConfig::write(
        "first_poll = \"alert\"\nmax_age = \"30d\"",
        "[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
         [channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
    );
    let feed = config.dir.path().join("news.xml");
    let inbox = config.dir.path().join("inbox");
    let start = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
    let clock = Clock::fixed(start);
    let p = Arc::new(
        Pipeline::with_clock(config.load(), clock.clone())
            .await
            .expect("pipeline starts"),
    );
    let both = rss(&[
        ("a", "Lavrov in Geneva", start),
        ("b", "Lavrov in Ankara", start),
    ]);
    let poll_at = |day: i64, body: String| {
        let (p, clock, feed) = (Arc::clone(&p), clock.clone(), feed.clone());
        async move {
            clock.set(start + Duration::days(day));
            std::fs::write(&feed, body).expect("write feed");
            daemon::once(p).await.expect("once runs")
        }
    };

    assert_eq!(poll_at(0, both.clone()).await.delivery.sent, 2);
    // `a` leaves the feed on day 1; `b` stays all along.
    assert_eq!(
        poll_at(1, rss(&[("b", "Lavrov in Ankara", start)]))
            .await
            .new_items,
        0
    );
    clock.set(start + Duration::days(92));
    let pruned = p.prune().await.expect("pruned").expect("alone, it prunes");
    assert_eq!((pruned.seen_items, pruned.sent), (1, 2), "{pruned:?}");

    // `a` comes back: it is new again, but older than max_age, so it is not alerted;
    // `b`, in the feed all along, is remembered however old.
    let back = poll_at(93, both).await;
    assert_eq!((back.new_items, back.alerts), (1, 0));
    assert_eq!(maildir_messages(&inbox).len(), 2, "no alert came twice");
    // `once` prunes as it ends: on day 93 nothing more had expired.
    let last = p.store().last_prune().await.expect("note").expect("pruned");
    assert_eq!(last, (Default::default(), start + Duration::days(93)));
}
