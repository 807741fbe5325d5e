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

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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
        self.segments()
            .into_iter()
            .map(|(piece, hit)| {
                if hit {
                    format!("{open}{piece}{close}")
                } else {
                    piece.to_owned()
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
    fn hashed_key_separates_title_from_content() {
        assert_ne!(
            ItemKey::derive(None, None, "ab", "c"),
            ItemKey::derive(None, None, "a", "bc")
        );
    }
}
