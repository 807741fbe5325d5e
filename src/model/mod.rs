//! Plain data shared by every stage of the pipeline: feeds, items, their keys and alerts.
//!
//! Nothing here does I/O; these types are what the fetcher produces, the matcher reads,
//! the store records and the notifiers render.

pub mod feedback;
pub mod gist;
mod secret;
pub mod sketch;
mod source;
mod story;
mod text;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use secret::{RawHeaderValue, Secret};
pub use source::{FeedSource, RequestOptions, Validators};

/// How many items of one feed document are read unless `daemon.max_items_per_feed`
/// says (feeds list their newest first).
pub const DEFAULT_MAX_ITEMS_PER_FEED: usize = 1000;
pub use feedback::{Ballot, Feedback, LinkError, Signed, Vote};
pub use gist::Gist;
pub use sketch::Sketch;
pub use story::StoryKeys;
pub use text::{collapse_whitespace, floor_char_boundary, hex};

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

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
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
    /// Readable text of the page the item links to, when its feed asks for it
    /// (`fetch_article`) and the page could be read; else empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub article: String,
}

impl Item {
    /// The texts that tell its story, as another item's story is compared with it
    /// (copies by their sketches, rewrites by their gists): title, summary, content,
    /// and the article when it was fetched.
    pub fn story_texts(&self) -> [&str; 4] {
        [&self.title, &self.summary, &self.content, &self.article]
    }

    /// Whether the item says it was published before `cutoff`; an undated item does
    /// not.
    pub fn dated_before(&self, cutoff: DateTime<Utc>) -> bool {
        self.published.is_some_and(|at| at < cutoff)
    }
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
    /// The readable text of the page the item links to (`fetch_article`).
    Article,
}

impl Field {
    pub const EVERY: [Field; 7] = [
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Author,
        Field::Category,
        Field::Link,
        Field::Article,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
            Field::Author => "author",
            Field::Category => "category",
            Field::Link => "link",
            Field::Article => "article",
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
            Field::Article => &item.article,
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
    /// The sketch of the item's text that finds its copies; kept beside the alert in
    /// the store, not in it.
    #[serde(skip)]
    pub sketch: Option<Sketch>,
    /// What the item's text says, for finding its rewrites (only when
    /// `daemon.merge_rewrites` is on); kept beside the alert in the store, not in it.
    #[serde(skip)]
    pub gist: Option<Gist>,
    /// The highest `priority` of its rules, for services that have priorities.
    #[serde(default, skip_serializing_if = "Priority::is_normal")]
    pub priority: Priority,
    /// Its feedback links, one pair per rule: made when it is delivered on a channel
    /// with `feedback = true`, never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<Feedback>,
}

/// How urgent a rule's alerts are (`priority = "low" | "normal" | "high"`), mapped to
/// each push service's own levels; a message has the highest of its alerts'.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

impl Priority {
    pub fn is_normal(&self) -> bool {
        *self == Priority::Normal
    }

    /// The highest priority of `alerts`; normal for none.
    pub fn of(alerts: &[Alert]) -> Priority {
        alerts.iter().map(|a| a.priority).max().unwrap_or_default()
    }
}

impl Alert {
    /// `herald, ledger`: the other feeds that carried the story; `None` for a story
    /// only this feed had.
    pub fn also_feeds(&self) -> Option<String> {
        let feeds: Vec<&str> = self.also_in.iter().map(|s| s.feed.0.as_str()).collect();
        (!feeds.is_empty()).then(|| feeds.join(", "))
    }

    /// `Also reported by: herald, ledger`, as chat services show it on a line.
    pub fn also_line(&self) -> Option<String> {
        self.also_feeds()
            .map(|feeds| format!("Also reported by: {feeds}"))
    }

    /// Whether every rule matched only in the item's article (`fetch_article`), not in
    /// anything the feed itself carried.
    pub fn only_in_article(&self) -> bool {
        !self.why.is_empty() && self.why.iter().all(|w| w.fields == [Field::Article])
    }

    /// The best score of the topic rules among its rules, if any is one.
    pub fn score(&self) -> Option<f32> {
        self.why
            .iter()
            .filter_map(|w| w.meaning.as_ref().map(|m| m.score))
            .max_by(f32::total_cmp)
    }
}

/// What newshound says itself (a feed broke or recovered, a flood was held, a test
/// message): delivered like an alert, with no matches and its text as the snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub feed: FeedId,
    /// Unique per event, so that each is its own message.
    pub key: ItemKey,
    pub title: String,
    pub link: Option<String>,
    /// What the notice is about, in the rules' place (`feed-health`, the held rules).
    pub rules: Vec<String>,
    pub text: String,
    /// When it happened, shown as the alert's date.
    pub at: DateTime<Utc>,
}

impl Alert {
    /// The item's text as an example for a topic (what a feedback vote teaches): its
    /// title, then the passage the alert quotes (the lead of the summary, for a match by
    /// meaning), so that the example reads like the item a topic rule compares with it.
    pub fn example(&self) -> String {
        let passage = self.snippet.text.trim();
        if passage.is_empty() || self.title.contains(passage) {
            return self.title.clone();
        }
        format!("{} — {passage}", self.title)
    }
}

impl From<Notice> for Alert {
    fn from(notice: Notice) -> Alert {
        Alert {
            feed: notice.feed,
            key: notice.key,
            title: notice.title,
            link: notice.link,
            published: Some(notice.at),
            rules: notice.rules,
            terms: Vec::new(),
            snippet: Snippet {
                text: notice.text,
                highlights: Vec::new(),
            },
            why: Vec::new(),
            summary_html: None,
            also_in: Vec::new(),
            sketch: None,
            gist: None,
            priority: Priority::Normal,
            feedback: Vec::new(),
        }
    }
}

/// One rule of an alert and the fields its terms were found in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFields {
    pub rule: String,
    pub fields: Vec<Field>,
    /// For a topic rule: how close the item came to what the rule is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<Meaning>,
}

/// Why a topic rule matched an item: its score and the rule's text nearest to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meaning {
    /// The similarity, rounded to three decimals.
    pub score: f32,
    /// The `about` or `like` text nearest the item.
    pub closest: String,
}

/// A score is a finite number (a cosine similarity), so equality is total.
impl Eq for Meaning {}

impl Meaning {
    pub fn new(score: f32, closest: &str) -> Meaning {
        Meaning {
            score: Meaning::rounded(score),
            closest: closest.to_owned(),
        }
    }

    /// A score as alerts and `test-rules --json` give it: to three decimals.
    pub fn rounded(score: f32) -> f32 {
        (score * 1000.0).round() / 1000.0
    }
}

/// Where else a story appeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub feed: FeedId,
    pub title: String,
    pub link: Option<String>,
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
mod tests;
