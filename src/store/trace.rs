//! What the store remembers of one item, for `newshound why`: where and when it was
//! first seen, its text while it is kept, the filter that dropped it, and each alert
//! it caused with what became of it.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::StoreError;
use super::types::{alert_of, from_unix};
use crate::model::{Alert, FeedId, Item, ItemKey};

/// Items a search finds at most.
pub const MAX_FOUND: usize = 20;

/// What the store knows of one item.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub feed: FeedId,
    pub key: ItemKey,
    /// When it was first seen; `None` once it is forgotten (or never was).
    pub first_seen: Option<DateTime<Utc>>,
    /// Since when it has been gone from its feed, if it has.
    pub gone_since: Option<DateTime<Utc>>,
    /// When its feed was first polled with success (its first poll), if known.
    pub feed_first_polled: Option<DateTime<Utc>>,
    /// The item as kept for a day, with the filter that dropped it, if one did.
    pub kept: Option<(Item, Option<String>)>,
    /// Every alert it caused, oldest first.
    pub alerts: Vec<TracedAlert>,
}

/// One alert of an item, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedAlert {
    pub id: i64,
    pub channel: String,
    /// `pending`, `sending`, `sent`, `dead`, `held` or `merged`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    /// The alert it was merged into (same story), when it was.
    pub merged_into: Option<(i64, Alert)>,
    pub alert: Alert,
}

/// The rows of one item, as an engine reads them.
#[derive(Debug, Default)]
pub struct ItemRows {
    /// `first_seen`, `gone_since`.
    pub seen: Option<(i64, Option<i64>)>,
    pub feed_first_polled: Option<i64>,
    /// The kept item's JSON, and `dropped_by`.
    pub kept: Option<(String, Option<String>)>,
    pub alerts: Vec<AlertRows>,
}

/// One outbox row of an item, as an engine reads it.
#[derive(Debug)]
pub struct AlertRows {
    pub id: i64,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created: i64,
    pub finished: Option<i64>,
    pub merged_into: Option<i64>,
    pub alert: String,
    /// The alert JSON of the row it was merged into.
    pub merged_alert: Option<String>,
}

impl ItemRows {
    pub fn into_trace(self, feed: FeedId, key: ItemKey) -> Result<Trace, StoreError> {
        let kept = match self.kept {
            Some((json, dropped_by)) => {
                let item = serde_json::from_str(&json)
                    .map_err(|cause| StoreError::BadAlert { id: 0, cause })?;
                Some((item, dropped_by))
            }
            None => None,
        };
        let alerts = self
            .alerts
            .into_iter()
            .map(|row| {
                let merged_into = match (row.merged_into, &row.merged_alert) {
                    (Some(id), Some(json)) => Some((id, alert_of(id, json)?)),
                    _ => None,
                };
                Ok(TracedAlert {
                    id: row.id,
                    channel: row.channel,
                    state: row.state,
                    attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
                    last_error: row.last_error,
                    created: from_unix(row.created).unwrap_or_default(),
                    finished: row.finished.and_then(from_unix),
                    merged_into,
                    alert: alert_of(row.id, &row.alert)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Trace {
            feed,
            key,
            first_seen: self.seen.and_then(|(at, _)| from_unix(at)),
            gone_since: self.seen.and_then(|(_, gone)| gone).and_then(from_unix),
            feed_first_polled: self.feed_first_polled.and_then(from_unix),
            kept,
            alerts,
        })
    }
}

/// How a search for an item is asked of an engine: the text exactly (a key or a
/// link), and a `LIKE` pattern (lower case, `\` escaping) that every JSON text
/// holding it matches.
#[derive(Debug, Clone)]
pub struct Search {
    pub exact: String,
    pub like: String,
    words: Vec<String>,
}

impl Search {
    /// A search for a link, a guid (the item's key) or words of a title.
    pub fn new(query: &str) -> Search {
        let exact = query.trim().to_owned();
        let words: Vec<String> = exact
            .to_lowercase()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let longest = words
            .iter()
            .max_by_key(|w| w.len())
            .cloned()
            .unwrap_or_default();
        // SQLite folds only ASCII letters: any other character matches as `_` (one
        // character, in both engines), and `finds` checks the row exactly. In the JSON
        // searched, `"` and `\` are two characters (`\"`, `\\`), a control character
        // more.
        let escaped: String = longest
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' => vec!['_', '_'],
                '%' | '_' => vec!['\\', c],
                c if c.is_control() => vec!['%'],
                c if !c.is_ascii() => vec!['_'],
                c => vec![c],
            })
            .collect();
        Search {
            exact,
            like: format!("%{escaped}%"),
            words,
        }
    }

    /// Whether a row an engine found is the item sought: its key or link is the text,
    /// or its title holds every word. `json` is the kept item or an alert of it; a row
    /// without one was found by its key.
    pub fn finds(&self, key: &str, json: Option<&str>) -> bool {
        #[derive(Deserialize)]
        struct Titled {
            title: String,
            link: Option<String>,
        }
        if key == self.exact {
            return true;
        }
        let Some(Ok(titled)) = json.map(serde_json::from_str::<Titled>) else {
            return false;
        };
        let title = titled.title.to_lowercase();
        titled.link.as_deref() == Some(self.exact.as_str())
            || (!self.words.is_empty() && self.words.iter().all(|w| title.contains(w.as_str())))
    }
}
