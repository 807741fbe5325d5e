//! One poll of one feed: fetch, parse, find new items, match, and record them with their
//! alerts in one transaction.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use tracing::{debug, info, warn};

use super::Pipeline;
use crate::config::{Feed, FirstPoll};
use crate::feed::{self, FetchError, Fetched, ParseError, ParsedFeed, Validators};
use crate::model::{Alert, Item, ItemKey};
use crate::rules::{self, RuleMatch};
use crate::store::{FeedState, PollRecord, StoreError};

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
        let mut results = self.poll_group(std::slice::from_ref(feed)).await?;
        results.remove(0)
    }

    /// Polls feeds that share one source (config entries with the same URL) with a
    /// single fetch, then records each feed's outcome or failure. The results are in
    /// the order of `feeds`; an error of the store itself fails the whole group.
    pub async fn poll_group(
        &self,
        feeds: &[Feed],
    ) -> Result<Vec<Result<PollOutcome, PollError>>, StoreError> {
        let Some(first) = feeds.first() else {
            return Ok(Vec::new());
        };
        let states = feeds
            .iter()
            .map(|f| Ok(self.store.feed_state(&f.id)?.unwrap_or_default()))
            .collect::<Result<Vec<FeedState>, StoreError>>()?;
        // A conditional GET only when every entry holds the same validators: a 304
        // must not hide items from an entry that has not seen them.
        let validators = if states.iter().all(|s| s.validators == states[0].validators) {
            states[0].validators.clone()
        } else {
            Validators::default()
        };
        let fetched = self.fetcher.fetch(&first.source, &validators).await;
        let parsed = match &fetched {
            Ok(Fetched::Body { bytes, charset, .. }) => {
                Some(feed::parse(bytes, charset.as_deref()))
            }
            _ => None,
        };
        let mut results = Vec::with_capacity(feeds.len());
        for (feed, state) in feeds.iter().zip(states) {
            let result = match (&fetched, &parsed) {
                (Err(e), _) => Err(PollError::Fetch(e.clone())),
                (Ok(Fetched::NotModified { max_age }), _) => self
                    .store
                    .record_unchanged(&feed.id, Utc::now())
                    .map(|()| PollOutcome {
                        not_modified: true,
                        publisher_interval: *max_age,
                        ..PollOutcome::default()
                    })
                    .map_err(PollError::from),
                (
                    Ok(Fetched::Body {
                        moved,
                        validators,
                        max_age,
                        ..
                    }),
                    Some(parsed),
                ) => {
                    if let Some(new) = moved {
                        self.announce_move(feed, new);
                    }
                    match parsed {
                        Ok(parsed) => {
                            self.record_items(feed, &state, parsed, validators.clone(), *max_age)
                        }
                        Err(e) => Err(PollError::Parse(e.clone())),
                    }
                }
                (Ok(Fetched::Body { .. }), None) => unreachable!("a body is always parsed"),
            };
            results.push(self.report(feed, result));
        }
        Ok(results)
    }

    /// Logs a poll's outcome, records a failure in the store, and announces a feed
    /// that breaks or recovers.
    fn report(
        &self,
        feed: &Feed,
        result: Result<PollOutcome, PollError>,
    ) -> Result<PollOutcome, PollError> {
        let span = tracing::info_span!("poll", feed = %feed.id);
        let _entered = span.enter();
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
                    match self
                        .store
                        .record_failure(&feed.id, e.kind(), &message, Utc::now())
                    {
                        Ok(n) => n,
                        Err(store) => return Err(PollError::Store(store)),
                    };
                // Log when the failure changes, not on every poll of a feed that stays broken.
                if previous.and_then(|p| p.last_error).as_deref() != Some(message.as_str()) {
                    warn!(kind = e.kind(), failures, error = %message, "poll failed; will retry");
                } else {
                    debug!(kind = e.kind(), failures, "poll failed again");
                }
            }
        }
        if let Err(e) = self.check_health(feed) {
            return Err(PollError::Store(e));
        }
        result
    }

    /// Declares the feed broken after `broken_after_failures` failed polls in a row
    /// or `broken_after` of failing, and recovered at its next success: each change
    /// once, to the health channel if there is one.
    fn check_health(&self, feed: &Feed) -> Result<(), StoreError> {
        let Some(state) = self.store.feed_state(&feed.id)? else {
            return Ok(());
        };
        let now = Utc::now();
        let daemon = &self.config.daemon;
        let failing_for = state.failing_since.map_or(Duration::ZERO, |since| {
            (now - since).to_std().unwrap_or(Duration::ZERO)
        });
        let broken = state.consecutive_failures >= daemon.broken_after_failures
            || (state.consecutive_failures > 0 && failing_for >= daemon.broken_after);
        let recovered = state.consecutive_failures == 0;
        let (notice, snippet) = match (state.broken_since, broken, recovered) {
            (None, true, _) => {
                warn!(
                    failures = state.consecutive_failures,
                    "feed is broken; newshound keeps trying"
                );
                (
                    format!(
                        "feed {} is broken: {}",
                        feed.id,
                        state.last_error.as_deref().unwrap_or("unknown error")
                    ),
                    format!(
                        "{} polls in a row failed, the first at {}. newshound keeps polling it, less often \
                         (at most every {}), and will say when it works again.",
                        state.consecutive_failures,
                        state
                            .failing_since
                            .map_or_else(|| "?".into(), crate::model::rfc3339),
                        humantime::format_duration(daemon.max_backoff)
                    ),
                )
            }
            (Some(since), _, true) => {
                info!("feed recovered");
                (
                    format!("feed {} works again", feed.id),
                    format!(
                        "It was broken from {} to {}.",
                        crate::model::rfc3339(since),
                        crate::model::rfc3339(now)
                    ),
                )
            }
            _ => return Ok(()),
        };
        let alerts: Vec<(String, Alert)> = daemon
            .health_channel
            .iter()
            .map(|channel| {
                let alert = Alert {
                    feed: feed.id.clone(),
                    // Unique per event, so each break and recovery is its own message.
                    key: ItemKey(format!("newshound:health:{}", now.timestamp_micros())),
                    title: notice.clone(),
                    link: Some(feed.source.to_string()),
                    published: Some(now),
                    rules: vec!["feed-health".into()],
                    terms: Vec::new(),
                    snippet: crate::model::Snippet {
                        text: snippet.clone(),
                        highlights: Vec::new(),
                    },
                };
                (channel.clone(), alert)
            })
            .collect();
        self.store
            .set_health(&feed.id, state.broken_since.is_none(), &alerts, now)?;
        if !alerts.is_empty() {
            self.outbox_changed.notify_one();
        }
        Ok(())
    }

    /// Finds a parsed feed's new items, matches them, and records items, alerts and
    /// validators in one transaction.
    fn record_items(
        &self,
        feed: &Feed,
        state: &FeedState,
        parsed: &ParsedFeed,
        validators: Validators,
        max_age: Option<Duration>,
    ) -> Result<PollOutcome, PollError> {
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
