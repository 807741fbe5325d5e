//! The cost of `fetch_article` per item: a feed of teasers whose items link to
//! generated article pages of realistic size (inline script and style, navigation,
//! a sidebar of related links, 12–30 paragraphs, comments, footer), served on
//! loopback. Prints the extraction alone (one core), then one `once` of the daemon
//! over the feed with and without `fetch_article`, and the difference per item.
//!
//!     cargo bench --bench article          # 300 pages
//!     cargo bench --bench article -- 1000  # another number

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use newshound::daemon::{self, Pipeline};
use newshound::feed::parse::article::{MAX_DEPTH, MAX_ELEMENTS, readable_text};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const WORDS: &[&str] = &[
    "ministers",
    "talks",
    "Geneva",
    "security",
    "agreement",
    "delegation",
    "officials",
    "said",
    "on",
    "Friday",
    "the",
    "of",
    "and",
    "a",
    "meeting",
    "week",
    "proposal",
    "sanctions",
    "border",
    "statement",
    "spokesman",
    "government",
    "allies",
    "summit",
];

fn sentence(rng: &mut fastrand::Rng, words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.usize(..WORDS.len())])
        .collect();
    s[0] = "The";
    format!("{}.", s.join(" "))
}

/// Article page `i`: about 60–110 KB of HTML, of which some 5–12 KB is the story.
fn article_page(i: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(i as u64);
    let script = format!(
        "<script>window.dataLayer=[{}];</script>",
        (0..2500)
            .map(|k| format!("{{\"k{k}\":\"v{}\"}}", rng.u32(..)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let style = format!(
        "<style>{}</style>",
        (0..300)
            .map(|k| format!(
                ".c{k}{{margin:{}px;color:#{:06x}}}",
                k % 17,
                rng.u32(..0xffffff)
            ))
            .collect::<String>()
    );
    let nav: String = (0..60)
        .map(|k| format!("<li><a href=\"/section/{k}\">Section {k}</a></li>"))
        .collect();
    let related: String = (0..30)
        .map(|k| {
            format!(
                "<li class=\"related\"><a href=\"/story/{}\">{}</a></li>",
                i * 31 + k,
                sentence(&mut rng, 8)
            )
        })
        .collect();
    let story: String = (0..rng.usize(12..30))
        .map(|_| {
            let text: Vec<String> = (0..rng.usize(3..7))
                .map(|_| {
                    let words = rng.usize(10..25);
                    sentence(&mut rng, words)
                })
                .collect();
            format!("<p>{}</p>", text.join(" "))
        })
        .collect();
    let mention = if i.is_multiple_of(10) {
        "<p>Lavrov met the envoy.</p>"
    } else {
        ""
    };
    let comments: String = (0..rng.usize(5..25))
        .map(|k| {
            format!(
                "<div class=\"comment\"><span class=\"author\">reader{k}</span><p>{}</p></div>",
                sentence(&mut rng, 15)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Story {i}</title>\
         {style}{script}</head><body><header><nav><ul>{nav}</ul></nav></header>\
         <main><article><h1>Story {i}</h1><p class=\"byline\">By A. Reporter</p>{story}{mention}\
         </article><aside><h2>Related</h2><ul>{related}</ul></aside>\
         <section id=\"comments\">{comments}</section></main>\
         <footer><p>Copyright the publisher</p><ul>{nav}</ul></footer></body></html>"
    )
}

/// Serves `/story/<i>` from the generated pages.
struct Pages(Arc<Vec<String>>);

impl Respond for Pages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let page = request
            .url
            .path()
            .strip_prefix("/story/")
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| self.0.get(i));
        match page {
            Some(html) => ResponseTemplate::new(200).set_body_raw(html.clone(), "text/html"),
            None => ResponseTemplate::new(404),
        }
    }
}

fn feed(uri: &str, n: usize) -> Vec<u8> {
    let items: String = (0..n)
        .map(|i| {
            format!(
                "<item><guid>story-{i}</guid><title>Story {i}</title>\
                 <link>{uri}/story/{i}</link><description>Read more.</description></item>"
            )
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>Teasers</title>{items}</channel></rss>")
        .into_bytes()
}

/// One `once` over the feed; its wall time and how many alerts it queued.
async fn once(uri: &str, inbox: &std::path::Path, fetch_article: bool) -> (Duration, usize) {
    let config = support::TestConfig::write(
        "first_poll = \"alert\"\nflood_threshold = 100000",
        &format!(
            "[[feeds]]\nname = \"teasers\"\nurl = \"{uri}/rss\"\nfetch_article = {fetch_article}\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"{}\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            inbox.display()
        ),
    );
    let pipeline = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let started = Instant::now();
    let report = daemon::once(pipeline).await.expect("once");
    (started.elapsed(), report.alerts)
}

#[tokio::main]
async fn main() {
    // No log subscriber: a line per delivered alert would bury the figures.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let pages: Vec<String> = (0..n).map(article_page).collect();
    let bytes: usize = pages.iter().map(String::len).sum();
    println!(
        "{n} article pages, {:.1} MB, {:.0} KB each on average",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64 / 1e3
    );

    let url: url::Url = "https://news.example.org/story".parse().expect("url");
    let started = Instant::now();
    let mut text = 0;
    for page in &pages {
        text += readable_text(page.as_bytes(), Some("text/html"), &url)
            .expect("readable")
            .len();
    }
    let extract = started.elapsed();
    println!(
        "extract only (one core):   {:>6.2} ms a page, {:.0} MB/s, {:.0} KB of text a page",
        extract.as_secs_f64() * 1e3 / n as f64,
        bytes as f64 / 1e6 / extract.as_secs_f64(),
        text as f64 / n as f64 / 1e3
    );

    // The worst a page may be and still be read: nested as deep and about as large
    // as allowed.
    let worst = format!(
        "{}{}",
        "<div>".repeat(MAX_DEPTH),
        "<p>Some words of the story.</p>".repeat(MAX_ELEMENTS - MAX_DEPTH - 10)
    );
    let started = Instant::now();
    readable_text(worst.as_bytes(), Some("text/html"), &url).expect("readable");
    println!(
        "a page at the limits:      {:>6.0} ms ({MAX_DEPTH} levels, {MAX_ELEMENTS} elements, {:.0} KB)",
        started.elapsed().as_secs_f64() * 1e3,
        worst.len() as f64 / 1e3
    );

    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/rss"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(feed(&server.uri(), n), "application/rss+xml"),
        )
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path_regex("^/story/"))
        .respond_with(Pages(Arc::new(pages)))
        .mount(&server)
        .await;
    let boxes = tempfile::tempdir().expect("temp dir");
    let (without, quiet) = once(&server.uri(), &boxes.path().join("a"), false).await;
    let (with, alerts) = once(&server.uri(), &boxes.path().join("b"), true).await;
    assert_eq!(
        (quiet, alerts),
        (0, n.div_ceil(10)),
        "the articles' mentions alert"
    );
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "once, feed text only:      {:>6.3} s",
        without.as_secs_f64()
    );
    println!(
        "once, with fetch_article:  {:>6.3} s ({alerts} alerts from the articles)",
        with.as_secs_f64()
    );
    println!(
        "fetch_article per item:    {:>6.2} ms wall on {cores} cores ({:.0} items/s)",
        (with - without).as_secs_f64() * 1e3 / n as f64,
        n as f64 / (with - without).as_secs_f64()
    );
}
