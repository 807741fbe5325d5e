//! Fetching against a real local HTTP server: conditional GET, the body cap counted
//! after decompression, the timeout, and files on disk.

mod support;

use std::io::Write;
use std::time::Duration;

use newshound::feed::{FetchError, Fetched, Fetcher, fetch};
use newshound::model::{FeedSource, RequestOptions, Validators};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn source(server: &MockServer, route: &str) -> FeedSource {
    FeedSource::Http(format!("{}{route}", server.uri()).parse().expect("url"))
}

#[tokio::test]
async fn validators_are_returned_and_sent_back() {
    support::init();
    let server = MockServer::start().await;
    support::serve_feed(
        &server,
        "/f",
        support::fixture("rss20.xml"),
        "\"abc\"",
        "text/xml; charset=utf-8",
    )
    .await;
    let fetcher = Fetcher::new(Duration::from_secs(10), 1 << 20).expect("client");
    let first = fetcher
        .fetch(
            &source(&server, "/f"),
            &Validators::default(),
            &RequestOptions::default(),
        )
        .await
        .expect("fetched");
    let Fetched::Body {
        validators,
        content_type,
        bytes,
        moved,
        max_age,
    } = first
    else {
        panic!("expected a body");
    };
    assert_eq!(validators.etag.as_deref(), Some("\"abc\""));
    let content_type = content_type.expect("a content type");
    assert_eq!(fetch::charset_of(&content_type).as_deref(), Some("utf-8"));
    assert_eq!(
        fetch::media_type_of(&content_type).as_deref(),
        Some("text/xml")
    );
    assert_eq!(bytes, support::fixture("rss20.xml"));
    assert_eq!(moved, None);
    assert_eq!(max_age, None);
    let second = fetcher
        .fetch(
            &source(&server, "/f"),
            &validators,
            &RequestOptions::default(),
        )
        .await
        .expect("fetched");
    assert!(matches!(second, Fetched::NotModified { .. }));
    let requests = server.received_requests().await.expect("recording");
    let agent = requests[0].headers.get("user-agent").expect("user agent");
    assert!(agent.to_str().expect("ascii").starts_with("newshound/"));
}

/// Serves `body` with `content-encoding` and fetches it with a 1 MiB cap.
async fn fetch_bomb(server: &MockServer, encoding: &str, body: Vec<u8>) -> FetchError {
    Mock::given(method("GET"))
        .and(path("/bomb"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", encoding)
                .set_body_bytes(body),
        )
        .mount(server)
        .await;
    let fetcher = Fetcher::new(Duration::from_secs(10), 1 << 20).expect("client");
    fetcher
        .fetch(
            &source(server, "/bomb"),
            &Validators::default(),
            &RequestOptions::default(),
        )
        .await
        .expect_err("over the cap")
}

#[tokio::test]
async fn the_body_cap_counts_decompressed_bytes() {
    support::init();
    let server = MockServer::start().await;
    // 4 MiB of zeros compress to a few KiB: the cap must see the 4 MiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 4 << 20]).expect("compress");
    let bomb = gz.finish().expect("compress");
    assert!(bomb.len() < 64 << 10);
    let err = fetch_bomb(&server, "gzip", bomb).await;
    assert!(
        matches!(err, FetchError::TooLarge { limit } if limit == 1 << 20),
        "{err}"
    );
    assert_eq!(err.kind(), "too_large");
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_abandoned() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(Duration::from_millis(500), 1 << 20).expect("client");
    let err = fetcher
        .fetch(
            &source(&server, "/slow"),
            &Validators::default(),
            &RequestOptions::default(),
        )
        .await
        .expect_err("timed out");
    assert_eq!(err.kind(), "timeout", "{err}");
}

#[tokio::test]
async fn http_errors_and_missing_files_are_typed() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/gone"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(Duration::from_secs(5), 1 << 20).expect("client");
    let err = fetcher
        .fetch(
            &source(&server, "/gone"),
            &Validators::default(),
            &RequestOptions::default(),
        )
        .await
        .expect_err("410");
    assert_eq!(err.to_string(), "server answered 410 Gone");
    let missing = FeedSource::File("/nonexistent/feed.xml".into());
    let err = fetcher
        .fetch(&missing, &Validators::default(), &RequestOptions::default())
        .await
        .expect_err("no file");
    assert_eq!(err.kind(), "file");
    assert!(err.to_string().contains("/nonexistent/feed.xml"));
}

#[tokio::test]
async fn a_file_over_the_cap_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.xml");
    std::fs::write(&path, vec![b' '; 2048]).expect("write");
    let fetcher = Fetcher::new(Duration::from_secs(5), 1024).expect("client");
    let err = fetcher
        .fetch(
            &FeedSource::File(path),
            &Validators::default(),
            &RequestOptions::default(),
        )
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), "too_large");
}

#[tokio::test]
async fn retry_after_on_429_and_503_is_reported() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(500).insert_header("retry-after", "60"))
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(Duration::from_secs(5), 1 << 20).expect("client");
    let err = |route| {
        let fetcher = fetcher.clone();
        let source = source(&server, route);
        async move {
            fetcher
                .fetch(&source, &Validators::default(), &RequestOptions::default())
                .await
                .expect_err("an error status")
        }
    };
    let busy = err("/busy").await;
    assert_eq!(busy.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        busy.to_string(),
        "server answered 503 Service Unavailable (retry after 120s)"
    );
    assert_eq!(
        err("/limited").await.retry_after(),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        err("/broken").await.retry_after(),
        None,
        "only 429 and 503 carry it"
    );
}

async fn redirect(server: &MockServer, from: &str, status: u16, to: &str) {
    Mock::given(method("GET"))
        .and(path(from))
        .respond_with(ResponseTemplate::new(status).insert_header("location", to))
        .mount(server)
        .await;
}

#[tokio::test]
async fn redirects_are_followed_checked_and_permanent_moves_reported() {
    support::init();
    let server = MockServer::start().await;
    support::serve_feed(
        &server,
        "/new",
        support::fixture("rss20.xml"),
        "\"n\"",
        "text/xml",
    )
    .await;
    redirect(&server, "/old", 301, "/new").await;
    redirect(&server, "/temp", 302, "/old").await;
    redirect(&server, "/a", 302, "/b").await;
    redirect(&server, "/b", 302, "/a").await;
    for i in 0..7 {
        redirect(&server, &format!("/hop{i}"), 307, &format!("/hop{}", i + 1)).await;
    }
    redirect(&server, "/nowhere", 301, "").await;
    let fetcher = Fetcher::new(Duration::from_secs(5), 1 << 20).expect("client");
    let fetch = |route: &str| {
        let (fetcher, source) = (fetcher.clone(), source(&server, route));
        async move {
            fetcher
                .fetch(&source, &Validators::default(), &RequestOptions::default())
                .await
        }
    };

    let Fetched::Body { moved, bytes, .. } = fetch("/old").await.expect("followed") else {
        panic!("expected a body");
    };
    assert_eq!(bytes, support::fixture("rss20.xml"));
    assert_eq!(moved.map(|u| u.path().to_owned()).as_deref(), Some("/new"));
    let Fetched::Body { moved, .. } = fetch("/temp").await.expect("followed") else {
        panic!("expected a body");
    };
    assert_eq!(moved, None, "a temporary hop on the way is not a move");

    let looped = fetch("/a").await.expect_err("loop");
    assert_eq!(looped.kind(), "redirect");
    assert!(looped.to_string().contains("redirect loop"), "{looped}");
    let long = fetch("/hop0").await.expect_err("too many");
    assert_eq!(long.to_string(), "redirect refused: more than 5 redirects");
    assert_eq!(
        fetch("/nowhere").await.expect_err("bad location").kind(),
        "redirect"
    );
}

#[tokio::test]
async fn a_brotli_bomb_is_cut_at_the_cap() {
    support::init();
    let server = MockServer::start().await;
    let mut compressed = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut compressed, 4096, 5, 22);
        writer.write_all(&vec![b' '; 8 << 20]).expect("compress");
    }
    assert!(compressed.len() < 64 << 10);
    let err = fetch_bomb(&server, "br", compressed).await;
    assert_eq!(err.kind(), "too_large");
}

fn fetcher() -> Fetcher {
    Fetcher::new(Duration::from_secs(10), 1 << 20).expect("client")
}

/// A feed behind basic auth: the right password gets the feed, a wrong one a clear
/// 401 (`http_status`), which the scheduler backs off from like any failure.
#[tokio::test]
async fn basic_auth_and_a_required_header_are_sent_to_the_feeds_host() {
    use wiremock::matchers::header;
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/private"))
        // "reader:s3cret"
        .and(header("authorization", "Basic cmVhZGVyOnMzY3JldA=="))
        .and(header("x-api-key", "k-123"))
        .and(header("user-agent", "custom-agent/1.0"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(support::fixture("rss20.xml")))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(2)
        .mount(&server)
        .await;
    let options = |password: &str| RequestOptions {
        user_agent: Some("custom-agent/1.0".into()),
        headers: vec![("X-Api-Key".into(), "k-123".into())],
        basic_auth: Some(("reader".into(), password.into())),
        proxy: None,
    };
    let right = fetcher()
        .fetch(
            &source(&server, "/private"),
            &Validators::default(),
            &options("s3cret"),
        )
        .await
        .expect("the right password");
    assert!(matches!(right, Fetched::Body { .. }));
    let wrong = fetcher()
        .fetch(
            &source(&server, "/private"),
            &Validators::default(),
            &options("guess"),
        )
        .await
        .expect_err("a wrong password");
    assert_eq!(wrong.kind(), "http_status");
    assert_eq!(wrong.to_string(), "server answered 401 Unauthorized");
}

/// After a redirect to another host, the feed's credentials and custom headers stay
/// behind (the User-Agent goes on).
#[tokio::test]
async fn credentials_and_headers_are_not_sent_to_another_host_after_a_redirect() {
    support::init();
    let server = MockServer::start().await;
    let elsewhere = format!("http://localhost:{}/moved", server.address().port());
    Mock::given(method("GET"))
        .and(path("/start"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", elsewhere.as_str()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/moved"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(support::fixture("rss20.xml")))
        .mount(&server)
        .await;
    let options = RequestOptions {
        user_agent: Some("custom-agent/1.0".into()),
        headers: vec![("X-Api-Key".into(), "k-123".into())],
        basic_auth: Some(("reader".into(), "s3cret".into())),
        proxy: None,
    };
    let fetched = fetcher()
        .fetch(&source(&server, "/start"), &Validators::default(), &options)
        .await
        .expect("followed");
    assert!(matches!(fetched, Fetched::Body { .. }));
    let requests = server.received_requests().await.expect("recording");
    let (first, second) = (&requests[0], &requests[1]);
    assert_eq!(second.url.host_str(), Some("localhost"));
    for name in ["authorization", "x-api-key"] {
        assert!(
            first.headers.get(name).is_some(),
            "{name} to the feed's host"
        );
        assert!(
            second.headers.get(name).is_none(),
            "{name} not to another host"
        );
    }
    assert_eq!(
        second
            .headers
            .get("user-agent")
            .map(|v| v.to_str().expect("ascii")),
        Some("custom-agent/1.0")
    );
}

/// A feed with a proxy is fetched through it: a name only the proxy can reach.
#[tokio::test]
async fn a_feed_with_a_proxy_is_fetched_through_it() {
    support::init();
    let proxy = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/feed"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(support::fixture("rss20.xml")))
        .mount(&proxy)
        .await;
    let options = RequestOptions {
        proxy: Some(proxy.uri()),
        ..RequestOptions::default()
    };
    let behind = FeedSource::Http("http://feeds.test/feed".parse().expect("url"));
    let fetched = fetcher()
        .fetch(&behind, &Validators::default(), &options)
        .await
        .expect("through the proxy");
    assert!(matches!(fetched, Fetched::Body { .. }));
    let requests = proxy.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]
            .headers
            .get("host")
            .map(|v| v.to_str().expect("ascii")),
        Some("feeds.test"),
        "asked for the feed's own host"
    );
}

/// Names for the rebinding test, all on loopback: `public.test` is the feed's own
/// host (judged public by its name), `rebind.test` a name that resolves to
/// 127.0.0.1 when the redirect to it is connected.
struct TestResolver;

impl reqwest::dns::Resolve for TestResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let known = matches!(name.as_str(), "public.test" | "rebind.test");
        Box::pin(async move {
            if !known {
                return Err("unknown test name".into());
            }
            let loopback: reqwest::dns::Addrs = Box::new(std::iter::once(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ));
            Ok(loopback)
        })
    }
}

/// DNS rebinding: a public feed redirects to a name whose address is internal only
/// when it is connected. The check is made on the addresses the connection uses, so
/// the redirect is refused (`blocked_address`) and the internal service never asked.
#[tokio::test]
async fn a_redirect_to_a_name_that_rebinds_to_an_internal_address_is_refused() {
    support::init();
    let server = MockServer::start().await;
    let port = server.address().port();
    Mock::given(method("GET"))
        .and(path("/start"))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("http://rebind.test:{port}/admin").as_str(),
        ))
        .mount(&server)
        .await;
    let fetcher = Fetcher::with_resolver(
        Duration::from_secs(10),
        1 << 20,
        std::sync::Arc::new(TestResolver),
    )
    .expect("client");
    let public = FeedSource::Http(
        format!("http://public.test:{port}/start")
            .parse()
            .expect("url"),
    );
    let err = fetcher
        .fetch(&public, &Validators::default(), &RequestOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), "blocked_address", "{err}");
    let requests = server.received_requests().await.expect("recording");
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    assert_eq!(paths, ["/start"], "the internal service was never asked");
}

/// An article link comes from the feed and is untrusted: from a public feed it may
/// not reach an internal address, whether written as one or a name resolving to one;
/// from a feed configured on an internal address it may.
#[tokio::test]
async fn an_article_link_reaches_internal_addresses_only_from_an_internal_feed() {
    support::init();
    let server = MockServer::start().await;
    let port = server.address().port();
    Mock::given(method("GET"))
        .and(path("/article"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<p>text</p>"))
        .mount(&server)
        .await;
    let fetcher = Fetcher::with_resolver(
        Duration::from_secs(10),
        1 << 20,
        std::sync::Arc::new(TestResolver),
    )
    .expect("client");
    let url = |s: String| -> url::Url { s.parse().expect("url") };
    let public_feed = url(format!("http://public.test:{port}/rss"));
    let options = RequestOptions::default();
    for link in [
        format!("http://127.0.0.1:{port}/article"),
        format!("http://rebind.test:{port}/article"),
    ] {
        let err = fetcher
            .fetch_page(url(link.clone()), Some(&public_feed), &options)
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), "blocked_address", "{link}: {err}");
        // The feed gave the link; nothing was redirected.
        assert!(
            err.to_string()
                .starts_with("link to an internal address refused: "),
            "{err}"
        );
    }
    let err = fetcher
        .fetch_page(
            url(format!("http://127.0.0.1:{port}/article")),
            None,
            &options,
        )
        .await
        .expect_err("a file feed is not on an internal address");
    assert_eq!(err.kind(), "blocked_address");
    let paths = server.received_requests().await.expect("recording");
    assert!(paths.is_empty(), "the internal service was never asked");

    let local_feed = url(format!("http://127.0.0.1:{port}/rss"));
    let page = fetcher
        .fetch_page(
            url(format!("http://127.0.0.1:{port}/article")),
            Some(&local_feed),
            &options,
        )
        .await
        .expect("a local feed's article");
    assert!(matches!(page, Fetched::Body { .. }));
    let err = fetcher
        .fetch_page(
            url("javascript:alert(1)".into()),
            Some(&local_feed),
            &options,
        )
        .await
        .expect_err("not a web address");
    assert_eq!(err.kind(), "redirect");
}

/// A feed's credentials and headers go with its articles only to the feed's own
/// origin; the User-Agent goes everywhere.
#[tokio::test]
async fn an_article_elsewhere_gets_no_credentials_of_the_feed() {
    support::init();
    let (home, other) = (MockServer::start().await, MockServer::start().await);
    for server in [&home, &other] {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<p>text</p>"))
            .mount(server)
            .await;
    }
    let options = RequestOptions {
        user_agent: Some("custom-agent/1.0".into()),
        headers: vec![("X-Api-Key".into(), "k-123".into())],
        basic_auth: Some(("reader".into(), "s3cret".into())),
        proxy: None,
    };
    let feed: url::Url = format!("{}/rss", home.uri()).parse().expect("url");
    for server in [&home, &other] {
        let link = format!("{}/article", server.uri()).parse().expect("url");
        fetcher()
            .fetch_page(link, Some(&feed), &options)
            .await
            .expect("fetched");
    }
    let sent = |requests: Vec<wiremock::Request>| {
        let r = &requests[0];
        (
            r.headers.contains_key("authorization"),
            r.headers.contains_key("x-api-key"),
            r.headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        )
    };
    let agent = Some("custom-agent/1.0".to_owned());
    assert_eq!(
        sent(home.received_requests().await.expect("recording")),
        (true, true, agent.clone())
    );
    assert_eq!(
        sent(other.received_requests().await.expect("recording")),
        (false, false, agent)
    );
}
