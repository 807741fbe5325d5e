//! Three real `newshound run` processes on one PostgreSQL database, 200 feeds served
//! over loopback HTTP, alerts by SMTP to a local server (STARTTLS + AUTH). Every
//! matching item is alerted once; one instance is killed with `kill -9` while alerts go
//! out, and the others deliver what it left (a duplicate only from a row it left
//! `sending`); no feed is fetched twice within its interval; a reload of one instance
//! changes that one only. Skips (saying so) without PostgreSQL; `.ci/run` requires it.
//!
//! The interval is the web minimum (30 s), and a dead instance's claims last 60 s, so
//! the test takes about a minute and a half.

mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use newshound::store::Store;
use newshound::store::testing::TestDatabase;
use support::{SmtpServer, TestConfig};

const FEEDS: usize = 200;
/// Each feed's interval, and the least time between two fetches of it (its jitter
/// is ±10%).
const INTERVAL: Duration = Duration::from_secs(30);
const LEAST_GAP: Duration = Duration::from_secs(27);
/// The whole test gives up after this long.
const DEADLINE: Duration = Duration::from_secs(240);

/// When each feed was fetched.
type Fetches = Arc<Mutex<HashMap<usize, Vec<Instant>>>>;

/// Serves `/feed/N`: one item that matches, and records when it was fetched.
async fn serve_feeds() -> (String, Fetches) {
    let fetches: Fetches = Arc::default();
    let recorded = Arc::clone(&fetches);
    let app = axum::Router::new().route(
        "/feed/{n}",
        axum::routing::get(move |axum::extract::Path(n): axum::extract::Path<usize>| {
            let recorded = Arc::clone(&recorded);
            async move {
                recorded
                    .lock()
                    .expect("fetches")
                    .entry(n)
                    .or_default()
                    .push(Instant::now());
                (
                    [("content-type", "application/rss+xml")],
                    format!(
                        "<rss version=\"2.0\"><channel><title>wire {n}</title><item>\
                         <guid>story-{n}</guid><title>Lavrov statement {n}</title></item>\
                         </channel></rss>"
                    ),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), fetches)
}

fn config_text(database: &TestDatabase, smtp: &SmtpServer, server: &str, extra: &str) -> String {
    let feeds: String = (0..FEEDS)
        .map(|n| format!("[[feeds]]\nname = \"wire-{n}\"\nurl = \"{server}/feed/{n}\"\ninterval = \"30s\"\n\n"))
        .collect();
    format!(
        "[store]\nurl = \"{}\"\n\n{}{feeds}\
         [channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n{extra}",
        database.url,
        smtp.config_section()
    )
}

fn start(config: &TestConfig) -> Child {
    Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["run", "--config"])
        .arg(&config.path)
        .envs(support::test_env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("instance starts")
}

/// Message-IDs received so far, each with how many times.
fn receive(smtp: &SmtpServer, received: &mut HashMap<String, usize>) {
    if let Some(m) = smtp.try_next_message() {
        *received
            .entry(m.header("Message-ID").expect("Message-ID"))
            .or_default() += 1;
    }
    received_all(smtp, received);
}

/// Whatever has arrived, without waiting.
fn received_all(smtp: &SmtpServer, received: &mut HashMap<String, usize>) {
    for m in smtp.drain() {
        *received
            .entry(m.header("Message-ID").expect("Message-ID"))
            .or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_alert_once_survive_a_kill_and_reload_alone() {
    support::init();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let smtp = SmtpServer::start();
    let (server, fetches) = serve_feeds().await;
    let configs: Vec<TestConfig> = (0..3)
        .map(|i| {
            TestConfig::write(
                &format!("first_poll = \"alert\"\ninstance = \"i{i}\""),
                &config_text(&database, &smtp, &server, ""),
            )
        })
        .collect();
    let started = Instant::now();
    let mut instances: Vec<Child> = configs.iter().map(start).collect();
    let observer = Store::connect(&database.url, None, "observer")
        .await
        .expect("observer");

    // Alerts arrive; once a third are in, instance 0 is killed in the middle of it.
    let mut received: HashMap<String, usize> = HashMap::new();
    let mut left_sending = None;
    while received.len() < FEEDS {
        assert!(
            started.elapsed() < DEADLINE,
            "only {} of {FEEDS} alerts arrived",
            received.len()
        );
        receive(&smtp, &mut received);
        if left_sending.is_none() && received.len() >= FEEDS / 3 {
            instances[0].kill().expect("kill -9");
            instances[0].wait().expect("reaped");
            let now = chrono::Utc::now();
            let held = observer.instances(now).await.expect("instances");
            let killed = held.iter().find(|i| i.name == "i0");
            left_sending = Some(killed.map_or(0, |i| i.delivering));
        }
    }
    let left_sending = left_sending.expect("the kill happened");

    // A reload of one instance changes only that one: the others keep their config.
    let before: HashMap<String, String> = observer
        .instances(chrono::Utc::now())
        .await
        .expect("instances")
        .into_iter()
        .map(|i| (i.name, i.config_hash))
        .collect();
    let changed = config_text(
        &database,
        &smtp,
        &server,
        "\n[[rules]]\nname = \"summit\"\nkeywords = [\"summit\"]\nchannels = [\"me\"]\n",
    );
    let text = std::fs::read_to_string(&configs[2].path).expect("read");
    let daemon_part = &text[..text.find("[store]").expect("store section")];
    std::fs::write(&configs[2].path, format!("{daemon_part}{changed}")).expect("write");
    let signalled = Command::new("kill")
        .args(["-HUP", &instances[2].id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(signalled.success());
    let after = loop {
        assert!(started.elapsed() < DEADLINE, "instance i2 did not reload");
        let now: HashMap<String, String> = observer
            .instances(chrono::Utc::now())
            .await
            .expect("instances")
            .into_iter()
            .map(|i| (i.name, i.config_hash))
            .collect();
        if now.get("i2") != before.get("i2") {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after.get("i1"), before.get("i1"), "i1 kept its config");
    let status = Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["status", "--config"])
        .arg(&configs[1].path)
        .envs(support::test_env())
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("i1: heartbeat"), "{status}");
    assert!(status.contains("run different configs"), "{status}");

    // Let the feeds come round again: none is fetched twice within its interval.
    let twice = |f: &HashMap<usize, Vec<Instant>>| f.values().filter(|t| t.len() >= 2).count();
    while twice(&fetches.lock().expect("fetches")) < FEEDS / 2 {
        assert!(
            started.elapsed() < DEADLINE,
            "the feeds did not come round again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What the killed instance left `sending` goes out once its lease ran out.
    loop {
        assert!(started.elapsed() < DEADLINE, "the queue did not empty");
        let counts = observer.outbox_counts().await.expect("counts");
        if counts.pending + counts.sending == 0 {
            assert_eq!(counts.sent, FEEDS as u64);
            break;
        }
        receive(&smtp, &mut received);
    }
    received_all(&smtp, &mut received);
    for instance in &mut instances[1..] {
        instance.kill().expect("stop");
        instance.wait().expect("reaped");
    }
    let duplicates: usize = received.values().map(|n| n - 1).sum();
    println!(
        "{FEEDS} alerts from 3 instances, i0 killed with {left_sending} alerts in flight: {duplicates} duplicates"
    );
    assert!(
        duplicates as u64 <= left_sending,
        "{duplicates} duplicates, but the killed instance left only {left_sending} rows sending"
    );
    let fetches = fetches.lock().expect("fetches");
    assert_eq!(fetches.len(), FEEDS, "every feed fetched");
    let mut closest = INTERVAL;
    for times in fetches.values() {
        for pair in times.windows(2) {
            closest = closest.min(pair[1] - pair[0]);
        }
    }
    println!(
        "{} fetches of {FEEDS} feeds; the closest two of one feed {closest:?} apart",
        fetches.values().map(Vec::len).sum::<usize>()
    );
    assert!(
        closest >= LEAST_GAP,
        "a feed fetched twice {closest:?} apart"
    );
    let distinct: HashSet<&String> = received.keys().collect();
    assert_eq!(distinct.len(), FEEDS);
}
