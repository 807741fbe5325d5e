//! The daemon's polling against a slow store and with feeds it has never seen: the
//! async workers stay free for timers and `/healthz`, and new feeds are fetched within
//! seconds.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use newshound::daemon::{self, Clock, Lasting, Pipeline};
use newshound::model::FeedId;
use newshound::store::Store;
use support::TestConfig;
use tokio_util::sync::CancellationToken;

/// A config of `n` file feeds (each with one matching item of its own) that alert
/// into a Maildir.
fn file_feeds(daemon_extra: &str, n: usize, interval: &str) -> TestConfig {
    let config = TestConfig::write(daemon_extra, MAILDIR);
    let feeds: String = (0..n)
        .map(|i| {
            let rss = format!(
                "<rss version=\"2.0\"><channel><title>f{i}</title><item><guid>f{i}-1</guid>\
                 <title>NATO story {i}</title></item></channel></rss>"
            );
            std::fs::write(config.dir.path().join(format!("f{i}.xml")), rss).expect("feed file");
            format!(
                "\n[[feeds]]\nname = \"f{i}\"\nurl = \"file:f{i}.xml\"\ninterval = \"{interval}\"\n"
            )
        })
        .collect();
    let text = std::fs::read_to_string(&config.path).expect("read config") + &feeds;
    std::fs::write(&config.path, text).expect("write config");
    config
}

const MAILDIR: &str = "[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
                       [[rules]]\nname = \"talks\"\nkeywords = [\"NATO\"]\nchannels = [\"inbox\"]\n";

/// While 32 polls wait for commits that take 300 ms each (a slow disk), timers fire on
/// time and `/healthz` answers at once: no SQLite call runs on an async worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_stalls_neither_timers_nor_healthz() {
    const COMMIT: Duration = Duration::from_millis(300);
    let config = file_feeds("first_poll = \"alert\"", 32, "10m");
    let store = Arc::new(Store::open(&config.state_dir()).await.expect("store"));
    store.delay_commits(COMMIT);
    let lasting = Lasting::new(Arc::clone(&store), Clock::system());
    let pipeline = Arc::new(Pipeline::build(config.load(), &lasting).expect("pipeline"));
    lasting.health.tick();
    let (addr, shutdown) = support::serve_endpoint(lasting, Arc::clone(pipeline.config())).await;
    let client = reqwest::Client::new();
    let healthz = format!("http://{addr}/healthz");

    let started = Instant::now();
    let polls = tokio::spawn(daemon::once(Arc::clone(&pipeline)));
    let (mut late, mut slowest_answer, mut checks) = (Duration::ZERO, Duration::ZERO, 0);
    while !polls.is_finished() {
        let tick = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        late = late.max(tick.elapsed().saturating_sub(Duration::from_millis(20)));
        let asked = Instant::now();
        let answer = client.get(&healthz).send().await.expect("healthz answers");
        assert!(answer.status().is_success());
        slowest_answer = slowest_answer.max(asked.elapsed());
        checks += 1;
    }
    let report = polls.await.expect("joined").expect("once");
    shutdown.cancel();
    assert_eq!(report.feeds_ok, 32);
    assert_eq!(report.delivery.sent, 32);
    assert!(started.elapsed() >= COMMIT, "the commits were slow");
    assert!(checks >= 5, "checked while the polls ran: {checks}");
    // A worker blocked by a commit would be late by the commit's 300 ms.
    assert!(late < COMMIT / 2, "a timer was {late:?} late");
    assert!(
        slowest_answer < COMMIT / 2,
        "/healthz took {slowest_answer:?}"
    );
}

/// A user who just installed the service sees every feed polled within seconds, not
/// one every interval/6: the sixth of six new feeds at 10 minutes is fetched within
/// about 10 s.
#[tokio::test]
async fn new_feeds_are_all_polled_within_seconds() {
    let config = file_feeds("", 6, "10m");
    let pipeline = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(daemon::run(Arc::clone(&pipeline), shutdown.clone()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let ids: Vec<FeedId> = (0..6).map(|i| FeedId(format!("f{i}"))).collect();
    loop {
        let states = pipeline.store().feed_states_of(&ids).await.expect("states");
        if states.iter().all(|s| s.last_attempt.is_some()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every new feed was polled: {:?}",
            states.iter().map(|s| s.last_attempt).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    shutdown.cancel();
    running.await.expect("joined").expect("run");
    assert!(
        took < Duration::from_secs(12),
        "six new feeds took {took:?}"
    );
}

/// The status page and the atom feeds are served as pages a browser must not sniff,
/// script, frame or leave a referrer from.
#[tokio::test]
async fn the_status_page_and_feeds_forbid_sniffing_scripts_framing_and_referrers() {
    let config = TestConfig::write(
        "",
        "[channels.reader]\ntype = \"atom\"\npath = \"matches.atom\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"NATO\"]\nchannels = [\"reader\"]\n",
    );
    std::fs::write(config.dir.path().join("matches.atom"), "<feed/>").expect("a feed file");
    let store = Arc::new(Store::open(&config.state_dir()).await.expect("store"));
    let lasting = Lasting::new(store, Clock::system());
    let (addr, shutdown) = support::serve_endpoint(lasting, Arc::new(config.load())).await;
    for path in ["/", "/feeds/reader.atom"] {
        let answer = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("answers");
        assert_eq!(answer.status(), 200, "{path}");
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        let policy = header("content-security-policy");
        for part in ["default-src 'none'", "frame-ancestors 'none'"] {
            assert!(policy.contains(part), "{path}: {policy}");
        }
        assert!(
            !policy.contains("script-src"),
            "no script allowed: {policy}"
        );
    }
    shutdown.cancel();
}

/// With many feeds the status page lists them a page at a time, the failing first:
/// of 250 feeds, the two whose files are missing open the first page.
#[tokio::test]
async fn the_status_page_lists_many_feeds_a_page_at_a_time_failing_first() {
    let config = file_feeds("", 250, "10m");
    for missing in ["f200.xml", "f249.xml"] {
        std::fs::remove_file(config.dir.path().join(missing)).expect("remove a feed file");
    }
    let pipeline = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let report = daemon::once(pipeline).await.expect("once");
    assert_eq!(report.feeds_failed, 2);
    let store = Arc::new(Store::open(&config.state_dir()).await.expect("store"));
    let lasting = Lasting::new(store, Clock::system());
    let (addr, shutdown) = support::serve_endpoint(lasting, Arc::new(config.load())).await;
    let page = |query: &'static str| async move {
        reqwest::get(format!("http://{addr}/{query}"))
            .await
            .expect("answers")
            .text()
            .await
            .expect("a page")
    };
    let first = page("").await;
    assert!(
        first.contains("Feeds 1–100 of 250, failing first.")
            && first.contains("<a href=\"?page=2\">next →</a>")
            && !first.contains("previous"),
        "{first}"
    );
    let row = |name: &str| first.find(&format!("<tr><td>{name}<br>"));
    assert!(
        row("f200") < row("f249") && row("f249") < row("f0"),
        "failing first"
    );
    assert!(row("f97").is_some() && row("f98").is_none(), "100 rows");
    let last = page("?page=3").await;
    assert!(
        last.contains("Feeds 201–250 of 250, failing first.")
            && last.contains("<a href=\"?page=2\">← previous</a>")
            && !last.contains("next →"),
        "{last}"
    );
    assert!(
        page("?page=9").await.contains("Feeds 201–250 of 250"),
        "past the end: the last"
    );
    shutdown.cancel();
}
