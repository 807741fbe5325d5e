//! Feeds: fetching bytes over HTTP or from disk ([`fetch`]) and parsing them into
//! items with our own keys and plain text ([`parse()`]). A [`Document`] is the one
//! way from the first to the second, for the daemon and `test-rules` alike.

pub mod fetch;
pub mod parse;

pub use fetch::{FetchError, Fetched, Fetcher};
pub use parse::{ParseError, ParsedFeed, parse};

use crate::model::FeedSource;

/// A feed document a fetch brought, to parse: its bytes, the charset its server
/// declared, and the feed's address, against which relative links are resolved.
#[derive(Debug)]
pub struct Document {
    bytes: Vec<u8>,
    charset: Option<String>,
    base: Option<url::Url>,
}

impl Document {
    /// The body of `fetched`, a fetch of `source`, taken out of it; `None` for a 304.
    pub fn take(fetched: &mut Fetched, source: &FeedSource) -> Option<Document> {
        let Fetched::Body {
            bytes,
            content_type,
            ..
        } = fetched
        else {
            return None;
        };
        Some(Document {
            bytes: std::mem::take(bytes),
            charset: content_type.as_deref().and_then(fetch::charset_of),
            base: source.url().cloned(),
        })
    }

    /// Reads at most `max_items` items, their relative links made absolute. This is
    /// CPU work: the daemon does it on a blocking thread.
    pub fn parse(&self, max_items: usize) -> Result<ParsedFeed, ParseError> {
        let mut parsed = parse::parse_at_most(&self.bytes, self.charset.as_deref(), max_items)?;
        if let Some(base) = &self.base {
            parsed.resolve_links(base);
        }
        Ok(parsed)
    }
}
