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

/// A user moves an embedded state with sent, dead and pending alerts into PostgreSQL:
/// after the move nothing old is alerted again, and what was pending is delivered.
#[tokio::test]
async fn a_state_moved_to_postgres_alerts_nothing_old_and_keeps_its_queue() {
    support::init();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let boxes = tempfile::tempdir().expect("temp dir");
    let (inbox, later) = (boxes.path().join("inbox"), boxes.path().join("later"));
    let config = TestConfig::write(
        "first_poll = \"alert\"\ndelivery_attempts = 1",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"{}\"\n\n\
             [channels.later]\ntype = \"maildir\"\npath = \"{}\"\ndigest = \"1d\"\n\n\
             [channels.down]\ntype = \"webhook\"\nurl = \"http://{}/hook\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\", \"later\", \"down\"]\n",
            inbox.display(),
            later.display(),
            support::refused_address()
        ),
    );
    std::fs::write(
        config.dir.path().join("news.xml"),
        rss(&["Lavrov in Geneva", "Lavrov in Paris"]),
    )
    .expect("write feed");
    let embedded = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let report = daemon::once(Arc::clone(&embedded)).await.expect("once");
    assert_eq!((report.delivery.sent, report.delivery.dead), (2, 2));
    drop(embedded);

    let moved = std::process::Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["migrate-state", "--to", &database.url, "--config"])
        .arg(&config.path)
        .output()
        .expect("run migrate-state");
    let said = String::from_utf8_lossy(&moved.stdout);
    assert!(
        moved.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(
        said.starts_with(
            "moved 1 feeds, 2 seen items and 6 alerts (2 pending, 2 sent, 2 dead, 0 held)"
        ),
        "{said}"
    );
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["migrate-state", "--to", &database.url, "--config"])
        .arg(&config.path)
        .output()
        .expect("run migrate-state");
    let refused = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        refused.contains("already holds a newshound state"),
        "{refused}"
    );

    let text = std::fs::read_to_string(&config.path).expect("read config");
    std::fs::write(
        &config.path,
        format!("{text}\n[store]\nurl = \"{}\"\n", database.url),
    )
    .expect("write config");
    let shared = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let report = daemon::once(Arc::clone(&shared)).await.expect("once");
    assert_eq!(
        (report.new_items, report.alerts),
        (0, 0),
        "nothing old again"
    );
    let next_day = chrono::Utc::now() + chrono::Duration::days(2);
    let delivered = shared.dispatch_due(next_day).await.expect("dispatch");
    assert_eq!(delivered.sent, 2, "the digest of the two pending alerts");
    assert_eq!(support::maildir_messages(&later).len(), 1);
    assert_eq!(support::maildir_messages(&inbox).len(), 2);
}

/// `/healthz` tells a monitor the truth about the database: 503 with the reason once
/// it has been unreachable for a few seconds (the daemon's clock, moved by the test),
/// 200 again once it is back; meanwhile the status page is a banner, not a bare error.
#[tokio::test]
async fn healthz_fails_while_the_database_is_unreachable_and_recovers() {
    use newshound::daemon::{Clock, Lasting};
    use newshound::store::Store;
    support::init();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let maildir = tempfile::tempdir().expect("temp dir");
    let config = instance(&database, maildir.path(), &rss(&["Weather"])).load();
    let store = Store::connect(&database.url, None, "watched")
        .await
        .expect("connects");
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
    let clock = Clock::fixed(start);
    let lasting = Lasting::new(Arc::new(store), clock.clone());
    lasting.health.tick();
    let (addr, shutdown) = support::serve_endpoint(lasting, Arc::new(config)).await;
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("http://{addr}{path}")).send();
        async move {
            let answer = request.await.expect("answers");
            let status = answer.status().as_u16();
            (status, answer.text().await.expect("a body"))
        }
    };
    let later = |secs| clock.set(start + chrono::Duration::seconds(secs));

    assert_eq!(get("/healthz").await, (200, "ok\n".into()));
    database.set_reachable(false).await;
    assert_eq!(get("/healthz").await.0, 200, "a hiccup is not an outage");
    later(10);
    let (status, why) = get("/healthz").await;
    assert_eq!(status, 503, "{why}");
    assert!(
        why.starts_with("the state store has failed for 10 s: "),
        "{why}"
    );
    let (status, page) = get("/").await;
    assert_eq!(status, 503);
    assert!(page.contains("The state cannot be read: "), "{page}");

    database.set_reachable(true).await;
    later(20);
    assert_eq!(get("/healthz").await, (200, "ok\n".into()), "back");
    assert_eq!(get("/").await.0, 200);
    shutdown.cancel();
}
