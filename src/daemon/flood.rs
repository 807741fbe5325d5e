//! Flood triage: what a poll that looks like a flood does with its alerts. They are
//! held, and one notice per channel says so, once per flood.

use chrono::{DateTime, Utc};

use super::notices::flood_notices;
use crate::config::Feed;
use crate::model::Alert;
use crate::store::FeedState;

/// What a poll queues, holds back, and records of a flood.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Triage {
    /// Alerts to queue: the poll's own, or in a flood, the notices that say they are
    /// held.
    pub queued: Vec<(String, Alert)>,
    /// Alerts held back for `replay --held`.
    pub held: Vec<(String, Alert)>,
    /// Whether the feed is flooding now; `None` keeps what was recorded.
    pub flooding: Option<bool>,
}

/// Triages the `alerts` of a poll of `feed` that found `new_items` new items: all are
/// queued, unless the poll is a `flood`; then they are held, and a notice per channel
/// is queued unless the feed was flooding already (`before` is its state before this
/// poll), so that a feed that re-keys every poll says so once.
pub(super) fn triage(
    feed: &Feed,
    before: &FeedState,
    new_items: usize,
    flood: bool,
    alerts: Vec<(String, Alert)>,
    now: DateTime<Utc>,
) -> Triage {
    let holding = flood && !alerts.is_empty();
    // A flood is remembered once something was held for it (so that it is announced
    // once), and forgotten at the first poll with new items that is none.
    let flooding = match (new_items, flood, holding) {
        (0, _, _) | (_, true, false) => None,
        (_, false, _) => Some(false),
        (_, true, true) => Some(true),
    };
    if !holding {
        return Triage {
            queued: alerts,
            held: Vec::new(),
            flooding,
        };
    }
    let notices = if before.flooding_since.is_some() {
        Vec::new()
    } else {
        flood_notices(feed, new_items, &alerts, now)
    };
    Triage {
        queued: notices,
        held: alerts,
        flooding,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;
    use crate::model::{ItemKey, Notice};

    fn feed() -> Feed {
        let toml =
            "[daemon]\nstate_dir = \"state\"\n\n[[feeds]]\nname = \"wire\"\nurl = \"file:w.xml\"\n";
        let dir = tempfile::tempdir().expect("temp dir");
        let config =
            Config::from_toml(&dir.path().join("n.toml"), toml, &HashMap::new()).expect("config");
        config.feeds[0].clone()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000, 0).expect("time")
    }

    /// An alert of item `key` to `channel`.
    fn alert(channel: &str, key: &str) -> (String, Alert) {
        let alert = Alert::from(Notice {
            feed: feed().id,
            key: ItemKey(key.into()),
            title: format!("item {key}"),
            link: None,
            rules: vec!["talks".into()],
            text: String::new(),
            at: now(),
        });
        (channel.to_owned(), alert)
    }

    #[test]
    fn a_poll_that_is_no_flood_queues_its_alerts_and_ends_a_flood() {
        let alerts = vec![alert("me", "1"), alert("team", "1")];
        let flooding = FeedState {
            flooding_since: Some(now()),
            ..FeedState::default()
        };
        let triage = triage(&feed(), &flooding, 2, false, alerts.clone(), now());
        assert_eq!(
            triage,
            Triage {
                queued: alerts,
                held: Vec::new(),
                flooding: Some(false),
            }
        );
    }

    #[test]
    fn a_flood_is_held_and_announced_once_per_channel() {
        let alerts = vec![alert("me", "1"), alert("me", "2"), alert("team", "1")];
        let triage = triage(
            &feed(),
            &FeedState::default(),
            60,
            true,
            alerts.clone(),
            now(),
        );
        assert_eq!(triage.held, alerts);
        assert_eq!(triage.flooding, Some(true));
        let channels: Vec<&str> = triage.queued.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(channels, ["me", "team"], "one notice per channel");
        assert!(triage.queued[0].1.title.contains("60 new items"));
    }

    #[test]
    fn a_feed_flooding_already_is_not_announced_again() {
        let flooding = FeedState {
            flooding_since: Some(now()),
            ..FeedState::default()
        };
        let triage = triage(&feed(), &flooding, 60, true, vec![alert("me", "1")], now());
        assert!(triage.queued.is_empty());
        assert_eq!(triage.held.len(), 1);
        assert_eq!(triage.flooding, Some(true));
    }

    /// Nothing held, nothing to announce: the flood is remembered only once something
    /// was held for it. A poll without new items leaves the record alone too.
    #[test]
    fn a_flood_without_alerts_or_a_poll_without_new_items_changes_nothing() {
        let state = FeedState::default();
        assert_eq!(
            triage(&feed(), &state, 60, true, Vec::new(), now()),
            Triage::default()
        );
        assert_eq!(
            triage(&feed(), &state, 0, false, Vec::new(), now()),
            Triage::default()
        );
    }
}
