//! Delivery throughput: queued alerts delivered by the dispatcher to a local SMTP
//! server (STARTTLS + AUTH, sessions reused) and to a local webhook receiver, each
//! beside a plain client pushing the same number of messages of the same size into
//! the same server with as many connections (the ceiling): Python's smtplib for
//! SMTP (skipped without python3), reqwest for the webhook. Prints messages per
//! second and the ratio.
//!
//!     cargo bench --bench delivery            # 10,000 alerts each
//!     cargo bench --bench delivery -- 2000    # another number

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use newshound::daemon::Pipeline;
use newshound::model::{Alert, FeedId, ItemKey, Snippet};
use newshound::store::{PollRecord, Store};

fn alerts(feed: &FeedId, channel: &str, n: usize) -> Vec<(String, Alert)> {
    (0..n)
        .map(|i| {
            let alert = Alert {
                feed: feed.clone(),
                key: ItemKey(format!("item-{i}")),
                title: format!("Lavrov and Blinken meet in Geneva, part {i}"),
                link: Some(format!("https://news.example.org/{i}")),
                published: Some(chrono::Utc::now()),
                rules: vec!["talks".into()],
                terms: vec!["Lavrov".into(), "Blinken".into()],
                snippet: Snippet {
                    text:
                        "Foreign Minister Sergei Lavrov and Secretary of State Antony Blinken met."
                            .into(),
                    highlights: vec![(24, 30), (61, 68)],
                },
                why: Vec::new(),
                summary_html: None,
                also_in: Vec::new(),
                sketch: None,
                gist: None,
                priority: Default::default(),
                feedback: Vec::new(),
            };
            (channel.to_owned(), alert)
        })
        .collect()
}

/// Queues `n` alerts for channel `out` of the config `body` and times one dispatch
/// pass; returns alerts per second.
async fn measure(label: &str, body: &str, n: usize) -> f64 {
    let config = support::TestConfig::write("", body);
    let store = Arc::new(Store::open(&config.state_dir()).await.expect("store"));
    let feed = FeedId("bench".into());
    store
        .record_poll(PollRecord {
            alerts: alerts(&feed, "out", n),
            ..PollRecord::new(feed.clone(), chrono::Utc::now())
        })
        .await
        .expect("queued");
    let pipeline = Pipeline::with_store(config.load(), Arc::clone(&store)).expect("pipeline");
    let started = Instant::now();
    let report = pipeline
        .dispatch_due(chrono::Utc::now())
        .await
        .expect("dispatch");
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "{label:<22} {rate:>7.0} messages/s (sent {}, retrying {}, dead {})",
        report.sent, report.retrying, report.dead
    );
    rate
}

/// smtplib on `connections` threads, each with its own STARTTLS + AUTH session, sending
/// `n` messages of `size` bytes in all; `None` without python3.
fn plain_smtp(
    smtp: &support::SmtpServer,
    n: usize,
    size: usize,
    connections: usize,
) -> Option<f64> {
    const CLIENT: &str = r#"
import smtplib, ssl, sys, threading, time
port, ca, user, password, n, size, k = sys.argv[1:8]
n, size, k = int(n), int(size), int(k)
body = "Subject: plain\r\n\r\n" + ("x" * 76 + "\r\n") * (size // 78)
def run(count):
    s = smtplib.SMTP("localhost", int(port))
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.login(user, password)
    for _ in range(count):
        s.sendmail(user, ["me@example.org"], body)
    s.quit()
start = time.monotonic()
threads = [threading.Thread(target=run, args=(n // k,)) for _ in range(k)]
for t in threads: t.start()
for t in threads: t.join()
print(n // k * k / (time.monotonic() - start))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .args([
            smtp.port.to_string(),
            smtp.ca_file.display().to_string(),
            support::SMTP_USER.to_string(),
            support::SMTP_PASSWORD.to_string(),
            n.to_string(),
            size.to_string(),
            connections.to_string(),
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// reqwest POSTing `n` bodies of `size` bytes to `url`, `connections` at a time.
async fn plain_webhook(url: &str, n: usize, size: usize, connections: usize) -> f64 {
    use futures_util::StreamExt;
    let client = reqwest::Client::new();
    let body = format!("{{\"text\":\"{}\"}}", "x".repeat(size));
    let started = Instant::now();
    futures_util::stream::iter(0..n)
        .map(|_| client.post(url).body(body.clone()).send())
        .buffer_unordered(connections)
        .for_each(|r| async move {
            r.expect("posted").error_for_status().expect("accepted");
        })
        .await;
    n as f64 / started.elapsed().as_secs_f64()
}

fn ceiling(label: &str, ours: f64, plain: Option<f64>) {
    match plain {
        Some(plain) => println!(
            "{label:<22} {plain:>7.0} messages/s; newshound is {:.0}% of it",
            100.0 * ours / plain
        ),
        None => println!("{label:<22} skipped (no python3)"),
    }
}

#[tokio::main]
async fn main() {
    support::init();
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);

    let smtp = support::SmtpServer::start();
    let email = format!(
        "{}[channels.out]\ntype = \"email\"\nto = [\"me@example.org\"]\n",
        smtp.config_section()
    );
    let ours = measure("smtp: newshound", &email, n).await;
    let received = smtp.drain();
    assert_eq!(received.len(), n, "every message arrived");
    let size = received[0].data.len();
    let plain = plain_smtp(&smtp, n, size, 8);
    assert!(plain.is_none() || smtp.drain().len() >= n / 8 * 8);
    ceiling(&format!("smtp: smtplib, {size} B"), ours, plain);

    let hooks = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let webhook = format!(
        "[channels.out]\ntype = \"webhook\"\nurl = \"{}/hook\"\nmax_in_flight = 8\n",
        hooks.uri()
    );
    let ours = measure("webhook: newshound", &webhook, n).await;
    let plain = plain_webhook(&format!("{}/hook", hooks.uri()), n, 1024, 8).await;
    ceiling("webhook: reqwest", ours, Some(plain));
}
