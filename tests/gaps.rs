//! A busy feed that publishes more items between two polls than it keeps: the poll
//! that finds every item new and newer than anything before counts a gap, alerts the
//! items (they are no flood of re-keyed old ones), and `status` says so.

mod support;

use std::process::Command;

use chrono::{Duration, TimeZone, Utc};
use newshound::daemon::Pipeline;
use support::{TestConfig, serve_feed};
use wiremock::MockServer;

/// An RSS document with items `first..last`, item `n` published `n` hours after a
/// fixed morning, each matching the rule.
fn rss(first: u32, last: u32) -> Vec<u8> {
    rss_keyed(first, last, "")
}

/// As [`rss`], with `prefix` before each guid (a feed that re-keys its items).
fn rss_keyed(first: u32, last: u32, prefix: &str) -> Vec<u8> {
    let morning = Utc
        .with_ymd_and_hms(2026, 11, 2, 6, 0, 0)
        .single()
        .expect("a date");
    let items: String = (first..last)
        .rev()
        .map(|n| {
            let published = (morning + Duration::hours(i64::from(n))).to_rfc2822();
            format!(
                "<item><guid>{prefix}item-{n}</guid><title>Geneva talks, hour {n}</title>\
                 <pubDate>{published}</pubDate></item>"
            )
        })
        .collect();
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>")
        .into_bytes()
}

/// The gaps the store counted for `feed`.
async fn gaps(p: &Pipeline, feed: &newshound::config::Feed) -> u64 {
    let state = p.store().feed_state(&feed.id).await.expect("state");
    state.expect("a known feed").gaps
}

async fn serve(server: &MockServer, body: Vec<u8>, etag: &str) {
    server.reset().await;
    serve_feed(server, "/rss", body, etag, "application/rss+xml").await;
}

#[tokio::test]
async fn a_feed_that_rolls_over_between_polls_counts_a_gap_and_its_items_are_alerted() {
    support::init();
    let server = MockServer::start().await;
    serve(&server, rss(0, 12), "\"1\"").await;
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"busy\"\nurl = \"{}/rss\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Geneva\"]\nchannels = [\"inbox\"]\n",
            server.uri()
        ),
    );
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    let feed = p.config().feeds[0].clone();
    let first = p.poll(&feed).await.expect("first poll");
    assert_eq!(
        (first.alerts, first.gap),
        (12, false),
        "a first poll has no before"
    );

    // Twelve more items came than the feed keeps: none of hours 12..20 is left.
    serve(&server, rss(20, 32), "\"2\"").await;
    let rolled = p.poll(&feed).await.expect("second poll");
    assert!(rolled.gap, "{rolled:?}");
    assert_eq!(
        (rolled.alerts, rolled.held),
        (12, 0),
        "all new, but newer than before: no flood"
    );
    assert_eq!(gaps(&p, &feed).await, 1);

    // The next poll overlaps the last one: no gap.
    serve(&server, rss(26, 38), "\"3\"").await;
    let overlapping = p.poll(&feed).await.expect("third poll");
    assert_eq!((overlapping.new_items, overlapping.gap), (6, false));

    // Old items under new keys are a flood, not a gap: they are no newer.
    serve(&server, rss_keyed(26, 38, "v2-"), "\"4\"").await;
    let rekeyed = p.poll(&feed).await.expect("fourth poll");
    assert_eq!(
        (rekeyed.gap, rekeyed.held, rekeyed.alerts),
        (false, 12, 1),
        "held, with one notice: {rekeyed:?}"
    );
    assert_eq!(gaps(&p, &feed).await, 1);

    let out = Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["status", "--config"])
        .arg(&config.path)
        .env_remove("NEWSHOUND_CONFIG")
        .envs(support::test_env())
        .output()
        .expect("status runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "1 polls found it had published more than it keeps since the poll before \
             (items probably missed); polled more often since"
        ),
        "{text}"
    );
}
