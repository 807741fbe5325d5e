//! Reading the articles of a poll's new items (`fetch_article`): each item's link
//! fetched as an untrusted address under the usual limits, and its readable text
//! extracted on a blocking thread. A failure costs the item its article, never the
//! item: it is matched on what the feed gave.

use std::collections::HashMap;
use std::fmt;

use futures_util::StreamExt as _;
use tracing::{debug, warn};

use super::matching::{fresh, too_old};
use super::slots::Slots;
use crate::config::Feed;
use crate::feed::parse::article::{ArticleError, readable_text};
use crate::feed::{FetchError, Fetched, Fetcher, ParsedFeed};
use crate::model::ItemKey;

/// How many articles of one poll are fetched at the same time (within the host's and
/// the global limits).
const AT_ONCE: usize = 4;

/// What reading a poll's articles gave.
#[derive(Debug, Default)]
pub(super) struct Articles {
    /// The readable text of each item whose article was read.
    pub texts: HashMap<ItemKey, String>,
    /// How many articles could not be read.
    pub failed: u32,
    /// Why the last of them could not be, with its link.
    pub last_error: Option<String>,
}

/// Why one article could not be read.
#[derive(Debug)]
enum Failure {
    Link(url::ParseError),
    Fetch(FetchError),
    Read(ArticleError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Link(e) => write!(f, "not a usable link: {e}"),
            Failure::Fetch(e) => e.fmt(f),
            Failure::Read(e) => e.fmt(f),
        }
    }
}

/// Reads the articles `links` point to (item key and link), for `feed`.
pub(super) async fn read_articles(
    fetcher: &Fetcher,
    slots: &Slots,
    feed: &Feed,
    links: Vec<(ItemKey, String)>,
) -> Articles {
    let results: Vec<(ItemKey, String, Result<String, Failure>)> =
        futures_util::stream::iter(links)
            .map(|(key, link)| async move {
                let text = read_one(fetcher, slots, feed, &link).await;
                (key, link, text)
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
    let mut articles = Articles::default();
    for (key, link, result) in results {
        match result {
            Ok(text) => {
                articles.texts.insert(key, text);
            }
            Err(why) => {
                debug!(link = %link, error = %why, "cannot read the article");
                articles.failed += 1;
                articles.last_error = Some(format!("{link}: {why}"));
            }
        }
    }
    if let Some(error) = &articles.last_error {
        warn!(
            failed = articles.failed,
            read = articles.texts.len(),
            last_error = %error,
            "some articles could not be read; their items are matched on the feed's text"
        );
    }
    articles
}

async fn read_one(
    fetcher: &Fetcher,
    slots: &Slots,
    feed: &Feed,
    link: &str,
) -> Result<String, Failure> {
    let feed_url = feed.source.url();
    // A relative link is the feed's own page.
    let url = match feed_url {
        Some(base) => base.join(link),
        None => link.parse(),
    }
    .map_err(Failure::Link)?;
    let slot = slots.fetch(Some(&url)).await;
    let fetched = fetcher
        .fetch_page(url.clone(), feed_url, &feed.request)
        .await
        .map_err(Failure::Fetch)?;
    drop(slot);
    let (bytes, content_type) = match fetched {
        Fetched::Body {
            bytes,
            content_type,
            ..
        } => (bytes, content_type),
        // Asked without validators, a server has no business answering 304.
        Fetched::NotModified { .. } => {
            return Err(Failure::Fetch(FetchError::HttpStatus {
                status: reqwest::StatusCode::NOT_MODIFIED,
                retry_after: None,
            }));
        }
    };
    let _core = slots.cpu().await;
    // A reader that panics on some page has not read it.
    tokio::task::spawn_blocking(move || readable_text(&bytes, content_type.as_deref(), &url))
        .await
        .unwrap_or(Err(ArticleError::Unreadable))
        .map_err(Failure::Read)
}

/// The links of the new items of `parsed` that may be alerted (not too old): the
/// articles to read.
pub(super) fn article_links(
    feed: &Feed,
    parsed: &ParsedFeed,
    new: &[ItemKey],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(ItemKey, String)> {
    fresh(&parsed.items, new)
        .filter(|i| !too_old(feed, i, now))
        .filter_map(|i| Some((i.key.clone(), i.link.clone()?)))
        .collect()
}
