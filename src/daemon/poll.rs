//! One poll of one feed, in steps: fetch and parse, find the new items, match them
//! (`matching`), triage a flood (`flood`), and record them with their alerts in one
//! transaction. Each step lives in its own file; the [`Poller`] puts them in order
//! within the limits on fetches and cores.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use super::article::{Articles, article_links, read_articles};
use super::flood::{Triage, triage};
use super::matching::{self, Keep};
use super::metrics;
use super::notices::report;
use super::outcome::{PollError, PollOutcome, is_flood, is_gap};
use super::schedule::{GroupPoll, Turns};
use super::shared::Shared;
use super::slots::{FetchSlot, Slots};
use crate::config::{Config, Feed, FirstPoll};
use crate::feed::{Document, FetchError, Fetched, Fetcher, ParseError, ParsedFeed};
use crate::model::{FeedId, ItemKey, Validators};
use crate::store::{Dedupe, FeedState, PollRecord, StoreError};

/// A parsed body, shared by the entries of a group.
type Parsed = Result<Arc<ParsedFeed>, ParseError>;

/// What a successful poll of one entry records.
enum Record {
    /// 304, with the server's `max-age`.
    Unchanged(Option<Duration>),
    Items(PollOutcome, Box<PollRecord>),
}

/// Polls feeds: fetches within the global and per-host limits, parses and matches on
/// blocking threads (one per core), and records each poll with its alerts.
pub struct Poller {
    shared: Arc<Shared>,
    fetcher: Fetcher,
    slots: Slots,
    /// Feeds whose permanent move has been logged, so it is said once per run.
    announced_moves: Mutex<HashSet<FeedId>>,
}

impl Poller {
    pub(super) fn new(shared: Arc<Shared>) -> anyhow::Result<Poller> {
        let daemon = &shared.config.daemon;
        let fetcher = Fetcher::new(daemon.fetch_timeout, daemon.max_feed_bytes)
            .context("cannot set up the HTTP client")?;
        Ok(Poller {
            fetcher,
            slots: Slots::new(daemon),
            announced_moves: Mutex::new(HashSet::new()),
            shared,
        })
    }

    /// Polls a group of feeds (one source) by turns with the other instances until
    /// `shutdown`: first after `wait`, then on its interval. `failures` is how many of
    /// its polls in a row had failed before.
    pub(super) async fn poll_forever(
        &self,
        group: Vec<Feed>,
        wait: Duration,
        failures: u32,
        shutdown: CancellationToken,
    ) {
        let turns = Turns {
            store: &self.shared.store,
            clock: &self.shared.clock,
            daemon: &self.shared.config.daemon,
        };
        let poll = || self.poll_timed(&group);
        turns
            .poll_forever(&group, wait, failures, shutdown, poll)
            .await;
    }

    /// Polls a group of feeds sharing a source, timed for `/metrics`.
    pub(super) async fn poll_timed(&self, group: &[Feed]) -> GroupPoll {
        let Some(first) = group.first() else {
            return Ok(Vec::new());
        };
        let started = std::time::Instant::now();
        // Boxed: a feed's task sleeps most of its life, and should not keep a whole
        // poll's worth of state while it does.
        let results = Box::pin(self.poll_group(group))
            .instrument(info_span!("fetch", source = %first.source))
            .await;
        metrics::poll_took(started.elapsed());
        results
    }

    /// Polls `feed` once and records the outcome (or the failure) in the store.
    pub async fn poll(&self, feed: &Feed) -> Result<PollOutcome, PollError> {
        let mut results = self.poll_group(std::slice::from_ref(feed)).await?;
        results.remove(0)
    }

    /// Polls feeds that share one source (config entries with the same URL) with a
    /// single fetch, then records each feed's outcome or failure. The results are in
    /// the order of `feeds`; an error of the store itself fails the whole group.
    pub async fn poll_group(&self, feeds: &[Feed]) -> GroupPoll {
        let Some(first) = feeds.first() else {
            return Ok(Vec::new());
        };
        let ids: Vec<FeedId> = feeds.iter().map(|f| f.id.clone()).collect();
        let states = self.shared.store.feed_states_of(&ids).await?;
        // A conditional GET only when every entry holds the same validators: a 304
        // must not hide items from an entry that has not seen them.
        let validators = if states.iter().all(|s| s.validators == states[0].validators) {
            states[0].validators.clone()
        } else {
            Validators::default()
        };
        let (fetched, parsed, mut slot) = self.fetch_and_parse(first, &validators).await;
        // Articles take fetch slots of their own: holding this one meanwhile could
        // leave every slot to polls waiting for each other.
        if feeds.iter().any(|f| f.fetch_article) {
            drop(slot.take());
        }
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
                    .shared
                    .store
                    .record_unchanged(&feed.id, self.shared.clock.now())
                    .await
                    .map(|()| PollOutcome {
                        not_modified: true,
                        publisher_interval: max_age,
                        ..PollOutcome::default()
                    })
                    .map_err(PollError::from),
                Ok(Record::Items(outcome, record)) => {
                    match self.shared.store.record_poll(*record).await {
                        Ok(_) if outcome.alerts > 0 => {
                            self.shared.outbox_changed.notify_one();
                            Ok(outcome)
                        }
                        Ok(_) => Ok(outcome),
                        Err(e) => Err(PollError::Store(e)),
                    }
                }
                Err(e) => Err(e),
            };
            results.push(report(&self.shared, feed, &state, result).await);
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
        Option<FetchSlot<'_>>,
    ) {
        let mut slot = self.slots.fetch(feed.source.url()).await;
        let mut fetched = self
            .fetcher
            .fetch(&feed.source, validators, &feed.request)
            .await;
        slot.release_host();
        let document = fetched
            .as_mut()
            .ok()
            .and_then(|f| Document::take(f, &feed.source));
        let parsed = match document {
            Some(document) => Some(self.parse(document).await),
            None => None,
        };
        (fetched, parsed, Some(slot))
    }

    /// Parses a fetched document on a blocking thread, at most one per core at a time.
    async fn parse(&self, document: Document) -> Parsed {
        let _core = self.slots.cpu().await;
        let max_items = self.shared.config.daemon.max_items_per_feed;
        let parsed = tokio::task::spawn_blocking(move || document.parse(max_items).map(Arc::new))
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
        let present: Vec<ItemKey> = parsed.items.iter().map(|i| i.key.clone()).collect();
        let new_keys = self.shared.store.unseen(&feed.id, present.clone()).await?;
        let first_poll = state.last_success.is_none();
        let alerting = !first_poll || self.shared.config.daemon.first_poll == FirstPoll::Alert;
        let backfill = self.shared.config.daemon.backfill_new_rules;
        // A feed that published more than it keeps since the last poll: its items are
        // all new, and newer than any before, so they are no re-keyed old ones.
        let gap = is_gap(&parsed.items, new_keys.len(), state.newest_item);
        // A known feed that suddenly has a flood of new items (or re-keyed its old
        // ones) is held: one notice per channel instead of a message per item.
        let flood = !gap
            && is_flood(
                new_keys.len(),
                parsed.items.len(),
                self.shared.config.daemon.flood_threshold,
                first_poll,
            );
        let now = self.shared.clock.now();
        let mut articles = if feed.fetch_article && alerting && !flood {
            let links = article_links(feed, parsed, &new_keys, now);
            read_articles(&self.fetcher, &self.slots, feed, links).await
        } else {
            Articles::default()
        };
        // New items are kept a day, for `why` and for rules added meanwhile; of a
        // first poll only those a filter dropped (unless for such rules): 10,000 new
        // feeds would otherwise write every item's text once more, and even the 755
        // items 1,000 feeds alert on a first ingest cost it 0.1–0.2 s.
        let keep_recent = match (backfill, first_poll) {
            (true, _) | (false, false) => Keep::All,
            (false, true) => Keep::Dropped,
        };
        let matched = if new_keys.is_empty() || !alerting && keep_recent != Keep::All {
            matching::Matched::default()
        } else {
            let shared = Arc::clone(&self.shared);
            let (feed, parsed, new) = (feed.clone(), Arc::clone(parsed), new_keys.clone());
            let texts = std::mem::take(&mut articles.texts);
            let _core = self.slots.cpu().await;
            tokio::task::spawn_blocking(move || {
                let (items, keep) = (&parsed.items, (alerting, keep_recent));
                matching::match_new(&shared, &feed, items, &new, &texts, keep, now)
            })
            .await
            .map_err(|e| ParseError::Malformed(format!("matching failed: {e}")))?
        };
        let Triage {
            queued,
            held,
            flooding,
        } = triage(feed, state, new_keys.len(), flood, matched.alerts, now);
        if !held.is_empty() {
            warn!(
                new_items = new_keys.len(),
                held = held.len(),
                notice = !queued.is_empty(),
                "flood of new items held; `newshound replay --held` releases them"
            );
        }
        let outcome = PollOutcome {
            new_items: new_keys.len(),
            alerts: queued.len(),
            not_modified: false,
            publisher_interval: max_age.max(parsed.ttl),
            held: held.len(),
            dropped: matched.dropped.len(),
            gap,
        };
        let record = PollRecord {
            dedupe: dedupe(&self.shared.config),
            feed: feed.id.clone(),
            recent: matched.recent,
            dropped: matched.dropped,
            caught: matched.caught,
            new_keys,
            present,
            alerts: queued,
            held,
            validators,
            flooding,
            repaired: parsed.repaired.clone(),
            articles_failed: articles.failed,
            article_error: articles.last_error,
            newest: parsed.items.iter().filter_map(|i| i.published).max(),
            gap,
            at: now,
        };
        Ok((outcome, record))
    }

    /// Tries the rules named `rules` on the items of the last 24 hours and queues
    /// alerts for what they match (an item already alerted to a channel is not
    /// alerted there again). Returns how many alerts were queued.
    pub async fn backfill(&self, rules: &HashSet<&str>) -> Result<usize, StoreError> {
        let now = self.shared.clock.now();
        let since = crate::model::earlier(now, crate::store::RECENT);
        let items = self.shared.store.recent_items(since).await?;
        let shared = Arc::clone(&self.shared);
        let names: HashSet<String> = rules.iter().map(|r| (*r).to_owned()).collect();
        // Matching (embedding, for topic rules) is CPU work: on a blocking thread.
        let core = self.slots.cpu().await;
        let matched = tokio::task::spawn_blocking(move || {
            let rules = shared.rules();
            matching::backfill(&shared.config, &rules, items, &names, now)
        })
        .await;
        // A panic while matching is a bug: it goes on as the panic it was.
        let alerts = matched.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        drop(core);
        let queued = self
            .shared
            .store
            .queue_backfill(alerts, now, dedupe(&self.shared.config))
            .await?
            .len();
        if queued > 0 {
            self.shared.outbox_changed.notify_one();
        }
        Ok(queued)
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
}

/// How the store merges alerts about one story, as `config` says.
fn dedupe(config: &Config) -> Dedupe {
    Dedupe {
        window: config.daemon.dedupe_window,
        copy_threshold: config.daemon.copy_threshold,
        rewrite_threshold: config.rewrite_threshold(),
    }
}
