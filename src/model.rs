//! Plain data shared by every stage of the pipeline: feeds, items, their keys and alerts.
//!
//! Nothing here does I/O; these types are what the fetcher produces, the matcher reads,
//! the store records and the notifiers render.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The configured name of a feed (`[[feeds]] name = "..."`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeedId(pub String);

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Our own stable identity of an item within its feed.
///
/// Chosen in this order: the feed's guid/id, else the item's link, else `sha256:` and
/// the SHA-256 of the normalised title and content. The hash is documented and
/// independent of the Rust release, so the same item keeps its key across upgrades.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ItemKey(pub String);

impl ItemKey {
    /// Derives the key from what the feed gave us; see the type's docs for the order.
    pub fn derive(guid: Option<&str>, link: Option<&str>, title: &str, content: &str) -> ItemKey {
        if let Some(guid) = non_empty(guid) {
            return ItemKey(guid.to_owned());
        }
        if let Some(link) = non_empty(link) {
            return ItemKey(link.to_owned());
        }
        let mut hasher = Sha256::new();
        hasher.update(collapse_whitespace(title).as_bytes());
        // A separator that cannot occur in collapsed text keeps ("ab", "c") apart from ("a", "bc").
        hasher.update(b"\n");
        hasher.update(collapse_whitespace(content).as_bytes());
        ItemKey(format!("sha256:{}", hex(&hasher.finalize())))
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A time as RFC 3339 in UTC, to the second (`2022-01-21T11:35:00Z`): the form of
/// `published` in JSON output.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `at` plus `wait`, saturating at the end of representable time instead of
/// overflowing (a wait can be configured absurdly long).
pub fn later(at: DateTime<Utc>, wait: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at` minus `wait`, saturating at the start of representable time.
pub fn earlier(at: DateTime<Utc>, wait: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| at.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The largest character boundary of `text` at or before byte `i` (at most its length).
pub fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The words of `s` joined by single spaces: no leading, trailing or repeated
/// whitespace, no line breaks.
pub fn collapse_whitespace(s: &str) -> String {
    // One pass copying whole words, bytes at a time where the text is ASCII: every
    // item's text goes through here.
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut word_start = None;
    let mut i = 0;
    while i < bytes.len() {
        let (space, len) = match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => (true, 1),
            b if b.is_ascii() => (false, 1),
            _ => match s[i..].chars().next() {
                Some(c) => (c.is_whitespace(), c.len_utf8()),
                None => break,
            },
        };
        match (space, word_start) {
            (true, Some(start)) => {
                push_word(&mut out, &s[start..i]);
                word_start = None;
            }
            (false, None) => word_start = Some(i),
            _ => {}
        }
        i += len;
    }
    if let Some(start) = word_start {
        push_word(&mut out, &s[start..]);
    }
    out
}

fn push_word(out: &mut String, word: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
}

/// One entry of a feed, with its text already decoded to plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub key: ItemKey,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    /// Plain text of the summary/description (HTML removed, entities decoded).
    pub summary: String,
    /// Plain text of the full content, when the feed carries it.
    pub content: String,
    /// The authors' names, comma-separated.
    pub author: String,
    /// The categories (tags), comma-separated.
    pub categories: String,
    /// The summary (else the content) as the feed's own HTML, when it gave HTML and
    /// not too much of it. Unsanitised: never shown as it is (see `Alert::summary_html`).
    pub html: Option<String>,
}

/// Which text of an item a term matched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title,
    Summary,
    Content,
    Author,
    Category,
    Link,
}

impl Field {
    pub const EVERY: [Field; 6] = [
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Author,
        Field::Category,
        Field::Link,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
            Field::Author => "author",
            Field::Category => "category",
            Field::Link => "link",
        }
    }

    pub fn text(self, item: &Item) -> &str {
        match self {
            Field::Title => &item.title,
            Field::Summary => &item.summary,
            Field::Content => &item.content,
            Field::Author => &item.author,
            Field::Category => &item.categories,
            Field::Link => item.link.as_deref().unwrap_or_default(),
        }
    }
}

/// What a channel receives for one item: everything needed to render it, frozen when
/// the item was matched, so a retry days later renders the same message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub feed: FeedId,
    pub key: ItemKey,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    /// Names of every rule that matched, in config order.
    pub rules: Vec<String>,
    /// The matched terms as the rules wrote them, without repeats.
    pub terms: Vec<String>,
    pub snippet: Snippet,
    /// The fields each rule matched in, for the "why you got this" footer.
    #[serde(default)]
    pub why: Vec<RuleFields>,
    /// The item's summary as sanitised HTML (allowlisted tags, web and mail links
    /// only), when the feed gave HTML short enough to quote.
    #[serde(default)]
    pub summary_html: Option<String>,
    /// Other feeds that carried the same story, folded into this alert.
    #[serde(default)]
    pub also_in: Vec<Source>,
}

impl Alert {
    /// An alert newshound writes itself (feed health, floods, tests): no matches, the
    /// text as its snippet.
    pub fn notice(
        feed: FeedId,
        key: ItemKey,
        title: String,
        link: Option<String>,
        rules: Vec<String>,
        text: String,
    ) -> Alert {
        Alert {
            feed,
            key,
            title,
            link,
            published: Some(Utc::now()),
            rules,
            terms: Vec::new(),
            snippet: Snippet {
                text,
                highlights: Vec::new(),
            },
            why: Vec::new(),
            summary_html: None,
            also_in: Vec::new(),
        }
    }
}

/// One rule of an alert and the fields its terms were found in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFields {
    pub rule: String,
    pub fields: Vec<Field>,
}

/// Where else a story appeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub feed: FeedId,
    pub title: String,
    pub link: Option<String>,
}

/// What makes two items the same story: the link without tracking parameters, or the
/// title in lower case without punctuation (only for titles long enough to be
/// distinctive). Either one matching is enough.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoryKeys {
    pub link: Option<String>,
    pub title: Option<String>,
}

/// Query parameters that only say where a click came from.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "yclid",
    "_hsenc",
    "_hsmi",
    "ref",
    "ref_src",
    "cmpid",
    "ncid",
    "ito",
    "at_medium",
    "at_campaign",
];

/// Titles shorter than this many words are too generic ("Update", "Live") to say
/// that two items are one story.
const MIN_TITLE_WORDS: usize = 4;

impl StoryKeys {
    pub fn of(link: Option<&str>, title: &str) -> StoryKeys {
        StoryKeys {
            link: link.and_then(canonical_link),
            title: Some(normalised_title(title))
                .filter(|t| t.split(' ').count() >= MIN_TITLE_WORDS),
        }
    }
}

/// `link` with the scheme's default port, the fragment, `www.`, a trailing slash and
/// tracking parameters (`utm_*` and the like) removed; the remaining query parameters
/// sorted. `None` for what is not an http(s) URL.
fn canonical_link(link: &str) -> Option<String> {
    let mut url = url::Url::parse(link.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_fragment(None);
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !k.starts_with("utm_") && !TRACKING_PARAMS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    if params.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(params);
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let path = url.path().trim_end_matches('/');
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{host}{path}{query}"))
}

/// Lower case, letters and digits only, single spaces.
fn normalised_title(title: &str) -> String {
    let words: String = title
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    collapse_whitespace(&words)
}

/// A short passage of the item's original text around the first hit, with the byte
/// ranges (into `text`) of every term found inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<(usize, usize)>,
}

impl Snippet {
    /// The text in pieces, each with whether it is a highlighted hit.
    pub fn segments(&self) -> Vec<(&str, bool)> {
        let mut pieces = Vec::with_capacity(2 * self.highlights.len() + 1);
        let mut pos = 0;
        for &(start, end) in &self.highlights {
            if start > pos {
                pieces.push((&self.text[pos..start], false));
            }
            pieces.push((&self.text[start..end], true));
            pos = end;
        }
        if pos < self.text.len() {
            pieces.push((&self.text[pos..], false));
        }
        pieces
    }

    /// The text with each hit wrapped in `open` … `close`.
    pub fn marked(&self, open: &str, close: &str) -> String {
        self.marked_escaped(open, close, str::to_owned)
    }

    /// The text with every piece passed through `escape` (for the markup it goes
    /// into) and each hit wrapped in `open` … `close`.
    pub fn marked_escaped(
        &self,
        open: &str,
        close: &str,
        escape: impl Fn(&str) -> String,
    ) -> String {
        self.segments()
            .into_iter()
            .map(|(piece, hit)| {
                if hit {
                    format!("{open}{}{close}", escape(piece))
                } else {
                    escape(piece)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefers_guid_then_link_then_hash() {
        assert_eq!(ItemKey::derive(Some("g1"), Some("l"), "t", "c").0, "g1");
        assert_eq!(ItemKey::derive(Some("  "), Some("l"), "t", "c").0, "l");
        let hashed = ItemKey::derive(None, None, "Title", "Body");
        assert!(hashed.0.starts_with("sha256:"));
        assert_eq!(hashed.0.len(), "sha256:".len() + 64);
    }

    #[test]
    fn hashed_key_is_stable_and_ignores_whitespace_layout() {
        let a = ItemKey::derive(None, None, "A  title", "some\n body");
        let b = ItemKey::derive(None, None, "A title", "some body");
        assert_eq!(a, b);
        // Pinned so that a change of hash or normalisation, which would re-alert every
        // item without guid and link, cannot slip in unnoticed. It is
        // `printf 'A title\nsome body' | sha256sum`.
        assert_eq!(
            a.0,
            "sha256:e85e9755d2c11925acefe51fe2822faf8815d676b4db7b64fa7b12be0bd53d1e"
        );
    }

    #[test]
    fn snippet_marks_its_highlights() {
        let snippet = Snippet {
            text: "Lavrov met Blinken".into(),
            highlights: vec![(0, 6), (11, 18)],
        };
        assert_eq!(snippet.marked("[", "]"), "[Lavrov] met [Blinken]");
        assert_eq!(
            snippet.segments(),
            [("Lavrov", true), (" met ", false), ("Blinken", true)]
        );
    }

    #[test]
    fn story_links_ignore_tracking_fragments_www_and_scheme() {
        let keys = |link: &str| StoryKeys::of(Some(link), "t").link;
        let plain = keys("https://example.org/world/story-1?id=7");
        assert_eq!(plain.as_deref(), Some("example.org/world/story-1?id=7"));
        for variant in [
            "http://www.example.org/world/story-1/?id=7",
            "https://EXAMPLE.org/world/story-1?utm_source=rss&id=7&utm_medium=feed#top",
            "https://example.org/world/story-1?fbclid=abc&id=7",
        ] {
            assert_eq!(keys(variant), plain, "{variant}");
        }
        assert_ne!(keys("https://example.org/world/story-1?id=8"), plain);
        assert_eq!(keys("javascript:alert(1)"), None);
    }

    #[test]
    fn story_titles_ignore_case_and_punctuation_but_not_short_titles() {
        let a = StoryKeys::of(None, "Lavrov and Blinken meet in Geneva!");
        let b = StoryKeys::of(None, "  LAVROV and Blinken: meet in Geneva ");
        assert_eq!(a.title, b.title);
        assert_eq!(
            a.title.as_deref(),
            Some("lavrov and blinken meet in geneva")
        );
        assert_eq!(StoryKeys::of(None, "Live updates").title, None);
    }

    #[test]
    fn time_arithmetic_saturates_instead_of_overflowing() {
        let at = DateTime::from_timestamp(1000, 0).expect("time");
        let minute = std::time::Duration::from_secs(60);
        assert_eq!(later(at, minute).timestamp(), 1060);
        assert_eq!(earlier(at, minute).timestamp(), 940);
        assert_eq!(
            later(at, std::time::Duration::MAX),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            earlier(at, std::time::Duration::MAX),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn hashed_key_separates_title_from_content() {
        assert_ne!(
            ItemKey::derive(None, None, "ab", "c"),
            ItemKey::derive(None, None, "a", "bc")
        );
    }

    proptest::proptest! {
        /// Hashed item keys go through `collapse_whitespace`: it must keep giving what
        /// the words joined by one space gave, for any text, or keys change on upgrade.
        #[test]
        fn collapse_whitespace_is_the_words_joined_by_one_space(
            text in "[ a\u{00e9}\t\n\r\u{000b}\u{000c}\u{001c}\u{001f}\u{00a0}\u{2003}\u{3000}b\u{0085}\u{2028}]{0,40}",
        ) {
            let words: Vec<&str> = text.split_whitespace().collect();
            proptest::prop_assert_eq!(collapse_whitespace(&text), words.join(" "));
        }
    }
}
