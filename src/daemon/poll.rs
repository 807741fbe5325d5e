//! One poll of one feed: fetch, parse, find new items, match, and record them with their
//! alerts in one transaction.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use tracing::{debug, info, warn};

use super::Pipeline;
use crate::config::{Feed, FirstPoll};
use crate::feed::{self, FetchError, Fetched, ParseError};
use crate::model::{Alert, Item, ItemKey};
use crate::rules::{self, RuleMatch};
use crate::store::{PollRecord, StoreError};

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

impl Pipeline {
    /// Polls `feed` once and records the outcome (or the failure) in the store.
    pub async fn poll(&self, feed: &Feed) -> Result<PollOutcome, PollError> {
        let result = self.try_poll(feed).await;
        match &result {
            Ok(outcome) if outcome.alerts > 0 || outcome.new_items > 0 => info!(
                new_items = outcome.new_items,
                alerts = outcome.alerts,
                "polled"
            ),
            Ok(outcome) => debug!(not_modified = outcome.not_modified, "polled, nothing new"),
            Err(PollError::Store(e)) => warn!(error = %e, "cannot record poll"),
            Err(e) => {
                let previous = self.store.feed_state(&feed.id).ok().flatten();
                let message = e.to_string();
                let failures =
                    self.store
                        .record_failure(&feed.id, e.kind(), &message, Utc::now())?;
                // Log when the failure changes, not on every poll of a feed that stays broken.
                if previous.and_then(|p| p.last_error).as_deref() != Some(message.as_str()) {
                    warn!(kind = e.kind(), failures, error = %message, "poll failed; will retry next interval");
                } else {
                    debug!(kind = e.kind(), failures, "poll failed again");
                }
            }
        }
        result
    }

    async fn try_poll(&self, feed: &Feed) -> Result<PollOutcome, PollError> {
        let state = self.store.feed_state(&feed.id)?.unwrap_or_default();
        let (bytes, charset, validators, max_age) =
            match self.fetcher.fetch(&feed.source, &state.validators).await? {
                Fetched::NotModified { max_age } => {
                    self.store.record_unchanged(&feed.id, Utc::now())?;
                    return Ok(PollOutcome {
                        not_modified: true,
                        publisher_interval: max_age,
                        ..PollOutcome::default()
                    });
                }
                Fetched::Body {
                    bytes,
                    charset,
                    validators,
                    moved,
                    max_age,
                } => {
                    if let Some(new) = moved {
                        self.announce_move(feed, &new);
                    }
                    (bytes, charset, validators, max_age)
                }
            };
        let parsed = feed::parse(&bytes, charset.as_deref())?;
        let new_keys = self
            .store
            .unseen(&feed.id, parsed.items.iter().map(|i| &i.key))?;
        let first_poll = state.last_success.is_none();
        let alerting = !first_poll || self.config.daemon.first_poll == FirstPoll::Alert;
        let mut alerts = Vec::new();
        if alerting {
            let new: HashSet<&ItemKey> = new_keys.iter().copied().collect();
            // A key the feed repeats is alerted once, like it is recorded once.
            let mut done: HashSet<&ItemKey> = HashSet::new();
            for item in parsed
                .items
                .iter()
                .filter(|i| new.contains(&i.key) && done.insert(&i.key))
            {
                let matches = self.config.rules.matches(&feed.id.0, item);
                alerts.extend(self.route(feed, item, &matches));
            }
        }
        let outcome = PollOutcome {
            new_items: new_keys.len(),
            alerts: alerts.len(),
            not_modified: false,
            publisher_interval: max_age.max(parsed.ttl),
        };
        self.store.record_poll(&PollRecord {
            feed: &feed.id,
            new_keys,
            alerts,
            validators,
            at: Utc::now(),
        })?;
        if outcome.alerts > 0 {
            self.outbox_changed.notify_one();
        }
        Ok(outcome)
    }

    /// Says once per run that a feed answers from a new address for good.
    fn announce_move(&self, feed: &Feed, new: &url::Url) {
        let mut announced = self
            .announced_moves
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if announced.insert(feed.id.clone()) {
            warn!(new_url = %new, "feed moved permanently (301/308); update its url in the config");
        }
    }

    /// One alert per channel, each listing the rules (and their terms) that send there.
    fn route(&self, feed: &Feed, item: &Item, matches: &[RuleMatch]) -> Vec<(String, Alert)> {
        let mut channels: Vec<&str> = Vec::new();
        for m in matches {
            for channel in self.config.routes.get(m.rule).into_iter().flatten() {
                if !channels.contains(&channel.as_str()) {
                    channels.push(channel);
                }
            }
        }
        channels
            .into_iter()
            .map(|channel| {
                let mine: Vec<RuleMatch> = matches
                    .iter()
                    .filter(|m| {
                        self.config
                            .routes
                            .get(m.rule)
                            .is_some_and(|c| c.iter().any(|c| c == channel))
                    })
                    .cloned()
                    .collect();
                let alert = Alert {
                    feed: feed.id.clone(),
                    key: item.key.clone(),
                    title: item.title.clone(),
                    link: item.link.clone(),
                    published: item.published,
                    rules: mine.iter().map(|m| m.rule.to_owned()).collect(),
                    terms: rules::matched_terms(&mine),
                    snippet: rules::snippet(item, &mine),
                };
                (channel.to_owned(), alert)
            })
            .collect()
    }
}
