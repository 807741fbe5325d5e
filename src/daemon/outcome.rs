//! What a poll did, or why it failed: read by the poller, the notices and `once`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::feed::{FetchError, ParseError};
use crate::model::Item;
use crate::store::StoreError;

/// What a successful poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Items seen for the first time.
    pub new_items: usize,
    /// Alerts queued in the outbox.
    pub alerts: usize,
    /// The server said nothing changed (304).
    pub not_modified: bool,
    /// The publisher's minimum polling interval: the longer of `Cache-Control:
    /// max-age` and RSS `<ttl>`.
    pub publisher_interval: Option<Duration>,
    /// Alerts held back because the poll looked like a flood.
    pub held: usize,
    /// New items a filter dropped.
    pub dropped: usize,
    /// The feed published more items since its last poll than it keeps: every item
    /// is new, and the oldest is newer than the newest of the last document.
    pub gap: bool,
}

/// A poll is a flood when it brings more new items than `threshold`, or, for a feed
/// polled before, when most of a sizeable feed is suddenly new (guids re-keyed, http →
/// https). On a first poll every item is new, so only the threshold counts.
pub fn is_flood(new_items: usize, total: usize, threshold: usize, first_poll: bool) -> bool {
    /// Below this many items, "most of them are new" is ordinary for a slow feed.
    const SIZEABLE: usize = 10;
    new_items > threshold || (!first_poll && total >= SIZEABLE && new_items * 5 > total * 4)
}

/// Whether a poll found a gap: every one of the document's `items` is new (`new_items`
/// of them), and the oldest dated one is newer than `newest_before`, the newest of the
/// feed's previous document. Then the feed published more items between the two polls
/// than it keeps, and those in between were probably never seen. Never on a first
/// poll (nothing before), nor for a feed whose items carry no dates.
pub fn is_gap(items: &[Item], new_items: usize, newest_before: Option<DateTime<Utc>>) -> bool {
    let Some(before) = newest_before else {
        return false;
    };
    !items.is_empty()
        && new_items >= items.len()
        && items
            .iter()
            .filter_map(|i| i.published)
            .min()
            .is_some_and(|oldest| oldest > before)
}

/// Why a poll failed. Fetch and parse failures are the feed's; store failures are ours.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PollError {
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::Fetch(e) => e.kind(),
            PollError::Parse(e) => e.kind(),
            PollError::Store(_) => "store",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_are_many_new_items_or_most_of_a_sizeable_feed() {
        assert!(!is_flood(50, 200, 50, false));
        assert!(is_flood(51, 200, 50, false));
        assert!(
            is_flood(9, 10, 50, false),
            "9 of 10 items suddenly new: re-keyed"
        );
        assert!(!is_flood(8, 10, 50, false), "4 in 5 is the limit");
        assert!(
            !is_flood(5, 5, 50, false),
            "a small feed may well be all new"
        );
        assert!(!is_flood(0, 0, 50, false));
        assert!(
            !is_flood(40, 40, 50, true),
            "a new feed's items are all new"
        );
        assert!(is_flood(500, 500, 50, true), "but not 500 of them");
    }

    #[test]
    fn a_gap_is_every_item_new_and_newer_than_the_last_documents_newest() {
        let at =
            |hour: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 2, hour, 0, 0).single();
        let item = |hour: Option<u32>| Item {
            key: crate::model::ItemKey(format!("{hour:?}")),
            title: String::new(),
            link: None,
            published: hour.and_then(at),
            summary: String::new(),
            content: String::new(),
            author: String::new(),
            categories: String::new(),
            html: None,
            article: String::new(),
        };
        let later = [item(Some(10)), item(Some(11)), item(None)];
        assert!(is_gap(&later, 3, at(9)));
        assert!(
            !is_gap(&later, 2, at(9)),
            "one item was seen before: they overlap"
        );
        assert!(
            !is_gap(&later, 3, at(10)),
            "not newer than the newest before"
        );
        assert!(!is_gap(&later, 3, None), "nothing before: a first poll");
        assert!(
            !is_gap(&[item(None), item(None)], 2, at(9)),
            "no dates, no telling"
        );
        assert!(!is_gap(&[], 0, at(9)));
    }
}
