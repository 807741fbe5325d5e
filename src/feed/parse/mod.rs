//! Turning feed bytes into [`Item`]s: charset, lenient RSS roots, feed-rs, then our own
//! keys and plain text (HTML removed, entities decoded) for matching.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use feed_rs::model::{Entry, Text};
use feed_rs::parser::{ParseErrorKind, ParseFeedError};

use crate::model::{
    DEFAULT_MAX_ITEMS_PER_FEED, Item, ItemKey, collapse_whitespace, floor_char_boundary,
};

pub mod article;
mod decode;
mod html_text;
mod links;
mod repair;
mod trim;

pub use html_text::html_to_text;

/// Why bytes did not yield a feed; [`ParseError::kind`] is the short name for logs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    NotAFeed(String),
    #[error("malformed feed: {0}")]
    Malformed(String),
}

impl ParseError {
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::NotAFeed(_) => "not_a_feed",
            ParseError::Malformed(_) => "xml",
        }
    }
}

/// A parsed feed: its title (if any), its items in document order, and how often the
/// publisher asks to be polled at most (RSS `<ttl>`).
#[derive(Debug)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub items: Vec<Item>,
    pub ttl: Option<std::time::Duration>,
    /// Items past the cap on items per document, not read.
    pub dropped: usize,
    /// What was wrong with a document that was read only once made well-formed (a bare
    /// `&`, a stray or unclosed tag, …); `None` for a well-formed one.
    pub repaired: Option<String>,
}

impl ParsedFeed {
    /// Makes the items' relative links (`/news/123`) absolute against `base`, the
    /// feed's address, for alerts, `link:` rules and story dedupe. Keys were derived
    /// from the links as written, so none changes.
    pub fn resolve_links(&mut self, base: &url::Url) {
        for item in &mut self.items {
            let Some(link) = &item.link else { continue };
            if !link.starts_with("https://")
                && !link.starts_with("http://")
                && url::Url::parse(link) == Err(url::ParseError::RelativeUrlWithoutBase)
                && let Ok(absolute) = base.join(link)
            {
                item.link = Some(absolute.into());
            }
        }
    }
}

/// Parses RSS 0.9x/1.0/2.0, Atom or JSON Feed, reading at most
/// [`DEFAULT_MAX_ITEMS_PER_FEED`]
/// items. `http_charset` is the charset the server declared, used only when the
/// document does not say its own encoding.
pub fn parse(bytes: &[u8], http_charset: Option<&str>) -> Result<ParsedFeed, ParseError> {
    parse_at_most(bytes, http_charset, DEFAULT_MAX_ITEMS_PER_FEED)
}

/// [`parse`], reading only the first `max_items` items of the document (the rest are
/// cut from the bytes before the parser builds them, and counted in
/// [`ParsedFeed::dropped`]).
pub fn parse_at_most(
    bytes: &[u8],
    http_charset: Option<&str>,
    max_items: usize,
) -> Result<ParsedFeed, ParseError> {
    let utf8 = decode::to_utf8(bytes, http_charset);
    let utf8 = repair::atom_03_as_10(&utf8);
    let (doc, mut dropped) = trim::first_items(&utf8, max_items);
    let (feed, repaired) = match read(&doc) {
        Ok(feed) => (feed, None),
        Err(ParseError::Malformed(why)) => {
            // Read again, well-formed where the intent is clear; if that fails too, the
            // first error says best what is wrong.
            let repaired = repair::well_formed(&doc).ok_or(ParseError::Malformed(why.clone()))?;
            let (doc, more_dropped) = trim::first_items(&repaired, max_items);
            dropped += more_dropped;
            let feed = read(&doc).map_err(|_| ParseError::Malformed(why.clone()))?;
            (feed, Some(why))
        }
        Err(not_a_feed) => return Err(not_a_feed),
    };
    Ok(ParsedFeed {
        title: feed.title.as_ref().map(|t| title_text(plain_title(t))),
        items: with_original_links(feed.entries.iter().map(to_item).collect(), &doc),
        dropped,
        repaired,
        ttl: feed
            .ttl
            .map(|minutes| std::time::Duration::from_secs(u64::from(minutes) * 60)),
    })
}

/// The items with each link as a reader would follow it: the original of a FeedBurner
/// proxy link, the target of a redirect wrapper. Keys were derived before, and stay.
fn with_original_links(mut items: Vec<Item>, doc: &[u8]) -> Vec<Item> {
    let originals = links::original_links(doc);
    for item in &mut items {
        let Some(link) = &item.link else {
            continue;
        };
        let original = originals.get(link).cloned().unwrap_or_else(|| link.clone());
        let target = links::unwrapped(&original).unwrap_or(original);
        item.link = Some(without_controls(&target).into_owned());
    }
    items
}

/// feed-rs's reading of one document (RSS of any version, Atom 1.0, JSON Feed).
fn read(doc: &[u8]) -> Result<feed_rs::model::Feed, ParseError> {
    let fixed = accept_any_rss_version(doc);
    let fixed = accept_rss_090(fixed);
    // An empty id tells us the feed gave none: feed-rs would otherwise invent one,
    // at random for items without a link.
    let parser = feed_rs::parser::Builder::new()
        .id_generator(|_, _, _| String::new())
        .build();
    // feed-rs has panicked on odd input before (UTF-16BE); a panic must stay an error
    // of this one feed.
    let parsed = catch_unwind(AssertUnwindSafe(|| parser.parse(fixed.as_ref())))
        .map_err(|_| ParseError::Malformed("the feed parser crashed on this document".into()))?;
    parsed.map_err(|e| match e {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => {
            ParseError::NotAFeed("no RSS, Atom or JSON Feed root element".into())
        }
        other => ParseError::Malformed(other.to_string()),
    })
}

fn to_item(entry: &Entry) -> Item {
    let title = entry
        .title
        .as_ref()
        .map(|t| title_text(plain_title(t)))
        .unwrap_or_default();
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or(entry.links.first())
        .map(|l| without_controls(l.href.trim()).into_owned());
    let summary = entry
        .summary
        .as_ref()
        .map(|t| body_text(html_to_text(&t.content, MAX_TEXT_BYTES)))
        .unwrap_or_default();
    let content = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .map(|html| body_text(html_to_text(html, MAX_TEXT_BYTES)))
        .unwrap_or_default();
    let guid = Some(entry.id.as_str());
    let key = ItemKey::derive(
        guid,
        link.as_deref(),
        &title,
        if content.is_empty() {
            &summary
        } else {
            &content
        },
    );
    let author = entry
        .authors
        .iter()
        .filter_map(|p| p.name.as_deref().or(p.email.as_deref()))
        .map(|name| title_text(collapse_whitespace(name)))
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let categories = entry
        .categories
        .iter()
        .map(|c| title_text(collapse_whitespace(c.label.as_deref().unwrap_or(&c.term))))
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let html = feed_html(entry);
    Item {
        key,
        title,
        link,
        published: entry.published.or(entry.updated),
        summary,
        content,
        author,
        categories,
        html,
        article: String::new(),
    }
}

/// Titles (and names, categories) longer than this many characters are cut, with "…":
/// a subject line stays far below RFC 5322's 998, a log line short.
pub const MAX_TITLE_CHARS: usize = 300;
/// Summaries and content longer than this are cut, with "…": what rules and snippets
/// need of an item, and no more.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Feed text that is safe to show: no control characters and no bidi overrides
/// (U+202A–U+202E, U+2066–U+2069: "invoice \u{202E}fdp.exe" must not show as
/// "invoice exe.pdf"). Whitespace is collapsed again where some was next to them.
fn safe_text(text: String) -> String {
    match without_controls(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(stripped) => collapse_whitespace(&stripped),
    }
}

/// `text` without C0/C1 controls and bidi overrides (TAB and LF kept).
fn without_controls(text: &str) -> Cow<'_, str> {
    if has_controls(text.as_bytes()) {
        Cow::Owned(text.chars().filter(|c| !unwanted(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// A C0/C1 control other than TAB and LF, or a bidi override.
fn unwanted(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether UTF-8 `text` holds a character [`without_controls`] drops, told from its
/// bytes alone: C0 controls and DEL are single bytes, C1 controls are `C2 80`–`C2 9F`,
/// the bidi overrides `E2 80 AA`–`E2 80 AE` and `E2 81 A6`–`E2 81 A9`. Typographic
/// quotes and dashes also start with `E2`, so the next bytes are looked at, not decoded.
fn has_controls(text: &[u8]) -> bool {
    // Runs of printable ASCII, most of any text, are passed over 32 bytes at a time
    // with a test the compiler turns into vector instructions.
    let printable = |all: bool, b: &u8| all & (b.wrapping_sub(0x20) < 0x5f);
    let mut from = 0;
    while from < text.len() {
        let to = (from + 32).min(text.len());
        if !text[from..to].iter().fold(true, printable) && controls_at(&text[from..], to - from) {
            return true;
        }
        from = to;
    }
    false
}

/// Whether one of the first `len` bytes of `text` starts an unwanted character (the
/// bytes after them may be read to tell).
fn controls_at(text: &[u8], len: usize) -> bool {
    (0..len).any(|i| match (text[i], &text[i + 1..]) {
        (b'\t' | b'\n', _) => false,
        (0..0x20 | 0x7f, _) => true,
        (0xc2, [0x80..0xa0, ..]) => true,
        (0xe2, [0x80, 0xaa..=0xae, ..] | [0x81, 0xa6..=0xa9, ..]) => true,
        _ => false,
    })
}

/// A title, name or category: safe, and at most [`MAX_TITLE_CHARS`] characters.
fn title_text(text: String) -> String {
    let mut text = safe_text(text);
    if let Some((cut, _)) = text.char_indices().nth(MAX_TITLE_CHARS - 1) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// A summary or content: safe, and at most [`MAX_TEXT_BYTES`] bytes (and the "…").
fn body_text(text: String) -> String {
    let mut text = safe_text(text);
    if text.len() > MAX_TEXT_BYTES {
        text.truncate(floor_char_boundary(&text, MAX_TEXT_BYTES));
        text.push('…');
    }
    text
}

fn is_html<S: PartialEq<&'static str>>(subtype: S) -> bool {
    subtype == "html" || subtype == "xhtml"
}

/// Sanitised HTML longer than this is not quoted in alerts: the snippet says enough.
const MAX_EXCERPT_BYTES: usize = 8 * 1024;
/// Feed HTML longer than this is not kept for quoting: it would not sanitise short
/// enough.
const MAX_RAW_HTML_BYTES: usize = 4 * MAX_EXCERPT_BYTES;

/// The entry's summary (else its content) when the feed gave it as HTML, as it is:
/// sanitised only if an alert quotes it ([`excerpt`]), as most items match nothing.
fn feed_html(entry: &Entry) -> Option<String> {
    let html = match (&entry.summary, &entry.content) {
        (Some(summary), _) if is_html(summary.content_type.subty()) => summary.content.as_str(),
        (_, Some(content)) if is_html(content.content_type.subty()) => content.body.as_deref()?,
        _ => return None,
    };
    (html.len() <= MAX_RAW_HTML_BYTES).then(|| html.to_owned())
}

/// The item's HTML sanitised for quoting in an HTML email (relative links resolved
/// against the item's link), if it has some and it is short enough.
pub fn excerpt(item: &Item) -> Option<String> {
    let html = item.html.as_deref()?;
    let base = item.link.as_deref().and_then(|l| url::Url::parse(l).ok());
    let clean = sanitize_html(html, base);
    (!clean.trim().is_empty() && clean.len() <= MAX_EXCERPT_BYTES).then_some(clean)
}

/// Feed HTML made safe to show: ammonia's allowlist of tags and attributes (no
/// scripts, event handlers, styles, frames, objects or forms), links only to http,
/// https and mailto, relative links resolved against `base` or dropped, and no images:
/// a remote image loads when the mail is opened, which tells the sender it was read.
fn sanitize_html(html: &str, base: Option<url::Url>) -> String {
    let relative = match base {
        Some(base) => ammonia::UrlRelative::RewriteWithBase(base),
        None => ammonia::UrlRelative::Deny,
    };
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into())
        .url_relative(relative)
        .rm_tags(["img"])
        .clean(html)
        .to_string()
}

/// A title as plain text. feed-rs leaves HTML entities that XML does not define
/// (`&rsquo;`, `&zwnj;`) literal; titles marked as HTML also lose their tags.
fn plain_title(text: &Text) -> String {
    if is_html(text.content_type.subty()) {
        html_to_text(&text.content, 4 * MAX_TITLE_CHARS)
    } else {
        collapse_whitespace(&html_escape::decode_html_entities(&text.content))
    }
}

/// feed-rs accepts only `<rss version="2.0|0.91|0.92">`. RSS 0.93/0.94, 2.01 or a
/// missing version are the same format in practice, so such roots are read as 2.0.
fn accept_any_rss_version(bytes: &[u8]) -> Cow<'_, [u8]> {
    // The root sits after the prolog, comments and doctype; 4 KiB is plenty.
    let head = &bytes[..bytes.len().min(4096)];
    let Some(start) = find_rss_tag(head) else {
        return Cow::Borrowed(bytes);
    };
    let Some(len) = head[start..].iter().position(|&b| b == b'>') else {
        return Cow::Borrowed(bytes);
    };
    let tag = &head[start..start + len];
    let version = attribute(tag, b"version");
    if matches!(version, Some(b"2.0" | b"0.91" | b"0.92" | b"")) {
        return Cow::Borrowed(bytes);
    }
    let mut fixed = Vec::with_capacity(bytes.len() + 16);
    match version {
        Some(value) => {
            let value_start = value.as_ptr() as usize - bytes.as_ptr() as usize;
            fixed.extend_from_slice(&bytes[..value_start]);
            fixed.extend_from_slice(b"2.0");
            fixed.extend_from_slice(&bytes[value_start + value.len()..]);
        }
        None => {
            let name_end = start + b"<rss".len();
            fixed.extend_from_slice(&bytes[..name_end]);
            fixed.extend_from_slice(b" version=\"2.0\"");
            fixed.extend_from_slice(&bytes[name_end..]);
        }
    }
    Cow::Owned(fixed)
}

/// RSS 0.90 is RDF like RSS 1.0 under another namespace, which feed-rs does not know;
/// its elements mean the same, so the namespace is swapped for 1.0's.
fn accept_rss_090(bytes: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    const RSS_090: &[u8] = b"\"http://my.netscape.com/rdf/simple/0.9/\"";
    const RSS_10: &[u8] = b"\"http://purl.org/rss/1.0/\"";
    let head = &bytes[..bytes.len().min(4096)];
    let Some(at) = head.windows(RSS_090.len()).position(|w| w == RSS_090) else {
        return bytes;
    };
    let mut fixed = Vec::with_capacity(bytes.len());
    fixed.extend_from_slice(&bytes[..at]);
    fixed.extend_from_slice(RSS_10);
    fixed.extend_from_slice(&bytes[at + RSS_090.len()..]);
    Cow::Owned(fixed)
}

fn find_rss_tag(head: &[u8]) -> Option<usize> {
    head.windows(5)
        .position(|w| &w[..4] == b"<rss" && (w[4].is_ascii_whitespace() || w[4] == b'>'))
}

/// The value of attribute `name` inside a start tag, borrowed from the tag.
fn attribute<'a>(tag: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    while let Some(pos) = tag[i..].windows(name.len()).position(|w| w == name) {
        let at = i + pos;
        i = at + name.len();
        let preceded_by_space = at > 0 && tag[at - 1].is_ascii_whitespace();
        let rest = &tag[i..];
        let eq = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        if !preceded_by_space || rest[eq] != b'=' {
            continue;
        }
        let after_eq = &rest[eq + 1..];
        let q = after_eq.iter().position(|b| !b.is_ascii_whitespace())?;
        let quote = after_eq[q];
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let value = &after_eq[q + 1..];
        let close = value.iter().position(|&b| b == quote)?;
        return Some(&value[..close]);
    }
    None
}

#[cfg(test)]
mod tests;
