//! kill -9 around a group commit, on the embedded store and on PostgreSQL: three
//! feeds' polls share one transaction. Killed after the commit returned, every alert of the batch is in the
//! outbox and goes out; killed before, none of its items is recorded as seen, and the
//! next run finds and alerts them again. Nothing is lost either way.
//!
//! The process that records the batch and gets killed is this test binary itself,
//! started again in the role of `child` (see [`CHILD`]).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use newshound::model::{Alert, FeedId, ItemKey, Snippet};
use newshound::store::testing::TestDatabase;
use newshound::store::{PollRecord, Store};
use support::TestConfig;

/// Set in the child's environment: where it records the batch (a state directory or a
/// PostgreSQL URL), and whether its commit hangs until the kill.
const CHILD: &str = "NEWSHOUND_GROUP_COMMIT_CHILD";
const FEEDS: [&str; 3] = ["a", "b", "c"];

/// The feed file of `feed`: its old item, and its new one when `new`.
fn rss(feed: &str, new: bool) -> String {
    let item = |key: &str| {
        format!("<item><guid>{feed}-{key}</guid><title>NATO {feed} {key}</title></item>")
    };
    let new = if new { item("new") } else { String::new() };
    format!(
        "<rss version=\"2.0\"><channel><title>{feed}</title>{new}{}</channel></rss>",
        item("old")
    )
}

/// Three feeds that alert into a Maildir, their state in `database` (or embedded),
/// polled once so that their old items are known.
fn seeded(database: Option<&TestDatabase>) -> TestConfig {
    let mut body = database.map_or(String::new(), |d| {
        format!("[store]\nurl = \"{}\"\n\n", d.url)
    });
    body.push_str(
        "[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"NATO\"]\nchannels = [\"inbox\"]\n",
    );
    for feed in FEEDS {
        body.push_str(&format!(
            "\n[[feeds]]\nname = \"{feed}\"\nurl = \"file:{feed}.xml\"\n"
        ));
    }
    let config = TestConfig::write("", &body);
    write_feeds(&config, false);
    let out = once(&config);
    assert!(
        out.contains("polled 3 feeds (0 failed): 3 new items, 0 alerts"),
        "{out}"
    );
    config
}

fn write_feeds(config: &TestConfig, new: bool) {
    for feed in FEEDS {
        std::fs::write(
            config.dir.path().join(format!("{feed}.xml")),
            rss(feed, new),
        )
        .expect("feed file");
    }
}

fn once(config: &TestConfig) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["once", "--config", config.path.to_str().expect("utf-8")])
        .env_remove("RUST_LOG")
        .output()
        .expect("newshound runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the daemon would record for each feed's new item: seen, and one alert.
fn batch() -> Vec<PollRecord> {
    FEEDS
        .iter()
        .map(|feed| {
            let key = ItemKey(format!("{feed}-new"));
            let alert = Alert {
                feed: FeedId((*feed).into()),
                key: key.clone(),
                title: format!("NATO {feed} new"),
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
                priority: Default::default(),
                feedback: Vec::new(),
            };
            PollRecord {
                new_keys: vec![key],
                alerts: vec![("inbox".into(), alert)],
                ..PollRecord::new(FeedId((*feed).into()), chrono::Utc::now())
            }
        })
        .collect()
}

/// Where the state is: a state directory, or a PostgreSQL URL.
async fn open(place: &str) -> Store {
    if place.starts_with("postgres://") {
        Store::connect(place, None, "test").await.expect("database")
    } else {
        Store::open(Path::new(place)).await.expect("store")
    }
}

/// The config's state, as [`open`] takes it.
fn place(config: &TestConfig, database: Option<&TestDatabase>) -> String {
    database.map_or_else(
        || config.state_dir().display().to_string(),
        |d| d.url.clone(),
    )
}

/// The child: records the batch (three polls at once, so they share a commit), says
/// "committed" once the store said so, then waits to be killed.
fn child(place: &str, hang: bool) -> ! {
    support::block_on(async {
        let store = open(place).await;
        if hang {
            // The batch runs, then its commit waits far longer than the test does.
            store.delay_commits(Duration::from_secs(600));
        }
        println!("writing");
        let writes = batch().into_iter().map(|record| store.record_poll(record));
        for ids in futures_util::future::join_all(writes).await {
            assert_eq!(ids.expect("recorded").len(), 1);
        }
        println!("committed");
    });
    loop {
        std::thread::park();
    }
}

/// Starts the child of `test` on `place` and returns it once it printed `line`.
fn start_child(test: &str, place: &str, hang: bool, line: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture"])
        .env(CHILD, format!("{place}|{hang}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped");
    let said = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == line);
    assert!(said, "the child never said {line:?}");
    child
}

/// (unseen new keys, pending alerts) in the state after the kill.
fn state_after(place: &str) -> (usize, u64) {
    support::block_on(async {
        let store = open(place).await;
        let mut unseen = 0;
        for feed in FEEDS {
            let key = ItemKey(format!("{feed}-new"));
            unseen += store
                .unseen(&FeedId(feed.into()), vec![key])
                .await
                .expect("query")
                .len();
        }
        (unseen, store.outbox_counts().await.expect("counts").pending)
    })
}

/// In the role of the child when the environment says so (and then never returns).
fn be_the_child() {
    if let Ok(role) = std::env::var(CHILD) {
        let (place, hang) = role.rsplit_once('|').expect("place|hang");
        child(place, hang == "true");
    }
}

/// Both kills, on a fresh state each, made by `fresh` (a database, or none for the
/// embedded store).
fn kills_lose_no_alert(test: &str, fresh: impl Fn() -> Option<TestDatabase>) {
    // Killed after the commit returned: the whole batch is there, and goes out.
    let database = fresh();
    let config = seeded(database.as_ref());
    let state = place(&config, database.as_ref());
    let mut killed = start_child(test, &state, false, "committed");
    killed.kill().expect("kill -9");
    killed.wait().expect("reaped");
    assert_eq!(state_after(&state), (0, 3), "all seen, all queued");
    write_feeds(&config, true);
    let out = once(&config);
    assert!(
        out.contains("0 new items, 0 alerts queued; delivered 3"),
        "{out}"
    );

    // Killed while the batch waits for its commit: none of it is recorded, and the
    // next run finds the items new and alerts them.
    let database = fresh();
    let config = seeded(database.as_ref());
    let state = place(&config, database.as_ref());
    let mut killed = start_child(test, &state, true, "writing");
    // However far the child got, its commit is at least ten minutes away.
    std::thread::sleep(Duration::from_millis(300));
    killed.kill().expect("kill -9");
    killed.wait().expect("reaped");
    assert_eq!(state_after(&state), (3, 0), "none seen, none queued");
    write_feeds(&config, true);
    let out = once(&config);
    assert!(
        out.contains("3 new items, 3 alerts queued; delivered 3"),
        "{out}"
    );
    let maildir = config.dir.path().join("alerts");
    assert_eq!(support::maildir_messages(&maildir).len(), 3);
}

#[test]
fn kill_9_around_a_group_commit_loses_no_alert() {
    be_the_child();
    support::init();
    kills_lose_no_alert("kill_9_around_a_group_commit_loses_no_alert", || None);
}

#[test]
fn kill_9_around_a_postgres_group_commit_loses_no_alert() {
    be_the_child();
    support::init();
    if support::block_on(TestDatabase::create()).is_none() {
        return;
    }
    kills_lose_no_alert(
        "kill_9_around_a_postgres_group_commit_loses_no_alert",
        || support::block_on(TestDatabase::create()),
    );
}
