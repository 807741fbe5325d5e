//! A simulated year: the daemon's pipeline on an injected clock polls N feeds (files)
//! once a simulated day for D days, delivers what matches to webhook receivers on
//! 127.0.0.1 (one accepts, one refuses: dead letters), and prunes as `once` does at
//! its end, with the default retention (items forgotten 90 days after they leave
//! their feed, sent alerts kept 30 days, dead and held ones 90). Each feed gains
//! `PER_DAY` items a day and serves its last `IN_FEED`; one feed in `REKEYING`
//! re-keys its items every day (20 new rows a poll, a flood that is held).
//!
//! Prints the state's size each month, whether it stays flat (±20% of its mean)
//! after the first `forget_after`, and whether any item was alerted twice.
//!
//!     cargo bench --bench year              # 1,000 feeds, 365 days
//!     cargo bench --bench year -- 200 120   # feeds, days

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use newshound::daemon::{self, Clock, Pipeline};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// New items a feed gains each day.
const PER_DAY: usize = 8;
/// Items a feed's document holds: an item stays in its feed for 2.5 days.
const IN_FEED: usize = 20;
/// One feed in this many re-keys its items every day.
const REKEYING: usize = 100;
/// One item in this many mentions the `talks` rule's keyword (sent).
const TALKS_EVERY: usize = 20;
/// One item in this many mentions the `refused` rule's keyword (a dead letter).
const REFUSED_EVERY: usize = 200;
/// `daemon.forget_after`'s default, in days: the state is flat after it.
const FORGET_AFTER_DAYS: usize = 90;
/// Samples after the first `forget_after` stay within this fraction of their mean.
const FLAT: f64 = 0.20;

/// A webhook receiver that counts the alerts it got per feed and item key.
#[derive(Default, Clone)]
struct Receiver {
    alerts: Arc<Mutex<HashMap<(String, String), u32>>>,
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return ResponseTemplate::new(400);
        };
        let alerts = match body.get("alerts") {
            Some(list) => list.as_array().cloned().unwrap_or_default(),
            None => vec![body],
        };
        let mut counts = self.alerts.lock().expect("counts");
        for alert in alerts {
            let field = |name: &str| alert[name].as_str().unwrap_or_default().to_owned();
            *counts.entry((field("feed"), field("key"))).or_default() += 1;
        }
        ResponseTemplate::new(200)
    }
}

/// Feed `feed`'s document on `day`: its last `IN_FEED` items.
fn document(feed: usize, day: usize, start: DateTime<Utc>) -> String {
    let newest = (day + 1) * PER_DAY;
    let rekeyed = feed.is_multiple_of(REKEYING);
    let items: String = (newest.saturating_sub(IN_FEED)..newest)
        .map(|n| {
            let guid = if rekeyed {
                format!("f{feed}-{n}-day{day}")
            } else {
                format!("f{feed}-{n}")
            };
            let topic = if (n + feed).is_multiple_of(TALKS_EVERY) {
                "Lavrov meets his counterpart"
            } else if (n + feed) % REFUSED_EVERY == 7 {
                "Ankara hosts a summit"
            } else {
                "Local council approves the budget"
            };
            let published = start + Duration::days((n / PER_DAY) as i64);
            format!(
                "<item><guid>{guid}</guid><title>{topic}: report {feed}-{n}</title>\
                 <link>https://f{feed}.example.test/{n}</link>\
                 <pubDate>{}</pubDate></item>",
                published.to_rfc2822()
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>f{feed}</title>{items}</channel></rss>"
    )
}

/// The state's size on one day.
#[derive(Debug, Clone, Copy)]
struct Sample {
    day: usize,
    seen: u64,
    sent: u64,
    dead: u64,
    held: u64,
    bytes: u64,
}

async fn sample(p: &Pipeline, day: usize) -> Sample {
    let store = p.store();
    let seen = store
        .feed_states()
        .await
        .expect("feeds")
        .iter()
        .map(|(_, _, n)| n)
        .sum();
    let counts = store.outbox_counts().await.expect("counts");
    Sample {
        day,
        seen,
        sent: counts.sent,
        dead: counts.dead,
        held: counts.held,
        bytes: store.state_bytes().await.expect("bytes"),
    }
}

/// The largest distance from the mean of `values`, as a fraction of it.
fn spread(values: &[f64]) -> f64 {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values
        .iter()
        .map(|v| (v - mean).abs() / mean)
        .fold(0.0, f64::max)
}

fn write_feeds(dir: &Path, feeds: usize, day: usize, start: DateTime<Utc>) {
    for feed in 0..feeds {
        std::fs::write(dir.join(format!("f{feed}.xml")), document(feed, day, start))
            .expect("write feed");
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let feeds = args.first().copied().unwrap_or(1000);
    let days = args.get(1).copied().unwrap_or(365);
    // Errors only: a year of deliveries, floods and dead letters would drown the table.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
        .init();

    let receiver = Receiver::default();
    let hooks = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    Mock::given(method("POST"))
        .and(path("/ok"))
        .respond_with(receiver.clone())
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/refused"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&hooks)
        .await;

    let feed_entries: String = (0..feeds)
        .map(|f| format!("[[feeds]]\nname = \"f{f}\"\nurl = \"file:feeds/f{f}.xml\"\n\n"))
        .collect();
    let config = support::TestConfig::write(
        "",
        &format!(
            "{feed_entries}\
             [channels.ok]\ntype = \"webhook\"\nurl = \"{uri}/ok\"\n\n\
             [channels.refused]\ntype = \"webhook\"\nurl = \"{uri}/refused\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"ok\"]\n\n\
             [[rules]]\nname = \"refused\"\nkeywords = [\"Ankara\"]\nchannels = [\"refused\"]\n",
            uri = hooks.uri()
        ),
    );
    let dir = config.dir.path().join("feeds");
    std::fs::create_dir_all(&dir).expect("feeds dir");
    let start = DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01");
    let clock = Clock::fixed(start);
    let p = Arc::new(
        Pipeline::with_clock(config.load(), clock.clone())
            .await
            .expect("pipeline"),
    );

    println!(
        "{feeds} feeds, {days} days: {PER_DAY} new items a feed a day, {IN_FEED} in a document, \
         1 feed in {REKEYING} re-keys daily"
    );
    println!("| day | seen items | sent | dead | held | state on disk | pruned that day |");
    println!("|---|---|---|---|---|---|---|");
    let began = Instant::now();
    let mut samples = Vec::new();
    let (mut alerts, mut dead) = (0, 0);
    for day in 0..days {
        clock.set(start + Duration::days(day as i64));
        write_feeds(&dir, feeds, day, start);
        let report = daemon::once(Arc::clone(&p)).await.expect("once");
        alerts += report.delivery.sent;
        dead += report.delivery.dead;
        // `once` prunes as it ends.
        let (pruned, _) = p.store().last_prune().await.expect("note").expect("pruned");
        if day % 30 == 29 || day + 1 == days {
            let s = sample(&p, day + 1).await;
            println!(
                "| {} | {} | {} | {} | {} | {:.1} MB | {pruned} |",
                s.day,
                s.seen,
                s.sent,
                s.dead,
                s.held,
                s.bytes as f64 / 1e6
            );
            samples.push(s);
        }
    }
    let took = began.elapsed();
    let settled: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.day > FORGET_AFTER_DAYS)
        .collect();
    println!(
        "\n{days} days in {:.0} s ({:.2} s a simulated day); {alerts} alerts sent, {dead} dead letters",
        took.as_secs_f64(),
        took.as_secs_f64() / days as f64
    );
    if settled.len() >= 2 {
        let of = |f: fn(&Sample) -> u64| settled.iter().map(|s| f(s) as f64).collect::<Vec<_>>();
        let seen = spread(&of(|s| s.seen));
        let rows = spread(&of(|s| s.seen + s.sent + s.dead + s.held));
        let bytes = spread(&of(|s| s.bytes));
        let verdict = |x: f64| if x <= FLAT { "flat" } else { "NOT flat" };
        println!(
            "after day {FORGET_AFTER_DAYS}: seen items within ±{:.1}% ({}), all rows ±{:.1}% ({}), \
             bytes on disk ±{:.1}% ({}) of their mean",
            seen * 100.0,
            verdict(seen),
            rows * 100.0,
            verdict(rows),
            bytes * 100.0,
            verdict(bytes)
        );
    }
    let counts = receiver.alerts.lock().expect("counts");
    let twice = counts.values().filter(|n| **n > 1).count();
    println!(
        "items alerted: {}; alerted more than once: {twice}",
        counts.len()
    );
}
