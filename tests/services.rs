//! Chat and push service channels against a local HTTP server that checks each
//! request as the service documents it (path, method, headers, JSON fields) and
//! answers as the service does: success, 429 with its wait, 401, 5xx.

mod support;

use std::time::Duration;

use newshound::config::Config;
use newshound::model::{Alert, FeedId, ItemKey, Priority, Snippet};
use newshound::notify::{DeliveryError, Notifier};
use newshound::render::MessageKind;
use serde_json::{Value, json};
use support::TestConfig;
use wiremock::matchers::{body_partial_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The token every test service is given, from a file.
const TOKEN: &str = "123456:secret-token";

fn alert(key: &str, title: &str, priority: Priority) -> Alert {
    Alert {
        feed: FeedId("wire".into()),
        key: ItemKey(key.into()),
        title: title.into(),
        link: Some(format!("https://news.example.org/{key}")),
        published: None,
        rules: vec!["talks".into()],
        terms: vec!["Lavrov".into()],
        snippet: Snippet {
            text: "Lavrov met the envoy <quietly> & briefly.".into(),
            highlights: vec![(0, 6)],
        },
        why: Vec::new(),
        summary_html: None,
        also_in: Vec::new(),
        sketch: None,
        gist: None,
        priority,
        feedback: Vec::new(),
    }
}

/// A config with the channel `out` written as `channel` (a token in the file
/// `token`, and `files` beside it), and its notifier.
fn channel(channel: &str, files: &[(&str, &str)]) -> (TestConfig, Config, Notifier) {
    let config = TestConfig::write("", &format!("[channels.out]\n{channel}\n"));
    std::fs::write(config.dir.path().join("token"), format!("{TOKEN}\n")).expect("token file");
    for (name, text) in files {
        std::fs::write(config.dir.path().join(name), text).expect("file");
    }
    let loaded = config.load();
    let notifier = Notifier::new(loaded.smtp.as_ref()).expect("notifier");
    (config, loaded, notifier)
}

async fn deliver(
    (config, notifier): (&Config, &Notifier),
    alerts: &[Alert],
    kind: &MessageKind,
) -> Result<String, DeliveryError> {
    let out = &config.channels["out"];
    notifier
        .deliver("out", &out.transport, &out.templates, alerts, kind)
        .await
}

/// The JSON bodies the server received.
async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect()
}

/// Answers every request with `status` and `body`, replacing what was mounted.
async fn answer(server: &MockServer, status: u16, body: Value) {
    server.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

fn retry(error: DeliveryError) -> (bool, Option<Duration>) {
    (error.retryable, error.retry_after)
}

/// The answers every service may give, and their retry classes: 429 with
/// `Retry-After` waits that long, 401 is a dead letter, 500 is tried again.
async fn answers_are_classed(server: &MockServer, to: (&Config, &Notifier)) {
    let one = [alert("any", "Title", Priority::Normal)];
    server.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .mount(server)
        .await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("429");
    assert_eq!(retry(error), (true, Some(Duration::from_secs(30))));
    answer(server, 401, json!({"error": "unauthorized"})).await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("401");
    assert_eq!(retry(error), (false, None));
    answer(server, 500, json!({})).await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("500");
    assert_eq!(retry(error), (true, None));
}

#[tokio::test]
async fn telegram_gets_escaped_html_without_preview_and_its_waits_are_honoured() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{TOKEN}/sendMessage")))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({
            "chat_id": -1001234,
            "parse_mode": "HTML",
            "link_preview_options": { "is_disabled": true },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {}})))
        .mount(&server)
        .await;
    let (_dir, config, notifier) = channel(
        &format!(
            "type = \"telegram\"\ntoken_file = \"token\"\nchat_id = -1001234\napi_url = \"{}\"",
            server.uri()
        ),
        &[],
    );
    let to = (&config, &notifier);
    let hostile = alert("a1", "<b>Fake</b> & co", Priority::Low);
    deliver(to, &[hostile], &MessageKind::Alert)
        .await
        .expect("sent");
    let sent = &bodies(&server).await[0];
    let text = sent["text"].as_str().expect("text");
    assert!(text.contains("&lt;b&gt;Fake&lt;/b&gt; &amp; co"), "{text}");
    assert!(
        text.contains("<b>Lavrov</b> met the envoy &lt;quietly&gt; &amp; briefly."),
        "{text}"
    );
    assert!(
        text.contains("<a href=\"https://news.example.org/a1\">"),
        "{text}"
    );
    assert_eq!(sent["disable_notification"], true, "low priority is silent");

    let digest: Vec<Alert> = (0..3)
        .map(|i| alert(&format!("d{i}"), &format!("Story {i}"), Priority::Normal))
        .collect();
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let period = MessageKind::Digest {
        period: "daily 08:00".into(),
    };
    deliver(to, &digest, &period).await.expect("digest sent");
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 1, "a digest is one message");
    let text = sent[0]["text"].as_str().expect("text");
    assert!(text.contains("3 alerts (daily 08:00)"), "{text}");
    assert_eq!(text.matches("• <a href=").count(), 3, "{text}");
    assert!(sent[0].get("disable_notification").is_none());

    let one = [alert("a2", "Title", Priority::Normal)];
    answer(
        &server,
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7",
               "parameters": {"retry_after": 7}}),
    )
    .await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("429");
    assert!(!error.message.contains(TOKEN), "{}", error.message);
    assert!(
        error.message.contains("Too Many Requests"),
        "{}",
        error.message
    );
    assert_eq!(retry(error), (true, Some(Duration::from_secs(7))));
    answer(
        &server,
        401,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
    )
    .await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("401");
    assert_eq!(retry(error), (false, None), "a wrong token stays wrong");
    answer(&server, 502, json!({})).await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("502");
    assert_eq!(retry(error), (true, None));
    answers_are_classed(&server, to).await;
}

#[tokio::test]
async fn matrix_gets_one_transaction_per_message_so_a_redelivery_is_the_same_event() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path_regex(
            r"^/_matrix/client/v3/rooms/%21room%3Aexample\.org/send/m\.room\.message/msg_[0-9a-f]{32}$",
        ))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_partial_json(json!({
            "msgtype": "m.text",
            "format": "org.matrix.custom.html",
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"event_id": "$e1"})))
        .mount(&server)
        .await;
    let (_dir, config, notifier) = channel(
        &format!(
            "type = \"matrix\"\nhomeserver = \"{}\"\nroom_id = \"!room:example.org\"\n\
         access_token_file = \"token\"",
            server.uri()
        ),
        &[],
    );
    let to = (&config, &notifier);
    let one = [alert("m1", "<i>Title</i>", Priority::Normal)];
    for _ in 0..2 {
        deliver(to, &one, &MessageKind::Alert).await.expect("sent");
    }
    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].url.path(),
        requests[1].url.path(),
        "the same transaction id both times"
    );
    let sent: Value = serde_json::from_slice(&requests[0].body).expect("json");
    assert!(
        sent["body"]
            .as_str()
            .is_some_and(|b| b.contains("<i>Title</i>")),
        "the plain body is plain: {sent}"
    );
    assert!(
        sent["formatted_body"]
            .as_str()
            .is_some_and(|b| b.contains("&lt;i&gt;Title&lt;/i&gt;")),
        "{sent}"
    );

    answer(
        &server,
        429,
        json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 2000}),
    )
    .await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("429");
    assert!(!error.message.contains(TOKEN));
    assert_eq!(retry(error), (true, Some(Duration::from_secs(2))));
    answer(
        &server,
        401,
        json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}),
    )
    .await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("401");
    assert_eq!(retry(error), (false, None));
    answers_are_classed(&server, to).await;
}

#[tokio::test]
async fn gotify_gets_markdown_with_the_rules_priority() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/gotify/message"))
        .and(header("x-gotify-key", TOKEN))
        .and(body_partial_json(json!({
            "priority": 8,
            "extras": {
                "client::display": { "contentType": "text/markdown" },
                "client::notification": { "click": { "url": "https://news.example.org/g1" } },
            },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let (_dir, config, notifier) = channel(
        &format!(
            "type = \"gotify\"\nurl = \"{}/gotify/\"\ntoken_file = \"token\"",
            server.uri()
        ),
        &[],
    );
    let to = (&config, &notifier);
    let urgent = [alert("g1", "Summit [live]", Priority::High)];
    deliver(to, &urgent, &MessageKind::Alert)
        .await
        .expect("sent");
    let sent = &bodies(&server).await[0];
    assert_eq!(sent["title"], "[newshound] talks: Summit [live]");
    assert!(
        sent["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("**Lavrov** met") && m.contains("[Summit \\[live\\]]")),
        "{sent}"
    );
    answer(
        &server,
        401,
        json!({"error": "Unauthorized", "errorCode": 401}),
    )
    .await;
    let error = deliver(to, &urgent, &MessageKind::Alert)
        .await
        .expect_err("401");
    assert_eq!(retry(error), (false, None));
    answer(&server, 503, json!({})).await;
    let error = deliver(to, &urgent, &MessageKind::Alert)
        .await
        .expect_err("503");
    assert!(error.retryable);
    answers_are_classed(&server, to).await;
}

#[tokio::test]
async fn pushover_gets_its_fields_and_its_4xx_are_not_retried() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/messages.json"))
        .and(body_partial_json(json!({
            "token": TOKEN,
            "user": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG",
            "html": 1,
            "priority": -1,
            "url": "https://news.example.org/p1",
        })))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": 1, "request": "r1"})),
        )
        .mount(&server)
        .await;
    let (_dir, config, notifier) = channel(
        &format!(
            "type = \"pushover\"\nuser = \"uQiRzpo4DXghDmr9QzzfQu27cmVRsG\"\ntoken_file = \"token\"\n\
         api_url = \"{}\"",
            server.uri()
        ),
        &[],
    );
    let to = (&config, &notifier);
    let quiet = [alert("p1", &"Long title ".repeat(40), Priority::Low)];
    deliver(to, &quiet, &MessageKind::Alert)
        .await
        .expect("sent");
    let sent = &bodies(&server).await[0];
    assert!(
        sent["title"]
            .as_str()
            .is_some_and(|t| t.chars().count() <= 250)
    );
    assert!(
        sent["message"]
            .as_str()
            .is_some_and(|m| m.chars().count() <= 1024)
    );
    answer(
        &server,
        400,
        json!({"user": "invalid", "errors": ["user identifier is invalid"], "status": 0}),
    )
    .await;
    let error = deliver(to, &quiet, &MessageKind::Alert)
        .await
        .expect_err("400");
    assert!(
        error.message.contains("user identifier is invalid"),
        "{}",
        error.message
    );
    assert_eq!(retry(error), (false, None));
    answer(&server, 429, json!({"status": 0})).await;
    let error = deliver(to, &quiet, &MessageKind::Alert)
        .await
        .expect_err("429");
    assert!(error.retryable);
    answers_are_classed(&server, to).await;
}

#[tokio::test]
async fn apprise_gets_a_notify_with_its_urls_and_tag() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/notify/newsroom"))
        .and(body_partial_json(json!({
            "format": "markdown",
            "type": "info",
            "tag": "desk",
            "urls": "tgram://bot/chat",
        })))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (_dir, config, notifier) = channel(
        &format!(
            "type = \"apprise\"\nurl = \"{}/notify/newsroom\"\ntag = \"desk\"\n\
         urls = {{ file = \"urls\" }}",
            server.uri()
        ),
        &[("urls", "tgram://bot/chat")],
    );
    let to = (&config, &notifier);
    let one = [alert("x1", "Title", Priority::Normal)];
    deliver(to, &one, &MessageKind::Alert).await.expect("sent");
    assert_eq!(
        bodies(&server).await[0]["title"],
        "[newshound] talks: Title"
    );
    answer(
        &server,
        424,
        json!({"error": "one or more notifications could not be sent"}),
    )
    .await;
    let error = deliver(to, &one, &MessageKind::Alert)
        .await
        .expect_err("424");
    assert!(error.retryable, "a service behind apprise failed: later");
    answers_are_classed(&server, to).await;
}

/// Slack's and Discord's hook URLs hold their secret in the path; errors (kept in the
/// store, shown by `status` and the status page) name the receiver without it.
#[tokio::test]
async fn a_hook_urls_secret_stays_out_of_its_errors() {
    support::init();
    let server = MockServer::start().await;
    answer(&server, 404, json!({"error": "no_service"})).await;
    let (_dir, config, notifier) = channel(
        &format!(
            "type = \"webhook\"\nformat = \"slack\"\nurl = \"{}/services/T0/B0/SECRETXYZ\"",
            server.uri()
        ),
        &[],
    );
    let one = [alert("s1", "Title", Priority::Normal)];
    let error = deliver((&config, &notifier), &one, &MessageKind::Alert)
        .await
        .expect_err("404");
    assert!(!error.message.contains("SECRETXYZ"), "{}", error.message);
    assert_eq!(
        error.message,
        format!(
            "webhook {}/… answered 404 Not Found: {{\"error\":\"no_service\"}}",
            server.uri()
        )
    );
}
