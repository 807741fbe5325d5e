//! `fetch_article`: a feed of teasers whose keywords are only on the article pages,
//! served by a real HTTP server with pages that work, 404, hang, are huge or are not
//! HTML; alerts to a webhook receiver and a Maildir, state in a real SQLite file.

mod support;

use std::sync::Arc;
use std::time::Duration;

use newshound::daemon::{self, Pipeline};
use newshound::model::FeedId;
use support::{TestConfig, maildir_messages, serve_feed};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An RSS feed of teasers: (guid, title, link path) each, with a one-line summary
/// that names no one.
fn teasers(server: &MockServer, items: &[(&str, &str, &str)]) -> Vec<u8> {
    let items: String = items
        .iter()
        .map(|(guid, title, link)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title>\
                 <link>{}{link}</link><description>Read more on our site.</description></item>",
                server.uri()
            )
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>Teasers</title>{items}</channel></rss>")
        .into_bytes()
}

/// An article page: navigation and a footer around an article whose last paragraph
/// is `news`.
fn article_page(news: &str) -> String {
    let paragraphs: String = (0..8)
        .map(|i| format!("<p>The ministers spoke at length about the talks, part {i}.</p>"))
        .collect();
    format!(
        "<!doctype html><html><head><title>Talks</title></head><body>\
         <nav><a href=/>Home</a> <a href=/world>World</a></nav>\
         <article><h1>Talks</h1>{paragraphs}<p>{news}</p></article>\
         <footer>Copyright the publisher</footer></body></html>"
    )
}

async fn page(server: &MockServer, route: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(answer)
        .mount(server)
        .await;
}

fn html(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/html; charset=utf-8")
}

/// How many requests the server had for `route`.
async fn asked(server: &MockServer, route: &str) -> usize {
    server
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .filter(|r| r.url.path() == route)
        .count()
}

#[tokio::test]
async fn a_keyword_only_in_the_article_is_alerted_and_unreadable_pages_fall_back() {
    support::init();
    let server = MockServer::start().await;
    let feed = teasers(
        &server,
        &[
            ("a", "Ministers meet", "/a"),
            ("b", "NATO summit", "/missing"),
            ("c", "Slow page", "/slow"),
            ("d", "Huge page", "/huge"),
            ("e", "A document", "/doc.pdf"),
        ],
    );
    serve_feed(&server, "/rss", feed, "\"v1\"", "application/rss+xml").await;
    page(&server, "/a", html(article_page("Lavrov met the envoy."))).await;
    page(&server, "/missing", ResponseTemplate::new(404)).await;
    page(
        &server,
        "/slow",
        html(article_page("Lavrov, late.")).set_delay(Duration::from_secs(5)),
    )
    .await;
    let huge = article_page(&format!("Lavrov. {}", "Words of padding. ".repeat(10_000)));
    page(&server, "/huge", html(huge)).await;
    page(
        &server,
        "/doc.pdf",
        ResponseTemplate::new(200).set_body_raw("%PDF-1.7 Lavrov", "application/pdf"),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let boxes = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::write(
        "first_poll = \"alert\"\nfetch_timeout = \"1s\"\nmax_feed_bytes = 100000",
        &format!(
            "[[feeds]]\nname = \"teasers\"\nurl = \"{uri}/rss\"\nfetch_article = true\n\n\
             [channels.hook]\ntype = \"webhook\"\nurl = \"{uri}/hook\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"{inbox}\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\", \"NATO\"]\nchannels = [\"hook\", \"inbox\"]\n\n\
             [[rules]]\nname = \"pages\"\nquery = \"article:envoy\"\nchannels = [\"hook\"]\n",
            uri = server.uri(),
            inbox = boxes.path().join("inbox").display(),
        ),
    );
    let pipeline = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let report = daemon::once(Arc::clone(&pipeline)).await.expect("once");
    assert_eq!(
        (report.new_items, report.feeds_failed),
        (5, 0),
        "{report:?}"
    );

    let hooks: Vec<serde_json::Value> = server
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .filter(|r| r.url.path() == "/hook")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    let mut alerted: Vec<(String, bool, Vec<String>)> = hooks
        .iter()
        .map(|h| {
            (
                h["key"].as_str().expect("key").to_owned(),
                h["only_in_article"].as_bool().unwrap_or(false),
                serde_json::from_value(h["rules"].clone()).expect("rules"),
            )
        })
        .collect();
    alerted.sort();
    assert_eq!(
        alerted,
        [
            ("a".into(), true, vec!["talks".into(), "pages".into()]),
            ("b".into(), false, vec!["talks".into()]),
        ],
        "the article's keyword alerts; a failed article falls back to the feed's text"
    );
    let a = hooks.iter().find(|h| h["key"] == "a").expect("a");
    assert!(
        a["snippet"]
            .as_str()
            .is_some_and(|s| s.contains("Lavrov met the envoy.")),
        "{a}"
    );
    let mail = maildir_messages(&boxes.path().join("inbox"));
    let about_a: Vec<&String> = mail
        .iter()
        .filter(|m| m.contains("Ministers meet"))
        .collect();
    assert_eq!(about_a.len(), 1);
    assert!(
        about_a[0].contains("only in the full article at the link"),
        "{}",
        about_a[0]
    );

    let state = pipeline
        .store()
        .feed_state(&FeedId("teasers".into()))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        state.articles_failed, 4,
        "404, timeout, too large, not HTML"
    );
    assert!(state.article_error.is_some());
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["status", "--config"])
        .arg(&config.path)
        .output()
        .expect("run status");
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("4 articles could not be read, matched on the feed's text; last: "),
        "{said}"
    );

    // The next poll brings nothing new: no article is fetched again.
    let again = daemon::once(pipeline).await.expect("once again");
    assert_eq!(again.new_items, 0);
    assert_eq!(asked(&server, "/a").await, 1);
    assert_eq!(asked(&server, "/missing").await, 1, "no retry storm");
}

/// Articles are fetched only for items that may be alerted: not on a first poll that
/// marks everything seen, and not for items older than `max_age`. A relative link is
/// the feed's site's.
#[tokio::test]
async fn articles_are_fetched_only_for_items_that_may_alert() {
    support::init();
    let server = MockServer::start().await;
    let feed = format!(
        "<rss version=\"2.0\"><channel><title>T</title>\
         <item><guid>old</guid><title>Old</title><link>{uri}/old</link>\
         <pubDate>Mon, 01 Jan 2001 00:00:00 GMT</pubDate></item>\
         <item><guid>new</guid><title>New</title><link>/new</link></item>\
         </channel></rss>",
        uri = server.uri()
    );
    serve_feed(
        &server,
        "/rss",
        feed.into_bytes(),
        "\"v1\"",
        "application/rss+xml",
    )
    .await;
    for route in ["/old", "/new"] {
        page(&server, route, html(article_page("Lavrov met the envoy."))).await;
    }
    let boxes = tempfile::tempdir().expect("temp dir");
    let body = format!(
        "[[feeds]]\nname = \"t\"\nurl = \"{uri}/rss\"\nfetch_article = true\nmax_age = \"7d\"\n\n\
         [channels.inbox]\ntype = \"maildir\"\npath = \"{inbox}\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
        uri = server.uri(),
        inbox = boxes.path().join("inbox").display(),
    );
    let quiet = TestConfig::write("first_poll = \"mark-seen\"", &body);
    let report = daemon::once(Arc::new(
        Pipeline::new(quiet.load()).await.expect("pipeline"),
    ))
    .await
    .expect("once");
    assert_eq!((report.new_items, report.alerts), (2, 0));
    assert_eq!(asked(&server, "/new").await, 0, "a first poll marks seen");

    let alerting = TestConfig::write("first_poll = \"alert\"", &body);
    let report = daemon::once(Arc::new(
        Pipeline::new(alerting.load()).await.expect("pipeline"),
    ))
    .await
    .expect("once");
    assert_eq!((report.new_items, report.alerts), (2, 1));
    assert_eq!(asked(&server, "/new").await, 1);
    assert_eq!(asked(&server, "/old").await, 0, "too old to alert");
    let mail = maildir_messages(&boxes.path().join("inbox"));
    let link = format!("{}/new", server.uri());
    assert!(
        mail[0].contains(&link),
        "the alert's link is absolute:\n{}",
        mail[0]
    );
}
