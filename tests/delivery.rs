//! What reaches people, through the library against a real SMTP server (STARTTLS +
//! AUTH) and a real webhook receiver: digests, per-channel rate limits, cross-feed
//! story dedupe, custom templates and sanitised feed HTML.

mod support;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use newshound::daemon::{self, Pipeline};
use support::{SmtpServer, TestConfig};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An RSS feed of `items`: (guid, title, link, description).
fn rss(items: &[(&str, &str, &str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title, link, description)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>\
                 <description>{description}</description></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>"
    )
}

/// Writes `text` as feed file `name` in the config's folder; returns its `[[feeds]]`.
fn feed_file(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(format!("{name}.xml")), text).expect("write feed");
    format!("[[feeds]]\nname = \"{name}\"\nurl = \"file:{name}.xml\"\n\n")
}

/// A config in a temp dir whose feeds are files written there first.
fn config_with_feeds(
    daemon_extra: &str,
    feeds: &[(&str, String)],
    rest: &str,
) -> (TestConfig, String) {
    let config = TestConfig::write(daemon_extra, "");
    let feeds: String = feeds
        .iter()
        .map(|(name, text)| feed_file(config.dir.path(), name, text))
        .collect();
    let body = format!("{feeds}{rest}");
    let text = std::fs::read_to_string(&config.path).expect("read config") + &body;
    std::fs::write(&config.path, &text).expect("write config");
    (config, text)
}

/// An email channel `me` and a rule `talks` (Lavrov) sending to it.
const EMAIL_TALKS: &str = "[channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\n\
                           [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n";

async fn pipeline(config: &TestConfig) -> Arc<Pipeline> {
    Arc::new(Pipeline::new(config.load()).await.expect("pipeline starts"))
}

const TWO_RULES: &str = r#"
[[rules]]
name = "talks"
keywords = ["Lavrov", "Blinken"]
channels = ["me"]

[[rules]]
name = "alliance"
keywords = ["NATO"]
channels = ["me"]
"#;

#[tokio::test]
async fn a_digest_sends_its_period_as_one_message_grouped_by_rule_and_an_empty_period_nothing() {
    support::init();
    let smtp = SmtpServer::start();
    let feed = rss(&[
        (
            "1",
            "Lavrov speaks",
            "https://n.example.org/1",
            "Lavrov said",
        ),
        (
            "2",
            "NATO summit opens",
            "https://n.example.org/2",
            "NATO met",
        ),
        (
            "3",
            "Blinken travels",
            "https://n.example.org/3",
            "Blinken flew",
        ),
    ]);
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[("news", feed)],
        &format!(
            "{}[channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\ndigest = \"1h\"\n{TWO_RULES}",
            smtp.config_section()
        ),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.alerts, 3);
    assert_eq!(report.delivery.deferred, 3, "{report:?}");
    assert!(smtp.drain().is_empty(), "nothing before the hour");

    let after_the_hour = Utc::now() + chrono::Duration::hours(1);
    let sent = p.dispatch_due(after_the_hour).await.expect("dispatch");
    assert_eq!(sent.sent, 3);
    let digest = smtp.next_message();
    assert_eq!(
        digest.header("Subject").as_deref(),
        Some("[newshound] 3 alerts (every 1h): talks, alliance")
    );
    assert!(
        digest
            .header("List-Id")
            .is_some_and(|l| l.contains("<me.channel.newshound>"))
    );
    let body = digest.decoded();
    let talks = body.find("## talks (2)").expect(&body);
    let alliance = body.find("## alliance (1)").expect("alliance group");
    let lavrov = body.find("Lavrov speaks").expect("first item");
    assert!(talks < lavrov && lavrov < alliance, "{body}");
    assert!(body.contains("Blinken travels") && body.contains("NATO summit opens"));
    assert!(smtp.drain().is_empty(), "one message for the period");

    // The next period has nothing: nothing is sent.
    let report = p
        .dispatch_due(after_the_hour + chrono::Duration::hours(1))
        .await
        .expect("dispatch");
    assert_eq!(report, daemon::DispatchReport::default());
    assert!(smtp.drain().is_empty());
}

/// Regression: a digest of more alerts than the dispatcher claims at a time (100) went
/// out as several messages, one per batch. The rest of a due digest is claimed with it.
#[tokio::test]
async fn a_digest_larger_than_a_claim_batch_is_still_one_message() {
    support::init();
    let items: Vec<(String, String, String, String)> = (0..250)
        .map(|i| {
            (
                i.to_string(),
                format!("Lavrov, part {i}"),
                format!("https://n.example.org/{i}"),
                "x".to_owned(),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str, &str, &str)> = items
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"\nflood_threshold = 1000",
        &[("news", rss(&borrowed))],
        "[channels.me]\ntype = \"maildir\"\npath = \"inbox\"\ndigest = \"1h\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n",
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.deferred, 250, "{report:?}");
    let after_the_hour = Utc::now() + chrono::Duration::hours(1);
    let sent = p.dispatch_due(after_the_hour).await.expect("dispatch");
    assert_eq!(sent.sent, 250);
    let inbox = config.dir.path().join("inbox");
    assert_eq!(support::maildir_messages(&inbox).len(), 1, "one digest");
}

#[tokio::test]
async fn a_channel_over_its_rate_gets_one_summary_and_loses_nothing() {
    support::init();
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    let items: Vec<(String, String, String)> = (1..=8)
        .map(|i| {
            (
                i.to_string(),
                format!("Lavrov statement number {i}"),
                format!("https://n.example.org/{i}"),
            )
        })
        .collect();
    let first: Vec<(&str, &str, &str, &str)> = items[..5]
        .iter()
        .map(|(g, t, l)| (g.as_str(), t.as_str(), l.as_str(), "Lavrov"))
        .collect();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[("news", rss(&first))],
        &format!(
            "[channels.me]\ntype = \"webhook\"\nurl = \"{}/hook\"\nmax_per_minute = 2\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n",
            hook.uri()
        ),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.sent, 5, "{report:?}");

    // Three more items within the same minute: no slot left, they wait.
    let all: Vec<(&str, &str, &str, &str)> = items
        .iter()
        .map(|(g, t, l)| (g.as_str(), t.as_str(), l.as_str(), "Lavrov"))
        .collect();
    std::fs::write(config.dir.path().join("news.xml"), rss(&all)).expect("rewrite feed");
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(
        (report.alerts, report.delivery.deferred),
        (3, 3),
        "{report:?}"
    );

    let next_minute = Utc::now() + chrono::Duration::seconds(61);
    let report = p.dispatch_due(next_minute).await.expect("dispatch");
    assert_eq!(report.sent, 3);

    let bodies: Vec<serde_json::Value> = hook
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json body"))
        .collect();
    // Minute one: one alert and a summary of four; minute two: one and a summary of two.
    assert_eq!(bodies.len(), 4, "{bodies:#?}");
    let singles: Vec<&serde_json::Value> =
        bodies.iter().filter(|b| b.get("key").is_some()).collect();
    let summaries: Vec<&serde_json::Value> =
        bodies.iter().filter(|b| b["kind"] == "summary").collect();
    assert_eq!(singles.len(), 2);
    assert_eq!(
        summaries
            .iter()
            .map(|s| s["count"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>(),
        [4, 2]
    );
    let mut keys: Vec<String> = singles
        .iter()
        .map(|b| b["key"].as_str().unwrap_or_default().to_owned())
        .chain(summaries.iter().flat_map(|s| {
            s["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["key"].as_str().unwrap_or_default().to_owned())
        }))
        .collect();
    keys.sort_by_key(|k| k.parse::<u32>().unwrap_or(0));
    assert_eq!(
        keys,
        ["1", "2", "3", "4", "5", "6", "7", "8"],
        "every alert once"
    );
}

#[tokio::test]
async fn the_same_story_from_two_feeds_arrives_once_listing_both() {
    support::init();
    let smtp = SmtpServer::start();
    let wire = rss(&[(
        "w-1",
        "Lavrov and Blinken meet in Geneva",
        "https://news.example.org/geneva?id=7",
        "Lavrov met Blinken",
    )]);
    let mirror = rss(&[(
        "m-99",
        "Geneva talks: Lavrov meets Blinken",
        "http://www.news.example.org/geneva?utm_source=rss&amp;id=7",
        "Lavrov met Blinken",
    )]);
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[("wire", wire), ("mirror", mirror)],
        &format!("{}{EMAIL_TALKS}", smtp.config_section()),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.sent, 1, "{report:?}");
    let message = smtp.next_message();
    let body = message.decoded();
    assert!(
        // Whichever feed was recorded first has the alert; the other is listed.
        [
            "Also reported by:\n  - mirror: Geneva talks: Lavrov meets Blinken\n    \
             <http://www.news.example.org/geneva?utm_source=rss&id=7>",
            "Also reported by:\n  - wire: Lavrov and Blinken meet in Geneva\n    \
             <https://news.example.org/geneva?id=7>"
        ]
        .iter()
        .any(|listed| body.replace("\r\n", "\n").contains(listed)),
        "{body}"
    );
    assert!(body.contains("wire") && body.contains("mirror"), "{body}");
    assert!(smtp.drain().is_empty(), "one alert for one story");
    assert_eq!(p.store().outbox_counts().await.expect("counts").merged, 1);
}

#[tokio::test]
async fn custom_templates_shape_the_email_and_feed_html_arrives_sanitised() {
    support::init();
    let smtp = SmtpServer::start();
    let feed = rss(&[(
        "1",
        "Lavrov speaks",
        "https://n.example.org/1",
        "&lt;p onclick=\"steal()\"&gt;Lavrov &lt;b&gt;said&lt;/b&gt; &lt;a href=\"javascript:alert(1)\"&gt;this&lt;/a&gt; \
         &lt;a href=\"/more\"&gt;more&lt;/a&gt;&lt;script&gt;alert(2)&lt;/script&gt;&lt;iframe src=\"https://evil.example\"&gt;&lt;/iframe&gt;&lt;/p&gt;",
    )]);
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[("news", feed)],
        &format!(
            "{}[channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\
             [channels.me.templates]\nsubject = \"{{{{ alert.feed }}}} says {{{{ alert.title }}}}\"\n\
             text = \"TEXT {{{{ alert.snippet }}}} ({{% for w in alert.why %}}{{{{ w.fields|join('+') }}}}{{% endfor %}})\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n",
            smtp.config_section()
        ),
    );
    let p = pipeline(&config).await;
    daemon::once(Arc::clone(&p)).await.expect("once runs");
    let message = smtp.next_message();
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("news says Lavrov speaks")
    );
    let body = message.decoded();
    assert!(
        body.contains("TEXT *Lavrov* said this more (title+summary)"),
        "{body}"
    );
    // The default HTML part quotes the feed's HTML, sanitised.
    let html = &body[body.find("<!DOCTYPE html>").expect("html part")..];
    assert!(html.contains("<b>said</b>"), "{html}");
    assert!(
        html.contains(
            "<a href=\"https://n.example.org/more\" rel=\"noopener noreferrer\">more</a>"
        ),
        "relative links resolve against the item: {html}"
    );
    for unsafe_part in ["onclick", "javascript:", "<script", "alert(2)", "<iframe"] {
        assert!(!html.contains(unsafe_part), "{unsafe_part} in {html}");
    }
}

/// Regression: `Retry-After: 999999999` (or an HTTP date in year 9999) moved the next
/// attempt to 2058 / 9999, past `delivery_lifetime`: never delivered, never a dead
/// letter. A receiver's wait is capped at an hour, and an alert whose lifetime runs
/// out becomes a dead letter whatever it was told.
#[tokio::test]
async fn a_receivers_retry_after_is_capped_and_the_lifetime_still_ends_in_a_dead_letter() {
    support::init();
    for retry_after in ["999999999", "Fri, 31 Dec 9999 23:59:59 GMT"] {
        let hook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503).insert_header("retry-after", retry_after))
            .mount(&hook)
            .await;
        let (config, _) = config_with_feeds(
            "first_poll = \"alert\"\ndelivery_lifetime = \"3h\"\ndelivery_attempts = 100",
            &[(
                "news",
                rss(&[("1", "Lavrov speaks", "https://n.example.org/1", "x")]),
            )],
            &format!(
                "[channels.me]\ntype = \"webhook\"\nurl = \"{}/hook\"\n\n\
                 [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n",
                hook.uri()
            ),
        );
        // Whole seconds, as the store keeps times.
        let start = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
        let clock = daemon::Clock::fixed(start);
        let p = Arc::new(
            Pipeline::with_clock(config.load(), clock)
                .await
                .expect("pipeline starts"),
        );
        let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
        assert_eq!(report.delivery.retrying, 1, "{retry_after}");
        let waiting = p.store().retrying().await.expect("query");
        assert_eq!(
            waiting[0].next_attempt,
            start + chrono::Duration::hours(1),
            "{retry_after}: the receiver's wait, capped at the longest backoff"
        );
        // Tried every hour as the receiver keeps asking for forever; three hours in,
        // the alert is a dead letter, not lost in the queue.
        let mut at = start;
        for _ in 0..5 {
            at += chrono::Duration::minutes(61);
            p.dispatch_due(at).await.expect("dispatch");
        }
        let counts = p.store().outbox_counts().await.expect("counts");
        assert_eq!((counts.pending, counts.dead), (0, 1), "{retry_after}");
    }
}

/// Regression: a relay's self-signed certificate made the usual way (`openssl req
/// -x509`, CA:TRUE) could not be trusted through `smtp.ca_file` ("CaUsedAsEndEntity").
/// Pinning its SHA-256 fingerprint trusts exactly that certificate; the failed check
/// says so in one line, and a wrong pin delivers nothing and says what it saw.
#[tokio::test]
async fn a_relay_with_a_self_signed_ca_certificate_is_trusted_by_its_fingerprint() {
    support::init();
    let smtp = SmtpServer::start_with_ca_certificate();
    let feed = rss(&[("1", "Lavrov speaks", "https://n.example.org/1", "Lavrov")]);
    let attempt = |trust: String| {
        let feed = feed.clone();
        async move {
            let (config, _) = config_with_feeds(
                "first_poll = \"alert\"",
                &[("news", feed)],
                &format!("{trust}{EMAIL_TALKS}"),
            );
            let p = pipeline(&config).await;
            let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
            let errors: Vec<String> = p
                .store()
                .retrying()
                .await
                .expect("retrying")
                .into_iter()
                .map(|r| r.last_error)
                .collect();
            (report.delivery.sent, errors)
        }
    };

    let (sent, errors) = attempt(smtp.config_section()).await;
    assert_eq!(sent, 0);
    assert!(
        errors[0].contains("smtp.tls_fingerprint") && !errors[0].contains('\n'),
        "the failure says what to do: {errors:?}"
    );

    let pinned = format!("tls_fingerprint = \"{}\"", smtp.fingerprint);
    let (sent, errors) = attempt(smtp.config_section_trusting(&pinned)).await;
    assert_eq!((sent, errors.len()), (1, 0), "{errors:?}");
    let message = smtp.next_message();
    assert!(message.decoded().contains("Lavrov"));

    let wrong = format!("tls_fingerprint = \"SHA256:{}\"", ["AB"; 32].join(":"));
    let (sent, errors) = attempt(smtp.config_section_trusting(&wrong)).await;
    assert_eq!(sent, 0);
    assert!(errors[0].contains(&smtp.fingerprint), "{errors:?}");
    assert!(smtp.drain().is_empty(), "nothing reached the relay");
    assert!(
        smtp.logins().len() == 1,
        "no password went to the wrong certificate"
    );
}

/// Sessions are kept and reused: 40 alerts go over at most as many connections as
/// are delivering at once, each logged in once.
#[tokio::test]
async fn smtp_sessions_are_reused_across_alerts() {
    support::init();
    let smtp = SmtpServer::start();
    let items: Vec<(String, String, String, String)> = (0..40)
        .map(|i| {
            (
                format!("{i}"),
                format!("Lavrov item {i}"),
                format!("https://n.example.org/{i}"),
                "Lavrov".to_string(),
            )
        })
        .collect();
    let items: Vec<(&str, &str, &str, &str)> = items
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[("news", rss(&items))],
        &format!("{}{EMAIL_TALKS}", smtp.config_section()),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.sent, 40, "{report:?}");
    assert_eq!(smtp.drain().len(), 40);
    let sessions = smtp.logins().len();
    assert!(
        (1..=8).contains(&sessions),
        "{sessions} sessions for 40 alerts"
    );
}

/// A webhook receiver that holds every request until the test lets it go, and notes
/// how many it held at once.
struct Gate {
    held: std::sync::atomic::AtomicUsize,
    most_held: std::sync::atomic::AtomicUsize,
    answered: std::sync::atomic::AtomicUsize,
    /// Woken when a request arrives or is answered.
    changed: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

async fn held_hook(
    axum::extract::State(gate): axum::extract::State<Arc<Gate>>,
) -> axum::http::StatusCode {
    use std::sync::atomic::Ordering::SeqCst;
    let now = gate.held.fetch_add(1, SeqCst) + 1;
    gate.most_held.fetch_max(now, SeqCst);
    gate.changed.notify_one();
    gate.release.acquire().await.expect("open").forget();
    gate.held.fetch_sub(1, SeqCst);
    gate.answered.fetch_add(1, SeqCst);
    gate.changed.notify_one();
    axum::http::StatusCode::NO_CONTENT
}

/// `max_in_flight` bounds the messages a channel has on their way at once: with 2, a
/// receiver holding every request until 2 wait never holds more than 2 of the 6.
#[tokio::test]
async fn a_channel_never_has_more_than_max_in_flight_on_their_way() {
    use std::sync::atomic::Ordering::SeqCst;
    support::init();
    let gate = Arc::new(Gate {
        held: 0.into(),
        most_held: 0.into(),
        answered: 0.into(),
        changed: tokio::sync::Notify::new(),
        release: tokio::sync::Semaphore::new(0),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(held_hook))
        .with_state(Arc::clone(&gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let items: Vec<(String, String, String)> = (0..6)
        .map(|i| {
            let story = ["Geneva", "Vienna", "Minsk", "Oslo", "Paris", "Rome"][i];
            (
                format!("{i}"),
                format!("Lavrov speaks in {story}"),
                format!("https://n.example.org/{story}"),
            )
        })
        .collect();
    let items: Vec<(&str, &str, &str, &str)> = items
        .iter()
        .map(|(id, title, link)| (id.as_str(), title.as_str(), link.as_str(), "Lavrov"))
        .collect();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[("news", rss(&items))],
        &format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"http://{addr}/hook\"\nmax_in_flight = 2\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"hook\"]\n"
        ),
    );
    let p = pipeline(&config).await;
    let once = tokio::spawn(daemon::once(Arc::clone(&p)));
    let mut released = 0;
    while gate.answered.load(SeqCst) < 6 {
        let (held, answered) = (gate.held.load(SeqCst), gate.answered.load(SeqCst));
        let waiting = held.saturating_sub(released - answered.min(released));
        if waiting >= 2 || (waiting > 0 && held + answered == 6) {
            gate.release.add_permits(waiting);
            released += waiting;
        }
        gate.changed.notified().await;
    }
    let report = once.await.expect("joined").expect("once runs");
    assert_eq!(report.delivery.sent, 6, "{report:?}");
    assert_eq!(gate.most_held.load(SeqCst), 2);
}

/// `max_age`: an item dated longer ago is recorded as seen but not alerted (republished
/// or re-keyed old items stay quiet); an undated item counts as new. A feed's own
/// `max_age` wins over the daemon's.
#[tokio::test]
async fn items_older_than_max_age_are_recorded_but_not_alerted() {
    support::init();
    let dated = |guid: &str, when: chrono::DateTime<Utc>| {
        format!(
            "<item><guid>{guid}</guid><title>Lavrov {guid}</title><pubDate>{}</pubDate></item>",
            when.to_rfc2822()
        )
    };
    let now = Utc::now();
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{}{}\
         <item><guid>undated</guid><title>Lavrov undated</title></item></channel></rss>",
        dated("old", now - chrono::Duration::days(30)),
        dated("new", now - chrono::Duration::hours(1)),
    );
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"\nmax_age = \"7d\"",
        &[("news", feed.clone()), ("archive", feed)],
        "[channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
    );
    // The archive feed looks back further.
    let text = std::fs::read_to_string(&config.path).expect("read");
    let text = text.replace(
        "name = \"archive\"\nurl = \"file:archive.xml\"\n",
        "name = \"archive\"\nurl = \"file:archive.xml\"\nmax_age = \"60d\"\n",
    );
    std::fs::write(&config.path, text).expect("write");
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.new_items, 6, "every item recorded");
    assert_eq!(
        report.alerts,
        2 + 3,
        "news: new and undated; archive: all three"
    );
    let titles: Vec<String> = support::maildir_messages(&config.dir.path().join("inbox"))
        .iter()
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        })
        .collect();
    assert_eq!(titles.len(), 5, "{titles:?}");
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(
        (report.new_items, report.alerts),
        (0, 0),
        "the old item stays quiet"
    );
}

/// Google Alerts wraps every link in `google.com/url?…&url=`, FeedBurner proxies them
/// and names the original in `feedburner:origLink`: alerts carry the real links,
/// `link:` rules see the real host, and the same story with a wrapped and a plain link
/// is one alert. Item keys are derived before, so they do not change.
#[tokio::test]
async fn wrapped_and_proxied_links_are_the_real_ones_in_alerts_rules_and_dedupe() {
    support::init();
    let fixture =
        |name: &str| String::from_utf8(support::fixture(&format!("links/{name}"))).expect("utf-8");
    let plain = rss(&[(
        "p-1",
        "Lavrov and Blinken meet in Geneva",
        "https://news.example.org/geneva?id=7",
        "Lavrov met Blinken",
    )]);
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[
            ("alerts", fixture("google-alerts.atom")),
            ("wire", fixture("feedburner.rss")),
            ("plain", plain),
        ],
        "[channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
         [channels.hosts]\ntype = \"maildir\"\npath = \"hosts\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n\n\
         [[rules]]\nname = \"wire-site\"\nquery = \"link:wire.example.org\"\nchannels = [\"hosts\"]\n",
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.feeds_failed, 0, "{report:?}");
    let inbox = support::maildir_messages(&config.dir.path().join("inbox")).join("\n");
    assert!(
        inbox.contains("https://news.example.org/geneva?id=7"),
        "{inbox}"
    );
    assert!(
        inbox.contains("https://wire.example.org/2026/12/summit?ref=rss&id=1"),
        "{inbox}"
    );
    assert!(
        !inbox.contains("google.com/url") && !inbox.contains("feedproxy"),
        "{inbox}"
    );
    assert_eq!(
        p.store().outbox_counts().await.expect("counts").merged,
        1,
        "the wrapped and the plain link are one story"
    );
    let hosts = support::maildir_messages(&config.dir.path().join("hosts"));
    assert_eq!(
        hosts.len(),
        1,
        "link: matched the real host, not feedproxy's"
    );
}

/// An `exec` channel through the daemon: the program gets the alert as JSON and its
/// exit status decides (0 sent); a dead program's failure is a dead letter with what
/// it said.
#[tokio::test]
async fn an_exec_channel_runs_a_program_with_the_alert_on_stdin() {
    use std::os::unix::fs::PermissionsExt;
    support::init();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[(
            "news",
            rss(&[("1", "Lavrov speaks", "https://n.example.org/1", "x")]),
        )],
        "",
    );
    let dir = config.dir.path();
    let script = dir.join("hook");
    std::fs::write(&script, "#!/bin/sh\ncat > \"$1\"\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let text = std::fs::read_to_string(&config.path).expect("read");
    let got = dir.join("got.json");
    std::fs::write(
        &config.path,
        format!(
            "{text}[channels.hook]\ntype = \"exec\"\ncommand = [\"{}\", \"{}\"]\ntimeout = \"5s\"\n\n\
             [channels.broken]\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", \"echo no route >&2; exit 2\"]\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"hook\", \"broken\"]\n",
            script.display(),
            got.display()
        ),
    )
    .expect("write");
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(
        (report.delivery.sent, report.delivery.dead),
        (1, 1),
        "{report:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&got).expect("stdin")).expect("json");
    assert_eq!(json["title"], "Lavrov speaks");
    assert_eq!(json["rules"][0], "talks");
    let dead = p.store().dead_letters().await.expect("query");
    assert!(dead[0].2.ends_with("exit 2: no route"), "{dead:?}");
}

/// A webhook channel can gather its period's alerts too: one POST listing them, in the
/// channel's format.
#[tokio::test]
async fn a_webhook_digest_posts_the_period_once() {
    support::init();
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    let items: Vec<(String, String)> = (1..=3)
        .map(|i| (i.to_string(), format!("Lavrov, part {i}")))
        .collect();
    let borrowed: Vec<(&str, &str, &str, &str)> = items
        .iter()
        .map(|(g, t)| (g.as_str(), t.as_str(), "https://n.example.org/x", "x"))
        .collect();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"\ndedupe_window = \"0s\"",
        &[("news", rss(&borrowed))],
        &format!(
            "[channels.json]\ntype = \"webhook\"\nurl = \"{0}/json\"\ndigest = \"1h\"\n\n\
             [channels.slack]\ntype = \"webhook\"\nurl = \"{0}/slack\"\nformat = \"slack\"\ndigest = \"1h\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"json\", \"slack\"]\n",
            hook.uri()
        ),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.deferred, 6, "{report:?}");
    assert!(
        hook.received_requests()
            .await
            .expect("recording")
            .is_empty()
    );
    let sent = p
        .dispatch_due(Utc::now() + chrono::Duration::hours(1))
        .await
        .expect("dispatch");
    assert_eq!(sent.sent, 6);
    let requests = hook.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 2, "one POST per channel");
    let body = |route: &str| {
        let request = requests
            .iter()
            .find(|r| r.url.path() == route)
            .expect(route);
        serde_json::from_slice::<serde_json::Value>(&request.body).expect("json")
    };
    let json = body("/json");
    assert_eq!(
        (json["kind"].as_str(), json["count"].as_u64()),
        (Some("digest"), Some(3))
    );
    let slack = body("/slack")["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        slack.contains("3 alerts (every 1h)") && slack.contains("Lavrov, part 2"),
        "{slack}"
    );
}

/// Quiet hours: alerts found in the window wait for its end and then go as one
/// message; outside it, a channel sends as usual. Times are the local clock's.
#[tokio::test]
async fn quiet_hours_hold_a_channel_until_they_end_then_send_one_message() {
    use chrono::TimeZone;
    support::init();
    let local = |h: u32| {
        chrono::Local
            .with_ymd_and_hms(2026, 12, 5, h, 0, 0)
            .earliest()
            .expect("a local time")
            .with_timezone(&Utc)
    };
    let items: Vec<(String, String)> = (1..=3)
        .map(|i| (i.to_string(), format!("Lavrov, part {i}")))
        .collect();
    let borrowed: Vec<(&str, &str, &str, &str)> = items
        .iter()
        .map(|(g, t)| (g.as_str(), t.as_str(), "https://n.example.org/x", "x"))
        .collect();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"\ndedupe_window = \"0s\"",
        &[("news", rss(&borrowed))],
        "[channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\nquiet_hours = \"00:00-06:00\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
    );
    let clock = daemon::Clock::fixed(local(2));
    let p = Arc::new(
        Pipeline::with_clock(config.load(), clock.clone())
            .await
            .expect("pipeline starts"),
    );
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!((report.delivery.sent, report.delivery.deferred), (0, 3));
    let inbox = config.dir.path().join("inbox");
    assert_eq!(
        p.dispatch_due(local(5)).await.expect("dispatch").sent,
        0,
        "still quiet"
    );
    let morning = p.dispatch_due(local(6)).await.expect("dispatch");
    assert_eq!(morning.sent, 3);
    let messages = support::maildir_messages(&inbox);
    assert_eq!(messages.len(), 1, "one message for the night");
    assert!(
        messages[0].contains("quiet hours 00:00-06:00"),
        "{}",
        messages[0]
    );

    // In the day, an alert goes at once, on its own.
    clock.set(local(9));
    std::fs::write(
        config.dir.path().join("news.xml"),
        rss(&[("4", "Lavrov again", "https://n.example.org/4", "x")]),
    )
    .expect("update feed");
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.sent, 1);
    assert_eq!(support::maildir_messages(&inbox).len(), 2);
}

/// A webhook shaped for any API: its own method, headers (a token from a file) and a
/// body template; feed text goes into the JSON through `tojson`, quotes and all.
#[tokio::test]
async fn a_webhook_with_its_own_method_headers_and_body_fits_another_api() {
    use wiremock::matchers::header;
    support::init();
    let api = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(header("authorization", "Bearer t-1"))
        .and(header("content-type", "application/vnd.api+json"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[(
            "news",
            rss(&[(
                "1",
                "Lavrov: &quot;no&quot; \\ talks",
                "https://n.example.org/1",
                "x",
            )]),
        )],
        &format!(
            "[channels.api]\ntype = \"webhook\"\nurl = \"{}/v1/messages\"\nmethod = \"put\"\n\
             headers = {{ Authorization = {{ file = \"token\" }}, Content-Type = \"application/vnd.api+json\" }}\n\
             body = '{{\"room\": \"news\", \"text\": {{{{ alerts[0].title | tojson }}}}, \"link\": {{{{ alerts[0].link | tojson }}}}}}'\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"api\"]\n",
            api.uri()
        ),
    );
    std::fs::write(config.dir.path().join("token"), "Bearer t-1\n").expect("token");
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.sent, 1, "{report:?}");
    let requests = api.received_requests().await.expect("recording");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).expect("json body");
    assert_eq!(body["room"], "news");
    assert_eq!(body["text"], "Lavrov: \"no\" \\ talks");
    assert_eq!(body["link"], "https://n.example.org/1");
}

/// An `atom` channel through the daemon: the matches become a valid Atom feed file,
/// each alert once, for a feed reader to subscribe to.
#[tokio::test]
async fn an_atom_channel_writes_the_matches_as_a_feed() {
    support::init();
    let (config, _) = config_with_feeds(
        "first_poll = \"alert\"",
        &[(
            "news",
            rss(&[
                ("1", "Lavrov speaks", "https://n.example.org/1", "x"),
                ("2", "Lavrov again", "https://n.example.org/2", "x"),
            ]),
        )],
        "[channels.reader]\ntype = \"atom\"\npath = \"public/matches.atom\"\nentries = 10\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"reader\"]\n",
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.sent, 2, "{report:?}");
    let xml = std::fs::read(config.dir.path().join("public/matches.atom")).expect("the feed");
    let feed = feed_rs::parser::parse(xml.as_slice()).expect("valid Atom");
    assert_eq!(feed.entries.len(), 2);
    assert!(
        feed.entries
            .iter()
            .all(|e| e.id.starts_with("urn:newshound:msg_"))
    );
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.sent, 0);
}
