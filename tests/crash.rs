//! Crash safety of delivery: the real daemon, a real SMTP server, and `kill -9` at
//! random moments over many runs, new items arriving between runs. Every matching
//! item must arrive at least once; a duplicate can only come from a kill between
//! the SMTP server's "250" and the outbox row being marked sent — that is, a row the
//! killed daemon left `sending` — so each kill can cause at most as many duplicates
//! as deliveries in flight (8). Both are checked.
//!
//! 50 runs by default; `NEWSHOUND_CRASH_RUNS=200 cargo test --test crash -- --nocapture`
//! (or `benches/crash.sh`) for the longer run. The figures are printed.

mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use newshound::store::{OutboxState, Store};
use support::{SmtpServer, TestConfig};

const ITEMS_PER_RUN: usize = 4;

fn feed_with(items: usize) -> String {
    let items: String = (0..items)
        .map(|i| format!("<item><guid>story-{i}</guid><title>Lavrov statement {i}</title></item>"))
        .collect();
    format!("<rss version=\"2.0\"><channel><title>wire</title>{items}</channel></rss>")
}

/// Counts each message under its Message-ID.
fn count(messages: Vec<support::Received>, received: &mut HashMap<String, usize>) {
    for m in messages {
        *received
            .entry(m.header("Message-ID").expect("Message-ID"))
            .or_default() += 1;
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_alert() {
    support::init();
    let runs: usize = std::env::var("NEWSHOUND_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let smtp = SmtpServer::start();
    let config = TestConfig::write(
        "first_poll = \"alert\"\npoll_interval = \"100ms\"",
        &format!(
            "{}[[feeds]]\nname = \"wire\"\nurl = \"file:wire.xml\"\n\n\
             [channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n",
            smtp.config_section()
        ),
    );
    let feed = config.dir.path().join("wire.xml");
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_newshound"))
            .args(["run", "--config"])
            .arg(&config.path)
            .envs(support::test_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("daemon starts")
    };
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut received: HashMap<String, usize> = HashMap::new();
    // Message-IDs of rows a killed daemon left claimed: the only possible duplicates.
    let mut in_flight: HashSet<String> = HashSet::new();
    for run in 1..=runs {
        std::fs::write(&feed, feed_with(run * ITEMS_PER_RUN)).expect("write feed");
        let mut daemon = start();
        // The kill lands anywhere from start-up to well into polling and delivering.
        std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
        daemon.kill().expect("kill -9");
        daemon.wait().expect("reaped");
        count(smtp.drain(), &mut received);
        let claimed = support::block_on(async {
            match Store::open_existing(&config.state_dir())
                .await
                .expect("store")
            {
                Some(store) => store
                    .replayable(OutboxState::Sending, None)
                    .await
                    .expect("query"),
                None => Vec::new(),
            }
        });
        in_flight.extend(claimed.iter().map(|row| {
            newshound::notify::message::message_id(std::slice::from_ref(&row.alert), &row.channel)
        }));
    }
    let expected = runs * ITEMS_PER_RUN;
    // A last run without a kill delivers whatever is still queued.
    let mut daemon = start();
    while received.len() < expected {
        match smtp.try_next_message() {
            Some(message) => count(vec![message], &mut received),
            None => {
                let (counts, dead) = support::block_on(async {
                    let store = Store::open(&config.state_dir()).await.expect("store");
                    (
                        store.outbox_counts().await.expect("counts"),
                        store.dead_letters().await.expect("dead letters"),
                    )
                });
                panic!(
                    "{} of {expected} alerts arrived; outbox {counts:?}; dead letters {dead:?}",
                    received.len(),
                );
            }
        }
    }
    daemon.kill().expect("stop");
    daemon.wait().expect("reaped");
    count(smtp.drain(), &mut received);

    let delivered: usize = received.values().sum();
    let duplicates = delivered - received.len();
    eprintln!(
        "crash test: {runs} kill -9 runs, {expected} alerts expected, {} delivered at least once, \
         {duplicates} duplicates (of {} alerts left in flight by a kill), {} lost",
        received.len(),
        in_flight.len(),
        expected - received.len().min(expected)
    );
    assert_eq!(received.len(), expected, "every alert arrives");
    let unexplained: Vec<&String> = received
        .iter()
        .filter(|(id, n)| **n > 1 && !in_flight.contains(*id))
        .map(|(id, _)| id)
        .collect();
    assert!(
        unexplained.is_empty(),
        "duplicates of alerts that were not in flight at a kill: {unexplained:?}"
    );
    assert!(
        duplicates <= runs * 8,
        "at most one duplicate per delivery in flight"
    );
}
