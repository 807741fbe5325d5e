//! Delivery throughput: 10,000 queued alerts delivered by the dispatcher to a local
//! SMTP server (STARTTLS + AUTH, one pooled connection reused) and to a local webhook
//! receiver. Prints alerts per second.
//!
//!     cargo bench --bench delivery            # 10,000 alerts each
//!     cargo bench --bench delivery -- 2000    # another number

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use newshound::daemon::Pipeline;
use newshound::feed::Validators;
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
            };
            (channel.to_owned(), alert)
        })
        .collect()
}

async fn measure(label: &str, body: &str, n: usize) {
    let config = support::TestConfig::write("", body);
    let store = Arc::new(Store::open(&config.state_dir()).await.expect("store"));
    let feed = FeedId("bench".into());
    store
        .record_poll(PollRecord {
            dedupe_within: std::time::Duration::ZERO,
            feed: feed.clone(),
            new_keys: vec![],
            recent: vec![],
            alerts: alerts(&feed, "out", n),
            held: vec![],
            validators: Validators::default(),
            flooding: None,
            repaired: None,
            at: chrono::Utc::now(),
        })
        .await
        .expect("queued");
    let pipeline = Pipeline::with_store(config.load(), Arc::clone(&store)).expect("pipeline");
    let started = Instant::now();
    let report = pipeline
        .dispatch_due(chrono::Utc::now())
        .await
        .expect("dispatch");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label:<8} {n} alerts in {secs:.2} s: {:.0} alerts/s (sent {}, retrying {}, dead {})",
        n as f64 / secs,
        report.sent,
        report.retrying,
        report.dead
    );
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
    measure("smtp", &email, n).await;
    assert_eq!(smtp.drain().len(), n, "every message arrived");

    let hooks = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let webhook = format!(
        "[channels.out]\ntype = \"webhook\"\nurl = \"{}/hook\"\n",
        hooks.uri()
    );
    measure("webhook", &webhook, n).await;
}
