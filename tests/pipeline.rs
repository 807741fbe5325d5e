//! End to end through the library: feeds from a real HTTP server, alerts to a real
//! SMTP server or webhook receiver, state in a real SQLite file.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use newshound::daemon::{self, Pipeline};
use newshound::model::FeedId;
use newshound::store::OutboxCounts;
use support::{SmtpMode, SmtpServer, TestConfig, fixture, serve_feed};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const EMAIL_RULE: &str = r#"
[channels.me]
type = "email"
to = ["me@example.org"]

[[rules]]
name = "talks"
keywords = ["Lavrov", "Blinken", "NATO", "Лавров"]
channels = ["me"]
"#;

fn feeds_section(server: &MockServer, routes: &[&str]) -> String {
    routes
        .iter()
        .map(|r| {
            let name = r.trim_start_matches('/');
            format!(
                "[[feeds]]\nname = \"{name}\"\nurl = \"{}{r}\"\n\n",
                server.uri()
            )
        })
        .collect()
}

async fn pipeline(config: &TestConfig) -> Arc<Pipeline> {
    Arc::new(Pipeline::new(config.load()).await.expect("pipeline starts"))
}

/// The seed feed over HTTP, alerting on its first poll to an email channel on an SMTP
/// server in `mode`. The servers live as long as the returned values.
async fn news_to_email(
    mode: SmtpMode,
    daemon_extra: &str,
) -> (SmtpServer, MockServer, TestConfig, Arc<Pipeline>) {
    let smtp = SmtpServer::start();
    smtp.set_mode(mode);
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let config = TestConfig::write(
        &format!("first_poll = \"alert\"\n{daemon_extra}"),
        &format!(
            "{}{}{EMAIL_RULE}",
            smtp.config_section(),
            feeds_section(&http, &["/news"])
        ),
    );
    let p = pipeline(&config).await;
    (smtp, http, config, p)
}

fn subjects(messages: &[support::Received]) -> Vec<String> {
    let mut subjects: Vec<String> = messages
        .iter()
        .map(|m| m.header("Subject").expect("subject"))
        .collect();
    subjects.sort();
    subjects
}

#[tokio::test]
async fn every_feed_format_is_fetched_parsed_matched_and_mailed() {
    support::init();
    let smtp = SmtpServer::start();
    let http = MockServer::start().await;
    let feeds = [
        ("/rss20.xml", "application/rss+xml"),
        ("/rss094.xml", "text/xml"),
        ("/rss-noversion.xml", "text/xml"),
        ("/rss091.xml", "text/xml"),
        ("/rss090.rdf", "application/rdf+xml"),
        ("/rss10.rdf", "application/rdf+xml"),
        ("/atom-html.xml", "application/atom+xml"),
        ("/atom-xhtml.xml", "application/atom+xml"),
        ("/feed.json", "application/feed+json"),
        ("/windows-1251.xml", "text/xml"),
    ];
    for (route, content_type) in feeds {
        serve_feed(&http, route, fixture(&route[1..]), "\"v1\"", content_type).await;
    }
    let routes: Vec<&str> = feeds.iter().map(|(r, _)| *r).collect();
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "{}{}{EMAIL_RULE}",
            smtp.config_section(),
            feeds_section(&http, &routes)
        ),
    );
    let report = daemon::once(pipeline(&config).await)
        .await
        .expect("once runs");
    assert_eq!(report.feeds_failed, 0, "{report:?}");
    assert_eq!(report.delivery.sent, 10, "{report:?}");

    let messages: Vec<_> = (0..10).map(|_| smtp.next_message()).collect();
    let mut expected = [
        "Russia, U.S. Agree to Talk Security Demands Next Week",
        "Blinken\u{2019}s Geneva visit",
        "Ministers meet & talk \u{2019}frankly\u{2019}\u{200C}",
        "Café owners meet NATO delegates",
        "NATO summit scheduled",
        "Lavrov comments on talks",
        "Blinken and Lavrov",
        "Security talks continue",
        "Лавров встретился с Блинкеном",
        "ЛАВРОВ прибыл в Женеву",
    ]
    .map(|title| format!("[newshound] talks: {title}"));
    expected.sort();
    assert_eq!(subjects(&messages), expected);
    // Every message went through STARTTLS + AUTH with the configured user.
    assert!(smtp.logins().iter().all(|u| u == support::SMTP_USER));
    let seed = messages
        .iter()
        .find(|m| {
            m.header("Subject")
                .is_some_and(|s| s.contains("Security Demands"))
        })
        .expect("the seed story");
    let body = seed.decoded();
    assert!(body.contains("Feed:    rss20"), "{body}");
    assert!(body.contains("*Lavrov*"), "{body}");
    assert!(body.contains("<mark>Blinken</mark>"), "{body}");
    assert_eq!(seed.to, ["me@example.org"]);
    assert!(smtp.drain().is_empty(), "decoys must not alert");
}

#[tokio::test]
async fn first_poll_marks_seen_and_later_polls_alert_only_on_new_items() {
    support::init();
    let smtp = SmtpServer::start();
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let config = TestConfig::write(
        "",
        &format!(
            "{}{}{EMAIL_RULE}",
            smtp.config_section(),
            feeds_section(&http, &["/news"])
        ),
    );
    let p = pipeline(&config).await;

    let first = daemon::once(Arc::clone(&p)).await.expect("first poll");
    assert_eq!(
        (first.new_items, first.alerts),
        (4, 0),
        "mark-seen: no alerts"
    );

    // Unchanged feed: the stored ETag is sent back and the server answers 304.
    let second = daemon::once(Arc::clone(&p)).await.expect("second poll");
    assert_eq!((second.new_items, second.alerts), (0, 0));
    let conditional = http
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .filter(|r| {
            r.headers
                .get("if-none-match")
                .is_some_and(|v| v == "\"v1\"")
        })
        .count();
    assert_eq!(conditional, 1);

    // The feed gains one matching item and one decoy.
    let updated = String::from_utf8(fixture("rss20.xml"))
        .expect("utf-8")
        .replacen(
            "<item>",
            "<item><title>NATO allies meet in Brussels</title><guid>new-1</guid></item>\
         <item><title>Natomas bakery opens</title><guid>new-2</guid></item><item>",
            1,
        );
    http.reset().await;
    serve_feed(&http, "/news", updated.into_bytes(), "\"v2\"", "text/xml").await;
    let third = daemon::once(Arc::clone(&p)).await.expect("third poll");
    assert_eq!(
        (third.new_items, third.alerts, third.delivery.sent),
        (2, 1, 1)
    );
    let message = smtp.next_message();
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("[newshound] talks: NATO allies meet in Brussels")
    );
    let fourth = daemon::once(p).await.expect("fourth poll");
    assert_eq!(fourth.alerts, 0, "nothing is alerted twice");
    assert!(smtp.drain().is_empty());
}

#[tokio::test]
async fn a_failing_feed_is_recorded_and_does_not_stop_the_others() {
    support::init();
    let http = MockServer::start().await;
    serve_feed(&http, "/good", fixture("rss20.xml"), "\"g\"", "text/xml").await;
    serve_feed(
        &http,
        "/html",
        fixture("not-a-feed.html"),
        "\"h\"",
        "text/html",
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&http)
        .await;
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "{}[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            feeds_section(&http, &["/broken", "/html", "/good"])
        ),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!((report.feeds_ok, report.feeds_failed), (1, 2));
    assert_eq!(report.delivery.sent, 1);
    let broken = p
        .store()
        .feed_state(&FeedId("broken".into()))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(broken.last_error_kind.as_deref(), Some("http_status"));
    assert_eq!(broken.consecutive_failures, 1);
    let html = p
        .store()
        .feed_state(&FeedId("html".into()))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(html.last_error_kind.as_deref(), Some("not_a_feed"));
    let messages = support::maildir_messages(&config.dir.path().join("alerts"));
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("Security Demands"));

    // Still broken next time: counted again, and the good feed is unaffected.
    let again = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!((again.feeds_ok, again.feeds_failed), (1, 2));
    let broken = p
        .store()
        .feed_state(&FeedId("broken".into()))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(broken.consecutive_failures, 2);
}

#[tokio::test]
async fn an_alert_refused_by_smtp_is_retried_and_arrives_once_smtp_accepts() {
    support::init();
    let (smtp, _http, _config, p) = news_to_email(SmtpMode::TempFail, "").await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.retrying, 1, "{report:?}");
    assert_eq!(p.store().outbox_counts().await.expect("counts").pending, 1);

    // Not due yet: the backoff holds it.
    assert_eq!(p.dispatch_due(Utc::now()).await.expect("dispatch").sent, 0);

    smtp.set_mode(SmtpMode::Accept);
    // The first retry waits 30 s plus up to a fifth of jitter.
    let later = Utc::now() + chrono::Duration::seconds(37);
    let report = p.dispatch_due(later).await.expect("dispatch");
    assert_eq!(report.sent, 1);
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .expect("subject")
            .contains("Security Demands")
    );
    assert_eq!(
        p.store().outbox_counts().await.expect("counts"),
        OutboxCounts {
            sent: 1,
            ..OutboxCounts::default()
        }
    );
}

#[tokio::test]
async fn a_permanent_smtp_rejection_becomes_a_dead_letter() {
    support::init();
    let (_smtp, _http, _config, p) = news_to_email(SmtpMode::Reject, "").await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(report.delivery.dead, 1, "{report:?}");
    let dead = p.store().dead_letters().await.expect("query");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].2.contains("550"), "{dead:?}");
}

#[tokio::test]
async fn retries_stop_after_the_configured_attempts_and_the_alert_is_kept() {
    support::init();
    let (_smtp, _http, _config, p) =
        news_to_email(SmtpMode::TempFail, "delivery_attempts = 3").await;
    daemon::once(Arc::clone(&p)).await.expect("once runs");
    let mut at = Utc::now();
    for _ in 0..2 {
        at += chrono::Duration::hours(2);
        p.dispatch_due(at).await.expect("dispatch");
    }
    let counts = p.store().outbox_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.dead), (0, 1));
    assert!(
        p.store().dead_letters().await.expect("query")[0]
            .2
            .contains("451")
    );
}

#[tokio::test]
async fn a_title_cannot_inject_mail_headers_or_recipients() {
    support::init();
    let smtp = SmtpServer::start();
    let http = MockServer::start().await;
    let feed = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>x</title>\
        <item><guid>evil-1</guid><title>NATO&#13;&#10;Bcc: victim@example.org&#13;&#10;X-Injected: yes</title>\
        <description>NATO</description></item></channel></rss>";
    serve_feed(
        &http,
        "/evil",
        feed.as_bytes().to_vec(),
        "\"e\"",
        "text/xml",
    )
    .await;
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "{}{}{EMAIL_RULE}",
            smtp.config_section(),
            feeds_section(&http, &["/evil"])
        ),
    );
    daemon::once(pipeline(&config).await)
        .await
        .expect("once runs");
    let message = smtp.next_message();
    assert_eq!(message.to, ["me@example.org"], "no extra recipient");
    let names: Vec<String> = message
        .headers()
        .iter()
        .filter_map(|h| h.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
        .collect();
    assert!(!names.contains(&"bcc".to_string()), "{names:?}");
    assert!(!names.contains(&"x-injected".to_string()), "{names:?}");
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("[newshound] talks: NATO Bcc: victim@example.org X-Injected: yes")
    );
}

#[tokio::test]
async fn webhooks_get_the_json_object_and_failures_are_classified() {
    support::init();
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ok"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "120"))
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&hooks)
        .await;
    let channels = ["ok", "busy", "gone"]
        .iter()
        .map(|c| {
            format!(
                "[channels.{c}]\ntype = \"webhook\"\nurl = \"{}/{c}\"\nsecret_env = \"TEST_WEBHOOK_SECRET\"\n\n",
                hooks.uri()
            )
        })
        .collect::<String>();
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "{}{channels}[[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\", \"NATO\"]\nchannels = [\"ok\", \"busy\", \"gone\"]\n",
            feeds_section(&http, &["/news"])
        ),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(
        (
            report.delivery.sent,
            report.delivery.retrying,
            report.delivery.dead
        ),
        (1, 1, 1),
        "2xx sent, 503 retried, 404 dead"
    );
    let requests = hooks.received_requests().await.expect("recording");
    let ok = requests
        .iter()
        .find(|r| r.url.path() == "/ok")
        .expect("POST to /ok");
    // Signed per Standard Webhooks: v1,base64(HMAC-SHA256(id.timestamp.body)).
    let head = |name: &str| {
        ok.headers
            .get(name)
            .expect(name)
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let (id, timestamp) = (head("webhook-id"), head("webhook-timestamp"));
    let key = {
        use base64::Engine;
        let encoded = support::WEBHOOK_SECRET.trim_start_matches("whsec_");
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("key")
    };
    let body_text = std::str::from_utf8(&ok.body).expect("utf-8");
    assert_eq!(
        head("webhook-signature"),
        newshound::notify::message::sign(&key, &id, timestamp.parse().expect("seconds"), body_text)
    );

    // The 503 said Retry-After: 120, longer than the 30 s backoff; the retry carries
    // the same webhook-id, so the receiver can drop a duplicate.
    let now = chrono::Utc::now();
    let early = p
        .dispatch_due(now + chrono::Duration::seconds(60))
        .await
        .expect("dispatch");
    assert_eq!(early.retrying, 0, "not due before Retry-After");
    let later = p
        .dispatch_due(now + chrono::Duration::seconds(125))
        .await
        .expect("dispatch");
    assert_eq!(later.retrying, 1);
    let busy_ids: Vec<String> = hooks
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .filter(|r| r.url.path() == "/busy")
        .map(|r| {
            r.headers
                .get("webhook-id")
                .expect("id")
                .to_str()
                .expect("ascii")
                .to_owned()
        })
        .collect();
    assert_eq!(busy_ids.len(), 2);
    assert_eq!(busy_ids[0], busy_ids[1]);
    let body: serde_json::Value = serde_json::from_slice(&ok.body).expect("json body");
    assert_eq!(body["feed"], "news");
    assert_eq!(body["key"], "mt-76116");
    assert_eq!(
        body["title"],
        "Russia, U.S. Agree to Talk Security Demands Next Week"
    );
    assert_eq!(body["published"], "2022-01-21T11:35:00Z");
    assert_eq!(body["rules"], serde_json::json!(["talks"]));
    assert_eq!(body["terms"], serde_json::json!(["Lavrov", "NATO"]));
    assert!(
        body["snippet"]
            .as_str()
            .expect("snippet")
            .contains("Lavrov")
    );
}

#[tokio::test]
async fn a_query_rule_alerts_with_its_terms_highlighted() {
    support::init();
    let smtp = SmtpServer::start();
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let rules = r#"
[lists]
places = ["Geneva", "Vienna"]

[channels.me]
type = "email"
to = ["me@example.org"]

[[rules]]
name = "geneva-talks"
query = '"Sergei Lavrov" NEAR/8 Blinken AND @places AND NOT Kyiv AND title:/security\s+demands/'
channels = ["me"]
"#;
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "{}{}{rules}",
            smtp.config_section(),
            feeds_section(&http, &["/news"])
        ),
    );
    let report = daemon::once(pipeline(&config).await)
        .await
        .expect("once runs");
    assert_eq!(report.delivery.sent, 1, "{report:?}");
    let message = smtp.next_message();
    let body = message.decoded();
    assert!(
        body.contains("Foreign Minister *Sergei Lavrov* and U.S. Secretary of State Antony *Blinken* met in *Geneva*"),
        "{body}"
    );
    assert!(body.contains("<mark>Sergei Lavrov</mark>"), "{body}");
    assert!(
        body.contains("Matched: Sergei Lavrov, Blinken, Geneva, /security\\s+demands/"),
        "{body}"
    );
    assert!(smtp.drain().is_empty());
}

#[tokio::test]
async fn feeds_of_one_host_are_fetched_at_most_two_at_a_time() {
    support::init();
    for (per_host, most) in [(None, 2), (Some(6), 6)] {
        let probe =
            support::ConcurrencyProbe::start(fixture("rss20.xml"), Duration::from_millis(300))
                .await;
        let feeds: String = (0..6)
            .map(|i| {
                format!(
                    "[[feeds]]\nname = \"f{i}\"\nurl = \"{}/feed/{i}\"\n\n",
                    probe.uri
                )
            })
            .collect();
        let config = TestConfig::write(
            &per_host.map_or(String::new(), |n| format!("max_fetches_per_host = {n}")),
            &format!(
                "{feeds}[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
                 [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n"
            ),
        );
        let report = daemon::once(pipeline(&config).await)
            .await
            .expect("once runs");
        assert_eq!(report.feeds_ok, 6);
        assert_eq!(probe.served(), 6);
        assert_eq!(
            probe.most_at_once(),
            most,
            "max_fetches_per_host = {per_host:?}"
        );
    }
}

#[tokio::test]
async fn the_publisher_interval_is_the_longer_of_ttl_and_max_age() {
    support::init();
    let http = MockServer::start().await;
    let body = String::from_utf8(fixture("rss20.xml"))
        .expect("utf-8")
        .replacen("<channel>", "<channel><ttl>30</ttl>", 1);
    Mock::given(method("GET"))
        .and(path("/news"))
        .and(header("if-none-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304).insert_header("cache-control", "max-age=7200"))
        .with_priority(1)
        .mount(&http)
        .await;
    Mock::given(method("GET"))
        .and(path("/news"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"v1\"")
                .insert_header("cache-control", "public, max-age=900")
                .set_body_string(body),
        )
        .with_priority(2)
        .mount(&http)
        .await;
    let config = TestConfig::write(
        "",
        &format!(
            "{}[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            feeds_section(&http, &["/news"])
        ),
    );
    let p = pipeline(&config).await;
    let feed = p.config().feeds[0].clone();
    let first = p.poll(&feed).await.expect("polled");
    assert_eq!(
        first.publisher_interval,
        Some(Duration::from_secs(30 * 60)),
        "ttl 30 min > max-age 15 min"
    );
    let second = p.poll(&feed).await.expect("polled");
    assert!(second.not_modified);
    assert_eq!(second.publisher_interval, Some(Duration::from_secs(7200)));
}

#[tokio::test]
async fn feed_entries_with_the_same_url_are_fetched_once() {
    support::init();
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let url = format!("{}/news", http.uri());
    let entry = |name: &str| format!("[[feeds]]\nname = \"{name}\"\nurl = \"{url}\"\n\n");
    let rest = "[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
                [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n";
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!("{}{}{rest}", entry("desk-a"), entry("desk-b")),
    );
    let report = daemon::once(pipeline(&config).await)
        .await
        .expect("once runs");
    assert_eq!(
        (report.feeds_ok, report.new_items, report.alerts),
        (2, 8, 2)
    );
    assert_eq!(http.received_requests().await.expect("recording").len(), 1);

    // Both entries now hold the same ETag: the next poll is one conditional GET.
    let again = daemon::once(pipeline(&config).await)
        .await
        .expect("once runs");
    assert_eq!(again.new_items, 0);
    let requests = http.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 2);
    assert!(requests[1].headers.get("if-none-match").is_some());

    // A third entry for the same URL joins: its first poll must not be hidden by a
    // 304 answered to the others' ETag, so this GET is unconditional.
    let text = format!(
        "[daemon]\nstate_dir = \"state\"\nfirst_poll = \"alert\"\n{}{}{}{rest}",
        entry("desk-a"),
        entry("desk-b"),
        entry("desk-c")
    );
    std::fs::write(&config.path, text).expect("rewrite config");
    let joined = daemon::once(pipeline(&config).await)
        .await
        .expect("once runs");
    assert_eq!(
        (joined.feeds_ok, joined.new_items, joined.alerts),
        (3, 4, 1)
    );
    let requests = http.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 3);
    assert!(requests[2].headers.get("if-none-match").is_none());
}

#[tokio::test]
async fn a_broken_feed_is_announced_once_and_its_recovery_once() {
    support::init();
    let http = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/news"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&http)
        .await;
    let config = TestConfig::write(
        "health_channel = \"ops\"\nbroken_after_failures = 2",
        &format!(
            "{}[channels.ops]\ntype = \"maildir\"\npath = \"ops\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            feeds_section(&http, &["/news"])
        ),
    );
    let ops = config.dir.path().join("ops");
    let p = pipeline(&config).await;
    for expected in [0, 1, 1, 1] {
        daemon::once(Arc::clone(&p)).await.expect("once runs");
        assert_eq!(
            support::maildir_messages(&ops).len(),
            expected,
            "never one per poll"
        );
    }
    let broken = support::maildir_messages(&ops).remove(0);
    assert!(
        broken
            .contains("Subject: [newshound] feed-health: feed news is broken: server answered 500"),
        "{broken}"
    );
    let state = p
        .store()
        .feed_state(&FeedId("news".into()))
        .await
        .expect("query")
        .expect("row");
    assert!(state.broken_since.is_some());

    http.reset().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    for _ in 0..2 {
        daemon::once(Arc::clone(&p)).await.expect("once runs");
    }
    let messages = support::maildir_messages(&ops);
    assert_eq!(messages.len(), 2, "one break, one recovery");
    assert!(messages.iter().any(|m| m.contains("feed news works again")));
    let state = p
        .store()
        .feed_state(&FeedId("news".into()))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        (
            state.broken_since,
            state.failing_since,
            state.consecutive_failures
        ),
        (None, None, 0)
    );
}

#[tokio::test]
async fn a_dripping_server_is_abandoned_at_the_timeout_without_holding_up_others() {
    support::init();
    let drip = support::start_drip(Duration::from_millis(200)).await;
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let config = TestConfig::write(
        "first_poll = \"alert\"\nfetch_timeout = \"1s\"",
        &format!(
            "[[feeds]]\nname = \"drip\"\nurl = \"{drip}/feed\"\n\n{}\
             [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            feeds_section(&http, &["/news"])
        ),
    );
    let p = pipeline(&config).await;
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(
        (report.feeds_ok, report.feeds_failed, report.delivery.sent),
        (1, 1, 1)
    );
    let drip = p
        .store()
        .feed_state(&FeedId("drip".into()))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(drip.last_error_kind.as_deref(), Some("timeout"));
}

/// Regression: a wrong SMTP password made lettre report 535 as permanent, and every
/// alert became a dead letter; the password is our configuration, so they wait.
#[tokio::test]
async fn a_refused_smtp_login_is_retried_not_dead_lettered() {
    support::init();
    let smtp = SmtpServer::start();
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let section = smtp.config_section().replace(
        "password_env = \"TEST_SMTP_PASSWORD\"",
        "password_env = \"WRONG_PASSWORD\"",
    );
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!("{section}{}{EMAIL_RULE}", feeds_section(&http, &["/news"])),
    );
    let mut env = support::test_env();
    env.insert("WRONG_PASSWORD".into(), "not-it".into());
    let loaded = newshound::config::Config::load(&config.path, &env).expect("config");
    let p = Arc::new(Pipeline::new(loaded).await.expect("pipeline"));
    let report = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!(
        (report.delivery.retrying, report.delivery.dead),
        (1, 0),
        "{report:?}"
    );
    assert!(smtp.drain().is_empty());
}

/// A server that answered 429 with `Retry-After: 3600` is not asked again by the next
/// `once` within the hour: the feed is skipped, and the report says until when.
#[tokio::test]
async fn once_skips_a_feed_whose_server_asked_to_wait() {
    support::init();
    let http = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&http)
        .await;
    serve_feed(&http, "/good", fixture("rss20.xml"), "\"g\"", "text/xml").await;
    let config = TestConfig::write(
        "",
        &format!(
            "{}[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            feeds_section(&http, &["/busy", "/good"])
        ),
    );
    let p = pipeline(&config).await;
    let first = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!((first.feeds_ok, first.feeds_failed), (1, 1));
    assert!(first.skipped.is_empty());

    let again = daemon::once(Arc::clone(&p)).await.expect("once runs");
    assert_eq!((again.feeds_ok, again.feeds_failed), (1, 0));
    let until = p
        .store()
        .feed_state(&FeedId("busy".into()))
        .await
        .expect("query")
        .expect("row")
        .retry_after_until
        .expect("the wait is stored");
    assert_eq!(again.skipped, [("busy".to_owned(), until)]);
    let asked = http.received_requests().await.expect("recording");
    let busy = asked.iter().filter(|r| r.url.path() == "/busy").count();
    assert_eq!(busy, 1, "asked once, not again within the hour");
}

/// `once` mails what the fast feeds matched while a slow feed is still being fetched:
/// the slow server answers only once the first alert has reached the relay (or after
/// the relay's wait, which fails the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_mails_the_first_alerts_while_a_slow_feed_is_still_fetched() {
    use std::io::{BufRead, BufReader, Write};
    support::init();
    let smtp = SmtpServer::start();
    let http = MockServer::start().await;
    serve_feed(&http, "/news", fixture("rss20.xml"), "\"v1\"", "text/xml").await;
    let slow = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let slow_url = format!("http://{}/slow.xml", slow.local_addr().expect("address"));
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "{}{}[[feeds]]\nname = \"slow\"\nurl = \"{slow_url}\"\n\n{EMAIL_RULE}",
            smtp.config_section(),
            feeds_section(&http, &["/news"])
        ),
    );
    let server = std::thread::spawn(move || {
        let (stream, _) = slow.accept().expect("the slow feed is fetched");
        let mut request = BufReader::new(stream);
        let mut line = String::new();
        while request.read_line(&mut line).expect("request") > 2 {
            line.clear();
        }
        let first = smtp.try_next_message();
        let body = "<rss version=\"2.0\"><channel><title>Slow</title>\
                    <item><guid>w1</guid><title>Weather</title></item></channel></rss>";
        write!(
            request.get_mut(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("answer");
        (first, smtp)
    });
    let report = daemon::once(pipeline(&config).await)
        .await
        .expect("once runs");
    let (first, smtp) = server.join().expect("slow server");
    let first = first.expect("an alert reached the relay before the slow feed answered");
    assert!(
        first
            .header("Subject")
            .is_some_and(|s| s.starts_with("[newshound] talks: ")),
        "{:?}",
        first.header("Subject")
    );
    assert_eq!((report.feeds_ok, report.feeds_failed), (2, 0), "{report:?}");
    assert_eq!(report.delivery.sent, 1, "{report:?}");
    assert!(smtp.drain().is_empty(), "the alert arrives once");
}
