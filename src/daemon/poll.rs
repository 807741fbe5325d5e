//! One poll of one feed: fetch, parse, find new items, match, and record them with their
//! alerts in one transaction.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::SemaphorePermit;
use tracing::warn;

use super::Pipeline;
use super::matching::match_item;
use crate::config::{Feed, FirstPoll};
use crate::feed::{self, FetchError, Fetched, ParseError, ParsedFeed};
use crate::model::{FeedId, ItemKey, Validators};
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
    /// Alerts held back because the poll looked like a flood.
    pub held: usize,
}

/// A poll is a flood when it brings more new items than `threshold`, or, for a feed
/// polled before, when most of a sizeable feed is suddenly new (guids re-keyed, http →
/// https). On a first poll every item is new, so only the threshold counts.
pub fn is_flood(new_items: usize, total: usize, threshold: usize, first_poll: bool) -> bool {
    /// Below this many items, "most of them are new" is ordinary for a slow feed.
    const SIZEABLE: usize = 10;
    new_items > threshold || (!first_poll && total >= SIZEABLE && new_items * 5 > total * 4)
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

/// A parsed body, shared by the entries of a group.
type Parsed = Result<Arc<ParsedFeed>, ParseError>;

/// What a successful poll of one entry records.
enum Record {
    /// 304, with the server's `max-age`.
    Unchanged(Option<Duration>),
    Items(PollOutcome, Box<PollRecord>),
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
        let ids: Vec<FeedId> = feeds.iter().map(|f| f.id.clone()).collect();
        let states = self.store.feed_states_of(&ids).await?;
        // A conditional GET only when every entry holds the same validators: a 304
        // must not hide items from an entry that has not seen them.
        let validators = if states.iter().all(|s| s.validators == states[0].validators) {
            states[0].validators.clone()
        } else {
            Validators::default()
        };
        let (fetched, parsed, slot) = self.fetch_and_parse(first, &validators).await;
        // What each entry records is worked out while the fetch slot is held, so that
        // at most `max_concurrent_fetches` bodies and parsed feeds are in memory at once.
        let mut prepared = Vec::with_capacity(feeds.len());
        for (feed, state) in feeds.iter().zip(&states) {
            prepared.push(match (&fetched, &parsed) {
                (Err(e), _) => Err(PollError::Fetch(e.clone())),
                (Ok(Fetched::NotModified { max_age }), _) => Ok(Record::Unchanged(*max_age)),
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
                        Ok(parsed) => self
                            .prepare_items(feed, state, parsed, validators.clone(), *max_age)
                            .await
                            .map(|(outcome, record)| Record::Items(outcome, Box::new(record))),
                        Err(e) => Err(PollError::Parse(e.clone())),
                    }
                }
                (Ok(Fetched::Body { .. }), None) => unreachable!("a body is always parsed"),
            });
        }
        // Waiting for the commit keeps no other feed waiting.
        drop((fetched, parsed, slot));
        let mut results = Vec::with_capacity(feeds.len());
        for ((feed, state), prepared) in feeds.iter().zip(states).zip(prepared) {
            let result = match prepared {
                Ok(Record::Unchanged(max_age)) => self
                    .store
                    .record_unchanged(&feed.id, Utc::now())
                    .await
                    .map(|()| PollOutcome {
                        not_modified: true,
                        publisher_interval: max_age,
                        ..PollOutcome::default()
                    })
                    .map_err(PollError::from),
                Ok(Record::Items(outcome, record)) => match self.store.record_poll(*record).await {
                    Ok(_) if outcome.alerts > 0 => {
                        self.outbox_changed.notify_one();
                        Ok(outcome)
                    }
                    Ok(_) => Ok(outcome),
                    Err(e) => Err(PollError::Store(e)),
                },
                Err(e) => Err(e),
            };
            results.push(self.report(feed, &state, result).await);
        }
        Ok(results)
    }

    /// Fetches a source within the global and per-host limits, and parses what came.
    /// Returns the global slot, for the caller to hold while it works on the body.
    async fn fetch_and_parse(
        &self,
        feed: &Feed,
        validators: &Validators,
    ) -> (
        Result<Fetched, FetchError>,
        Option<Parsed>,
        Option<SemaphorePermit<'_>>,
    ) {
        // The host's slot first: waiting for it must not hold one of the global slots.
        // The semaphores are never closed, so acquiring can only wait, not fail.
        let host = self.host_slot(feed);
        let host_slot = match &host {
            Some(slots) => Some(slots.acquire().await),
            None => None,
        };
        let slot = self.fetch_slots.acquire().await.ok();
        let mut fetched = self.fetcher.fetch(&feed.source, validators).await;
        drop(host_slot);
        let parsed = match &mut fetched {
            Ok(Fetched::Body { bytes, charset, .. }) => {
                Some(self.parse(std::mem::take(bytes), charset.clone()).await)
            }
            _ => None,
        };
        (fetched, parsed, slot)
    }

    /// Parses a body on a blocking thread, at most one per core at a time.
    async fn parse(&self, bytes: Vec<u8>, charset: Option<String>) -> Parsed {
        let _core = self.cpu_slots.acquire().await;
        let max_items = self.config.daemon.max_items_per_feed;
        let parsed = tokio::task::spawn_blocking(move || {
            feed::parse::parse_at_most(&bytes, charset.as_deref(), max_items).map(Arc::new)
        })
        .await
        .unwrap_or_else(|e| Err(ParseError::Malformed(format!("the parser failed: {e}"))));
        if let Ok(feed) = &parsed {
            if feed.dropped > 0 {
                warn!(
                    read = max_items,
                    dropped = feed.dropped,
                    "the feed has more items than daemon.max_items_per_feed; only the first are read"
                );
            }
            if let Some(why) = &feed.repaired {
                warn!(error = %why, "the feed is ill-formed XML; read once repaired");
            }
        }
        parsed
    }

    /// Finds a parsed feed's new items and matches them (on a blocking thread): what
    /// the poll did, and the items, alerts and validators to record in one transaction.
    async fn prepare_items(
        &self,
        feed: &Feed,
        state: &FeedState,
        parsed: &Arc<ParsedFeed>,
        validators: Validators,
        max_age: Option<Duration>,
    ) -> Result<(PollOutcome, PollRecord), PollError> {
        let keys = parsed.items.iter().map(|i| i.key.clone()).collect();
        let new_keys = self.store.unseen(&feed.id, keys).await?;
        let first_poll = state.last_success.is_none();
        let alerting = !first_poll || self.config.daemon.first_poll == FirstPoll::Alert;
        let backfill = self.config.daemon.backfill_new_rules;
        let (alerts, recent) = if new_keys.is_empty() || !(alerting || backfill) {
            (Vec::new(), Vec::new())
        } else {
            let config = Arc::clone(&self.config);
            let (feed, parsed, new) = (feed.clone(), Arc::clone(parsed), new_keys.clone());
            let _core = self.cpu_slots.acquire().await;
            tokio::task::spawn_blocking(move || {
                let new: HashSet<&ItemKey> = new.iter().collect();
                // A key the feed repeats is alerted once, like it is recorded once.
                let mut done: HashSet<&ItemKey> = HashSet::new();
                let fresh = parsed
                    .items
                    .iter()
                    .filter(|i| new.contains(&i.key) && done.insert(&i.key));
                let mut alerts = Vec::new();
                let mut recent = Vec::new();
                for item in fresh {
                    if alerting {
                        alerts.extend(match_item(&config, &feed, item, |_| true));
                    }
                    // Kept only for trying new rules on them: a first poll of 10,000
                    // feeds would otherwise write every item's text once more.
                    if backfill {
                        recent.push(item.clone());
                    }
                }
                (alerts, recent)
            })
            .await
            .map_err(|e| ParseError::Malformed(format!("matching failed: {e}")))?
        };
        // A known feed that suddenly has a flood of new items (or re-keyed its old
        // ones) is held: one notice per channel instead of a message per item.
        let flood = is_flood(
            new_keys.len(),
            parsed.items.len(),
            self.config.daemon.flood_threshold,
            first_poll,
        );
        let (alerts, held) = if flood && !alerts.is_empty() {
            // One notice per flood: a feed that re-keys every poll says so once, until
            // a poll with new items is no flood.
            let notices = if state.flooding_since.is_some() {
                Vec::new()
            } else {
                self.flood_notices(feed, new_keys.len(), &alerts)
            };
            warn!(
                new_items = new_keys.len(),
                held = alerts.len(),
                notice = !notices.is_empty(),
                "flood of new items held; `newshound replay --held` releases them"
            );
            (notices, alerts)
        } else {
            (alerts, Vec::new())
        };
        // A flood is remembered once something was held for it (so that it is
        // announced once), and forgotten at the first poll with new items that is none.
        let flooding = match (new_keys.is_empty(), flood, held.is_empty()) {
            (true, _, _) | (false, true, true) => None,
            (false, false, _) => Some(false),
            (false, true, false) => Some(true),
        };
        let outcome = PollOutcome {
            new_items: new_keys.len(),
            alerts: alerts.len(),
            not_modified: false,
            publisher_interval: max_age.max(parsed.ttl),
            held: held.len(),
        };
        let record = PollRecord {
            dedupe_within: self.config.daemon.dedupe_window,
            feed: feed.id.clone(),
            recent,
            new_keys,
            alerts,
            held,
            validators,
            flooding,
            repaired: parsed.repaired.clone(),
            at: Utc::now(),
        };
        Ok((outcome, record))
    }

    /// Tries the rules named `rules` on the items of the last 24 hours and queues
    /// alerts for what they match (an item already alerted to a channel is not
    /// alerted there again). Returns how many alerts were queued.
    pub async fn backfill(&self, rules: &HashSet<&str>) -> Result<usize, StoreError> {
        let now = Utc::now();
        let since = crate::model::earlier(now, crate::store::RECENT);
        let mut alerts = Vec::new();
        for (feed_id, item) in self.store.recent_items(since).await? {
            // Items of feeds since removed from the config are left alone.
            let Some(feed) = self.config.feeds.iter().find(|f| f.id == feed_id) else {
                continue;
            };
            alerts.extend(match_item(&self.config, feed, &item, |m| {
                rules.contains(m.rule)
            }));
        }
        let queued = self
            .store
            .queue_backfill(alerts, now, self.config.daemon.dedupe_window)
            .await?
            .len();
        if queued > 0 {
            self.outbox_changed.notify_one();
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::is_flood;

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
}
