//! Several instances on one PostgreSQL database (`[store] url`): what one has seen,
//! the others have seen; an item is queued and delivered once whichever instances
//! poll it. Each test makes a database of its own and skips (saying so) when no
//! PostgreSQL answers; `.ci/run` requires one.

mod support;

use std::path::Path;
use std::sync::Arc;

use newshound::daemon::{self, Pipeline};
use newshound::store::testing::TestDatabase;
use support::TestConfig;

/// An RSS feed with one item per title.
fn rss(titles: &[&str]) -> String {
    let items: String = titles
        .iter()
        .enumerate()
        .map(|(i, title)| format!("<item><guid>item-{i}</guid><title>{title}</title></item>"))
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>"
    )
}

/// An instance: its own folder and state directory, the shared database, the feed
/// file `news.xml` in its folder, and a Maildir channel at `maildir`.
fn instance(database: &TestDatabase, maildir: &Path, feed: &str) -> TestConfig {
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[store]\nurl = \"{}\"\n\n\
             [[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"{}\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            database.url,
            maildir.display()
        ),
    );
    std::fs::write(config.dir.path().join("news.xml"), feed).expect("write feed");
    config
}

#[tokio::test]
async fn what_one_instance_saw_the_others_do_not_alert_again() {
    support::init();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let maildir = tempfile::tempdir().expect("temp dir");
    let feed = rss(&["Lavrov in Geneva", "Weather"]);
    let (a, b) = (
        instance(&database, maildir.path(), &feed),
        instance(&database, maildir.path(), &feed),
    );
    let first = Arc::new(Pipeline::new(a.load()).await.expect("instance a"));
    let report = daemon::once(Arc::clone(&first)).await.expect("a polls");
    assert_eq!(
        (report.new_items, report.alerts, report.delivery.sent),
        (2, 1, 1)
    );

    let second = Arc::new(Pipeline::new(b.load()).await.expect("instance b"));
    let report = daemon::once(Arc::clone(&second)).await.expect("b polls");
    assert_eq!(
        (report.new_items, report.alerts),
        (0, 0),
        "b knows what a saw"
    );

    std::fs::write(
        b.dir.path().join("news.xml"),
        rss(&["Lavrov in Geneva", "Weather", "Lavrov again"]),
    )
    .expect("update feed");
    let report = daemon::once(Arc::clone(&second)).await.expect("b polls");
    assert_eq!(
        (report.new_items, report.alerts, report.delivery.sent),
        (1, 1, 1)
    );
    assert_eq!(support::maildir_messages(maildir.path()).len(), 2);
    let counts = second.store().outbox_counts().await.expect("counts");
    assert_eq!((counts.sent, counts.pending), (2, 0));
}

/// Two instances polling the same new items at the same moment: each item is queued
/// once (seen items and the outbox are unique per item) and sent once (a claimed row
/// is skipped by the other instance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_polling_together_send_each_item_once() {
    support::init();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let maildir = tempfile::tempdir().expect("temp dir");
    let titles: Vec<String> = (0..50).map(|i| format!("Lavrov, part {i}")).collect();
    let feed = rss(&titles.iter().map(String::as_str).collect::<Vec<_>>());
    let configs = [
        instance(&database, maildir.path(), &feed),
        instance(&database, maildir.path(), &feed),
        instance(&database, maildir.path(), &feed),
    ];
    let mut pipelines = Vec::new();
    for config in &configs {
        pipelines.push(Arc::new(
            Pipeline::new(config.load()).await.expect("instance"),
        ));
    }
    let runs: Vec<_> = pipelines
        .iter()
        .map(|p| tokio::spawn(daemon::once(Arc::clone(p))))
        .collect();
    let mut sent = 0;
    for run in runs {
        sent += run.await.expect("joined").expect("once").delivery.sent;
    }
    assert_eq!(sent, 50, "each alert sent by one instance");
    assert_eq!(support::maildir_messages(maildir.path()).len(), 50);
    let counts = pipelines[0].store().outbox_counts().await.expect("counts");
    assert_eq!((counts.sent, counts.pending, counts.sending), (50, 0, 0));
}
