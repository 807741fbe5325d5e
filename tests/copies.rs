//! Copies of a story (the same wire text under each outlet's headline and link),
//! through the pipeline: feeds on loopback HTTP servers, alerts into a Maildir, state
//! in SQLite (and PostgreSQL for two instances). Texts from the labelled set in
//! `tests/fixtures/stories/dev.json`.

mod support;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use newshound::daemon::{Pipeline, Scope, Snapshot};
use newshound::store::OutboxCounts;
use support::{TestConfig, maildir_messages, serve_feed, story_rss};
use wiremock::MockServer;

/// A loopback server for one outlet, serving the labelled items `ids`.
async fn outlet(ids: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    serve_outlet(&server, ids, "\"1\"").await;
    server
}

async fn serve_outlet(server: &MockServer, ids: &[&str], etag: &str) {
    server.reset().await;
    serve_feed(server, "/rss", story_rss(ids), etag, "application/rss+xml").await;
}

/// A config with one feed per outlet, `rule_keyword` alerting into the Maildir `inbox`.
fn config(outlets: &[(&str, &MockServer)], extra: &str) -> TestConfig {
    let feeds: String = outlets
        .iter()
        .map(|(name, server)| {
            format!(
                "[[feeds]]\nname = \"{name}\"\nurl = \"{}/rss\"\n\n",
                server.uri()
            )
        })
        .collect();
    TestConfig::write(
        &format!("first_poll = \"alert\"\n{extra}"),
        &format!(
            "{feeds}[channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
             [[rules]]\nname = \"dam\"\nkeywords = [\"Kalna\", \"Haldane\", \"Saland\"]\nchannels = [\"inbox\"]\n"
        ),
    )
}

/// Polls the config's feeds one by one, in order, then delivers.
async fn poll_in_order(p: &Pipeline) {
    for feed in &p.config().feeds {
        p.poll(feed).await.expect("polled");
    }
    p.dispatch_due(Utc::now()).await.expect("dispatched");
}

fn inbox(config: &TestConfig) -> Vec<String> {
    maildir_messages(&config.dir.path().join("inbox"))
}

fn merged(counts: OutboxCounts) -> u64 {
    counts.merged
}

#[tokio::test]
async fn copies_across_feeds_are_one_alert_also_reported_by_the_others_and_a_decoy_is_not() {
    support::init();
    let meridian = outlet(&["s01-orig"]).await;
    // The same wire copy under the Herald's headline, the next round of talks two
    // days later (the same people, other numbers), and the story in other words.
    let herald = outlet(&["s01-copy1", "s01-d", "s01-rw1"]).await;
    let ledger = outlet(&[]).await;
    let config = config(
        &[
            ("meridian", &meridian),
            ("herald", &herald),
            ("ledger", &ledger),
        ],
        "",
    );
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    poll_in_order(&p).await;

    let messages = inbox(&config);
    assert_eq!(messages.len(), 3, "the story, the decoy and the rewrite");
    let story: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains("Marovia and Ostria resume Drava dam talks in Geneva"))
        .collect();
    assert_eq!(story.len(), 1);
    assert!(
        story[0].contains("herald") && story[0].contains("northern-herald.example"),
        "the copy is listed with its outlet and link:\n{}",
        story[0]
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Drava dam talks stall in Geneva despite higher Ostrian offer")),
        "the decoy is its own alert"
    );
    assert_eq!(merged(p.store().outbox_counts().await.expect("counts")), 1);

    // Another outlet runs the copy after the alert went out: no second alert, one
    // more merged; so does a fourth after a restart.
    serve_outlet(&ledger, &["s01-copy2"], "\"2\"").await;
    poll_in_order(&p).await;
    assert_eq!(inbox(&config).len(), 3);
    assert_eq!(merged(p.store().outbox_counts().await.expect("counts")), 2);
    drop(p);
    serve_outlet(&ledger, &["s01-copy2", "s01-copy3"], "\"3\"").await;
    let p = Pipeline::new(config.load()).await.expect("pipeline again");
    poll_in_order(&p).await;
    assert_eq!(inbox(&config).len(), 3, "the window outlives a restart");
    assert_eq!(merged(p.store().outbox_counts().await.expect("counts")), 3);

    // `status` (and the status page) list the sent alert with every copy merged into
    // it, those merged after it went out too.
    let snapshot =
        Snapshot::read_details(p.config(), Some(p.store()), Scope::Configured, Utc::now())
            .await
            .expect("snapshot");
    let sent = snapshot
        .recent
        .iter()
        .find(|r| r.state == "sent" && r.alert.key.0 == "s01-orig")
        .expect("the story's alert");
    let also: Vec<&str> = sent
        .alert
        .also_in
        .iter()
        .map(|s| s.feed.0.as_str())
        .collect();
    assert_eq!(also, ["herald", "ledger", "ledger"]);
}

#[tokio::test]
async fn copies_merge_only_within_the_dedupe_window_and_not_when_it_is_off() {
    support::init();
    let meridian = outlet(&["s02-orig"]).await;
    let herald = outlet(&["s02-copy1"]).await;
    let config = config(
        &[("meridian", &meridian), ("herald", &herald)],
        "dedupe_window = \"0s\"",
    );
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    poll_in_order(&p).await;
    let counts = p.store().outbox_counts().await.expect("counts");
    assert_eq!(
        (counts.sent, counts.merged),
        (2, 0),
        "dedupe_window = 0s: no merging"
    );
}

/// The Haldane–Corvel deal as the wire ran it, the same story in a newsroom's own
/// words, and the bid Corvel rejected two weeks before (the same companies, another
/// price): with `merge_rewrites` off, three alerts; on (with `model`'s
/// `[semantic]` section), the rewrite is listed under the story and the earlier bid
/// stays its own alert.
async fn rewrites_merged(semantic: &str) {
    let meridian = outlet(&["s02-orig"]).await;
    let herald = outlet(&["s02-rw1", "s02-d"]).await;
    let outlets = [("meridian", &meridian), ("herald", &herald)];

    let off = config(&outlets, "");
    append(&off.path, semantic);
    let p = Pipeline::new(off.load()).await.expect("pipeline");
    poll_in_order(&p).await;
    assert_eq!(inbox(&off).len(), 3, "merge_rewrites is off by default");

    let on = config(&outlets, "merge_rewrites = true");
    append(&on.path, semantic);
    let p = Pipeline::new(on.load()).await.expect("pipeline");
    poll_in_order(&p).await;
    let messages = inbox(&on);
    assert_eq!(messages.len(), 2, "the story and the earlier bid");
    let story = messages
        .iter()
        .find(|m| m.contains("Haldane Motors agrees $4.2 billion deal to buy Corvel"))
        .expect("the story's alert");
    assert!(
        story.contains("Also reported by") && story.contains("what the Corvel deal means"),
        "the rewrite is listed under the story:\n{story}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Corvel Automotive rejects $3.6 billion Haldane approach")),
        "the earlier bid is its own alert"
    );
    assert_eq!(merged(p.store().outbox_counts().await.expect("counts")), 1);
}

#[tokio::test]
async fn rewrites_merge_only_with_merge_rewrites_on_using_the_builtin_model() {
    support::init();
    rewrites_merged("").await;
}

#[tokio::test]
async fn rewrites_merge_with_a_bert_model_configured() {
    support::init();
    let Some(dir) = newshound::semantic::testing::minilm_dir() else {
        return;
    };
    rewrites_merged(&format!(
        "[semantic]\nmodel = {:?}\n",
        dir.display().to_string()
    ))
    .await;
}

/// Two instances on one PostgreSQL: a copy found by one merges into the alert the
/// other queued.
#[tokio::test]
async fn a_copy_found_by_another_instance_merges_into_the_first_alert() {
    support::init();
    let Some(database) = newshound::store::testing::TestDatabase::create().await else {
        return;
    };
    let meridian = outlet(&["s03-orig"]).await;
    let herald = outlet(&["s03-copy1"]).await;
    let store = format!("[store]\nurl = \"{}\"\n", database.url);
    let one = config(&[("meridian", &meridian)], "instance = \"one\"");
    let two = config(&[("herald", &herald)], "instance = \"two\"");
    for c in [&one, &two] {
        append(&c.path, &store);
    }
    let a = Arc::new(Pipeline::new(one.load()).await.expect("one"));
    poll_in_order(&a).await;
    let b = Arc::new(Pipeline::new(two.load()).await.expect("two"));
    poll_in_order(&b).await;
    let counts = b.store().outbox_counts().await.expect("counts");
    assert_eq!((counts.sent, counts.merged), (1, 1));
    assert_eq!(inbox(&one).len(), 1);
    assert!(
        inbox(&two).is_empty(),
        "the copy was not sent by the other instance"
    );
}

fn append(path: &Path, text: &str) {
    let before = std::fs::read_to_string(path).expect("read config");
    std::fs::write(path, before + "\n" + text).expect("write config");
}
