//! What crosses the store boundary: feed state, poll records and outbox rows, plain
//! data with no engine type in them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::{Alert, FeedId, Gist, Item, ItemKey, Sketch, Validators};

/// Seconds since the epoch as a time: both engines store times as Unix seconds.
pub fn from_unix(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// Content longer than this is cut when an item is kept (the start is what rules and
/// snippets mostly need).
const RECENT_CONTENT_BYTES: usize = 4 * 1024;

/// An item as kept for [`RECENT`](super::RECENT): JSON, its content cut.
pub fn recent_json(item: &Item) -> Result<String, StoreError> {
    let cut = crate::model::floor_char_boundary(&item.content, RECENT_CONTENT_BYTES);
    if cut < item.content.len() {
        let mut item = item.clone();
        item.content.truncate(cut);
        serde_json::to_string(&item)
    } else {
        serde_json::to_string(item)
    }
    .map_err(|cause| StoreError::BadAlert { id: 0, cause })
}

/// What the store remembers about a feed between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    pub validators: Validators,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// The first failure of the current run of failures.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the feed was declared broken; `None` while healthy.
    pub broken_since: Option<DateTime<Utc>>,
    /// When its polls started to look like a flood; `None` while they do not.
    pub flooding_since: Option<DateTime<Utc>>,
    /// Until when the server asked not to be polled (Retry-After on 429/503).
    pub retry_after_until: Option<DateTime<Utc>>,
    /// What was wrong with the last document fetched, if it was read only once made
    /// well-formed; `None` when it was well-formed.
    pub repaired: Option<String>,
    /// How many of its items' articles (`fetch_article`) could not be read, in all.
    pub articles_failed: u64,
    /// Why the last of them could not be, with its link.
    pub article_error: Option<String>,
    /// The newest publication date among the items of its last document, if any item
    /// was dated.
    pub newest_item: Option<DateTime<Utc>>,
    /// How many polls found that it had published more than it keeps since the one
    /// before (items probably missed).
    pub gaps: u64,
    /// How many of its items filters dropped, in all.
    pub dropped: u64,
    /// When it was first polled with success: its first poll, which `first_poll`
    /// governs. `None` before that, and for feeds first polled before newshound kept
    /// it.
    pub first_success: Option<DateTime<Utc>>,
}

/// When polls of each feed brought new items, newest first.
pub type NewItemTimes = std::collections::HashMap<FeedId, Vec<DateTime<Utc>>>;

/// A failed poll, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error's stable short name (`timeout`, `http_status`, …).
    pub kind: String,
    pub message: String,
    /// The end of the wait the server asked for, if it asked.
    pub retry_after_until: Option<DateTime<Utc>>,
}

/// The result of one successful poll, recorded in a single transaction.
#[derive(Debug, Clone)]
pub struct PollRecord {
    pub feed: FeedId,
    /// Keys of items seen for the first time.
    pub new_keys: Vec<ItemKey>,
    /// Keys of every item the document holds, new or not: those still in the feed,
    /// never forgotten. An item recorded before and missing from them has left.
    pub present: Vec<ItemKey>,
    /// The new items, kept for [`RECENT`](super::RECENT) so new rules can be tried on them.
    pub recent: Vec<Item>,
    /// The new items a filter dropped, each with that filter's label.
    pub dropped: Vec<(ItemKey, String)>,
    /// What the rules caught: each rule that matched a new item, with its title.
    pub caught: Vec<(String, String)>,
    /// Alerts to queue, each with the channel it goes to.
    pub alerts: Vec<(String, Alert)>,
    /// Alerts to keep without sending (a flood), for `replay --held`.
    pub held: Vec<(String, Alert)>,
    /// Validators for the next conditional GET, stored only now that items are recorded.
    pub validators: Validators,
    /// Whether this poll looked like a flood; `None` when it brought nothing new.
    pub flooding: Option<bool>,
    /// What was wrong with the document, if it was read only once made well-formed.
    pub repaired: Option<String>,
    /// How many of the new items' articles could not be read (`fetch_article`).
    pub articles_failed: u32,
    /// Why the last of them could not be, with its link.
    pub article_error: Option<String>,
    /// The newest publication date among the document's items (`None`: none dated).
    pub newest: Option<DateTime<Utc>>,
    /// Whether the feed published more than it keeps since its last poll.
    pub gap: bool,
    pub at: DateTime<Utc>,
    /// How an alert about a story already queued for its channel is found and merged
    /// into that one instead of sent again.
    pub dedupe: Dedupe,
}

impl PollRecord {
    /// For each dropped item, the label of the filter that dropped it.
    pub fn dropped_by(&self) -> std::collections::HashMap<&ItemKey, &str> {
        self.dropped
            .iter()
            .map(|(k, by)| (k, by.as_str()))
            .collect()
    }

    /// A poll of `feed` at `at` that found nothing and merges no stories: the start
    /// of a record for tests and benchmarks, which fill in what their poll found.
    pub fn new(feed: FeedId, at: DateTime<Utc>) -> PollRecord {
        PollRecord {
            feed,
            new_keys: Vec::new(),
            present: Vec::new(),
            recent: Vec::new(),
            dropped: Vec::new(),
            caught: Vec::new(),
            alerts: Vec::new(),
            held: Vec::new(),
            validators: Validators::default(),
            flooding: None,
            repaired: None,
            articles_failed: 0,
            article_error: None,
            newest: None,
            gap: false,
            at,
            dedupe: Dedupe::OFF,
        }
    }
}

/// An alert waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub channel: String,
    pub alert: Alert,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When it was queued.
    pub created: DateTime<Utc>,
}

/// Where an outbox row is in its life. The transitions, each one method of [`Store`](super::Store):
///
/// | from                  | event                                   | to        | method            |
/// |-----------------------|-----------------------------------------|-----------|-------------------|
/// | —                     | an item matched                         | pending   | `record_poll`     |
/// | —                     | an item matched during a flood          | held      | `record_poll`     |
/// | —                     | the same story is already queued        | merged    | `record_poll`     |
/// | pending (due)         | a dispatcher claims it for a lease      | sending   | `claim_due`       |
/// | sending               | the receiver accepted it                | sent      | `mark_sent`       |
/// | sending               | failed, retryable, within its lifetime  | pending   | `mark_retry`      |
/// | sending               | waits for its digest or a rate slot     | pending   | `defer`           |
/// | sending               | failed for good, or out of lifetime     | dead      | `mark_dead`       |
/// | sending (lease over)  | its dispatcher died or hung             | pending   | `release_expired` |
/// | sending               | start-up, holding the `StateLock`       | pending   | `release_claims`  |
/// | dead, held, sent      | `newshound replay`                      | pending   | `requeue`         |
///
/// Any other event leaves a row where it is: a late `mark_sent` for a row whose lease
/// was taken back does not touch it.
///
/// A failed row told to wait beyond its lifetime stays pending but is made due when
/// its lifetime ends (`end_waits_at_lifetime`), so its last failure makes it dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Claimed by a dispatcher until its lease runs out.
    Sending,
    Sent,
    /// Given up on; kept for `replay --dead`.
    Dead,
    /// Part of a flood; kept unsent for `replay --held`.
    Held,
    /// Another feed's copy of a story already queued; listed as a source there.
    Merged,
}

impl OutboxState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
            OutboxState::Held => "held",
            OutboxState::Merged => "merged",
        }
    }
}

/// A row `replay` may put back in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayable {
    pub id: i64,
    pub channel: String,
    pub alert: Alert,
    pub created: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// An alert of the outbox, as the status page lists the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentAlert {
    pub id: i64,
    pub channel: String,
    /// As recorded: `pending`, `sent`, `dead`, `held` or `merged`.
    pub state: String,
    pub created: DateTime<Utc>,
    pub alert: Alert,
}

/// An example a rule learned from a click on a feedback link of one of its alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    pub rule: String,
    /// The item voted on: one example per rule and item.
    pub feed: FeedId,
    pub key: ItemKey,
    /// The alert (outbox row) whose link was clicked.
    pub alert: i64,
    pub vote: crate::model::Vote,
    /// The item's text as an example: its title, then the passage its alert quoted.
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A `learned` row as both engines read it: rule, feed, item key, alert, vote, text,
/// time.
pub fn learned_row(
    (rule, feed, key, alert): (String, String, String, i64),
    vote: &str,
    text: String,
    at: i64,
) -> Learned {
    Learned {
        rule,
        feed: FeedId(feed),
        key: ItemKey(key),
        alert,
        vote: crate::model::Vote::parse(vote).unwrap_or(crate::model::Vote::Not),
        text,
        at: from_unix(at).unwrap_or_default(),
    }
}

/// What one rule caught on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDay {
    pub rule: String,
    /// The day's start (UTC midnight).
    pub day: DateTime<Utc>,
    /// How many items it caught that day.
    pub caught: u64,
    /// The last of them, and when.
    pub last_title: String,
    pub last_at: DateTime<Utc>,
}

/// What `polls` caught, added up per rule and day (Unix seconds): how many items,
/// and the latest one's title and time; in (rule, day) order, the order both engines
/// write them in.
pub fn caught_days<'a>(
    polls: impl IntoIterator<Item = &'a PollRecord>,
) -> std::collections::BTreeMap<(&'a str, i64), (i64, &'a str, i64)> {
    let mut days: std::collections::BTreeMap<(&str, i64), (i64, &str, i64)> = Default::default();
    for poll in polls {
        let (day, at) = (day_of(poll.at), poll.at.timestamp());
        for (rule, title) in &poll.caught {
            let count = days.entry((rule, day)).or_insert((0, title, at));
            count.0 += 1;
            if at >= count.2 {
                (count.1, count.2) = (title, at);
            }
        }
    }
    days
}

/// The start (UTC midnight) of the day holding `at`, in Unix seconds: how the days
/// of [`RuleDay`] are stored.
pub fn day_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(DAY) * DAY
}

/// Seconds in a day.
const DAY: i64 = 24 * 60 * 60;

/// An alert that failed and waits for another try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrying {
    pub id: i64,
    pub channel: String,
    /// Tries so far.
    pub attempts: u32,
    pub next_attempt: DateTime<Utc>,
    pub last_error: String,
}

/// How many outbox rows are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub merged: u64,
    pub dead: u64,
    pub held: u64,
}

impl OutboxCounts {
    /// Counts `n` rows in `state`, as the outbox spells it.
    pub(super) fn count(&mut self, state: &str, n: u64) {
        match state {
            "pending" => self.pending = n,
            "sending" => self.sending = n,
            "sent" => self.sent = n,
            "held" => self.held = n,
            "merged" => self.merged = n,
            _ => self.dead = n,
        }
    }
}

/// What a pruning deletes: the rows of each kind older than its time.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Seen items missing from their feed since before this are forgotten; so is a
    /// feed no longer configured and not polled since, with its items.
    pub forget_before: DateTime<Utc>,
    /// Sent alerts finished before this (and what was merged into them).
    pub sent_before: DateTime<Utc>,
    /// Dead letters finished, and held alerts queued, before this.
    pub dead_before: DateTime<Utc>,
    /// The feeds of the config, which are never forgotten whole.
    pub configured: Vec<FeedId>,
}

/// The rows one pruning deleted, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pruned {
    pub seen_items: u64,
    /// Feeds no longer configured, forgotten whole (their items count in `seen_items`).
    pub feeds: u64,
    pub sent: u64,
    pub dead: u64,
    pub held: u64,
    /// Alerts merged into one that was deleted.
    pub merged: u64,
    /// Bytes the state file gave back to the disk (the embedded engine).
    pub bytes_freed: u64,
}

/// `3 seen items, 1 sent alert deleted`, or `nothing expired`.
impl std::fmt::Display for Pruned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = [
            (self.seen_items, "seen item", "seen items"),
            (self.sent, "sent alert", "sent alerts"),
            (self.merged, "merged alert", "merged alerts"),
            (self.dead, "dead letter", "dead letters"),
            (self.held, "held alert", "held alerts"),
            (self.feeds, "removed feed", "removed feeds"),
        ];
        let deleted: Vec<String> = rows
            .iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
            .collect();
        if deleted.is_empty() {
            f.write_str("nothing expired")
        } else {
            write!(f, "{} deleted", deleted.join(", "))
        }
    }
}

/// The kinds of rows that expire, each deleted by a statement of the store's `sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Seen items missing from their feed since before the time.
    Gone,
    Sent,
    Dead,
    Held,
    /// Merged into an alert that is no longer there.
    Orphans,
    /// Days of what rules caught, older than the charts show.
    RuleDays,
}

/// A flooding feed keeps at most this many alerts held for `replay --held`; beyond
/// that its items are still recorded as seen, their alerts not kept.
pub const MAX_HELD_PER_FEED: usize = 1000;

/// A claim on due outbox rows (of `channel` only, if given): up to `limit`, held
/// until `now + lease`.
#[derive(Debug, Clone)]
pub struct Claim {
    pub channel: Option<String>,
    pub now: DateTime<Utc>,
    pub limit: usize,
    pub lease: Duration,
}

/// A feed's health as of `at`: broken or well again, and the notices that say so.
#[derive(Debug, Clone)]
pub struct Health {
    pub feed: FeedId,
    pub broken: bool,
    pub alerts: Vec<(String, Alert)>,
    pub at: DateTime<Utc>,
}

/// How alerts about one story are found: an alert queued for a channel within
/// `window` of an earlier one about the same story is merged into it. The same story
/// is the same link or title ([`StoryKeys`](crate::model::StoryKeys)); a copy: a text
/// whose [`Sketch`] agrees with the earlier one's on `copy_threshold` of its hashes or
/// more; or, when `rewrite_threshold` is set, a rewrite: a text whose [`Gist`] tells
/// the earlier one's story ([`Gist::same_story`] at that threshold).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dedupe {
    pub window: Duration,
    pub copy_threshold: f32,
    pub rewrite_threshold: Option<f32>,
}

impl Dedupe {
    /// No merging at all.
    pub const OFF: Dedupe = Dedupe {
        window: Duration::ZERO,
        copy_threshold: 1.0,
        rewrite_threshold: None,
    };
}

/// An earlier alert that may be the first of a later item's story: its id, JSON, and
/// what it was stored with to compare (a sketch's or a gist's bytes).
pub type Candidate = (i64, String, Option<Vec<u8>>);

/// Of the `candidates`, the one `score` rates highest (the earliest of equals; `score`
/// says `None` for one that is not the same story): the first alert of the story.
fn closest(
    candidates: impl IntoIterator<Item = Candidate>,
    score: impl Fn(&[u8]) -> Option<f32>,
) -> Option<(i64, String)> {
    let mut best: Option<(f32, i64, String)> = None;
    for (id, json, stored) in candidates {
        let Some(similarity) = stored.as_deref().and_then(&score) else {
            continue;
        };
        let better = best
            .as_ref()
            .is_none_or(|(s, best_id, _)| similarity > *s || (similarity == *s && id < *best_id));
        if better {
            best = Some((similarity, id, json));
        }
    }
    best.map(|(_, id, json)| (id, json))
}

/// A way a later item may tell the story of an earlier alert again, with what it is
/// judged by: a copy (its sketch, at the copy threshold) or a rewrite (its gist, at
/// the rewrite threshold). The engines look each up in turn with the same SQL.
pub enum Retelling<'a> {
    Copy(&'a Sketch, f32),
    Rewrite(&'a Gist, f32),
}

impl<'a> Retelling<'a> {
    /// The ways `alert`'s item may retell an earlier story, in the order they are
    /// looked for: a copy, then (when `dedupe` merges them) a rewrite.
    pub fn of(alert: &'a Alert, dedupe: Dedupe) -> impl Iterator<Item = Retelling<'a>> {
        let copy = alert
            .sketch
            .as_ref()
            .map(|sketch| Retelling::Copy(sketch, dedupe.copy_threshold));
        let rewrite = alert
            .gist
            .as_ref()
            .zip(dedupe.rewrite_threshold)
            .map(|(gist, threshold)| Retelling::Rewrite(gist, threshold));
        copy.into_iter().chain(rewrite)
    }

    /// The keys its candidates are looked up by in `story_band` (for
    /// [`sql::outbox::retold_candidates`](super::sql::outbox::retold_candidates)); `None` when there
    /// is nothing to look up by (a gist naming too few names).
    pub fn keys(&self) -> Option<Vec<i64>> {
        match self {
            Retelling::Copy(sketch, _) => Some(sketch.bands().to_vec()),
            Retelling::Rewrite(gist, _) => Some(gist.lookup_keys()?.to_vec()),
        }
    }

    /// Of the `candidates` the lookup found, the first alert of the story: the most
    /// similar copy at the threshold or above, or the rewrite whose gist tells the
    /// same story with the closest meaning.
    pub fn closest(
        &self,
        candidates: impl IntoIterator<Item = Candidate>,
    ) -> Option<(i64, String)> {
        match *self {
            Retelling::Copy(sketch, threshold) => closest(candidates, |stored| {
                let similarity = sketch.similarity(&Sketch::from_bytes(stored)?);
                (similarity >= threshold).then_some(similarity)
            }),
            Retelling::Rewrite(gist, threshold) => closest(candidates, |stored| {
                let likeness = gist.same_story(&Gist::from_bytes(stored)?, threshold)?;
                Some(likeness.similarity)
            }),
        }
    }
}

/// The keys a story's first alert is looked up by in `story_band`: its sketch's bands
/// (for copies) and its gist's names (for rewrites).
pub fn story_keys(alert: &Alert) -> impl Iterator<Item = i64> + '_ {
    let bands = alert.sketch.iter().flat_map(Sketch::bands);
    bands.chain(alert.gist.iter().flat_map(Gist::name_keys))
}

/// How the engines' `queue` files alerts.
#[derive(Debug, Clone, Copy)]
pub enum Queue {
    /// To send, merging same-story alerts as `Dedupe` says.
    Send(Dedupe),
    /// To hold (a flood), as they are, up to [`MAX_HELD_PER_FEED`] for their feed (all
    /// of one feed).
    Hold,
}

impl Queue {
    /// Where the dedupe window starts at `at` (Unix seconds), when alerts are merged.
    pub fn window_start(self, at: DateTime<Utc>) -> Option<i64> {
        match self {
            Queue::Send(d) if !d.window.is_zero() => {
                Some(at.timestamp().saturating_sub(d.window.as_secs() as i64))
            }
            _ => None,
        }
    }

    /// Where the window starts at `at`, and how stories are told apart, if `alert`
    /// may be merged into an earlier one: a rule matched it (newshound's own notices
    /// are never merged).
    pub fn merging(self, alert: &Alert, at: DateTime<Utc>) -> Option<(i64, Dedupe)> {
        match self {
            Queue::Send(d) if !alert.why.is_empty() => Some((self.window_start(at)?, d)),
            _ => None,
        }
    }

    /// The state a new row starts in: held, merged into an earlier alert about the
    /// same story (`merging`), or pending.
    pub fn state(self, merging: bool) -> OutboxState {
        match (self, merging) {
            (Queue::Hold, _) => OutboxState::Held,
            (Queue::Send(_), true) => OutboxState::Merged,
            (Queue::Send(_), false) => OutboxState::Pending,
        }
    }
}

/// The JSON of outbox row `id` (an alert stored as `first_json`) with `alert`'s feed
/// added to its other sources: what story dedupe writes back when it merges.
pub fn with_source(id: i64, first_json: &str, alert: &Alert) -> Result<String, StoreError> {
    let mut first = alert_of(id, first_json)?;
    first.also_in.push(crate::model::Source {
        feed: alert.feed.clone(),
        title: alert.title.clone(),
        link: alert.link.clone(),
    });
    serde_json::to_string(&first).map_err(|cause| StoreError::BadAlert { id, cause })
}

/// What becomes of claimed (or, for `Requeue`, finished) rows.
#[derive(Debug, Clone)]
pub enum Mark {
    Sent {
        at: DateTime<Utc>,
    },
    Retry {
        next_attempt: DateTime<Utc>,
        error: String,
    },
    Defer {
        until: DateTime<Utc>,
    },
    Dead {
        at: DateTime<Utc>,
        error: String,
    },
    Requeue {
        now: DateTime<Utc>,
    },
}

impl Mark {
    /// What the move writes: a time (`$2` in [`sql::outbox::mark`](super::sql::outbox::mark))
    /// and, for a failure, the error (`$3`).
    pub fn values(&self) -> (i64, Option<&str>) {
        match self {
            Mark::Sent { at } => (at.timestamp(), None),
            Mark::Retry {
                next_attempt,
                error,
            } => (next_attempt.timestamp(), Some(error)),
            Mark::Defer { until } => (until.timestamp(), None),
            Mark::Dead { at, error } => (at.timestamp(), Some(error)),
            Mark::Requeue { now } => (now.timestamp(), None),
        }
    }
}

/// The alert stored as JSON in outbox row `id`.
pub fn alert_of(id: i64, json: &str) -> Result<Alert, StoreError> {
    serde_json::from_str(json).map_err(|cause| StoreError::BadAlert { id, cause })
}

/// How a dispatch pass claims outbox rows: at most `batch` at a time, each for `lease`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimPolicy {
    pub batch: usize,
    /// How long a claimed row is the claimer's.
    pub lease: Duration,
}

impl ClaimPolicy {
    /// One instance delivers the outbox. The lease is longer than any single delivery
    /// can take (SMTP and webhook timeouts are well below it), so only a dead or hung
    /// dispatcher loses a row.
    pub const ALONE: ClaimPolicy = ClaimPolicy {
        batch: 100,
        lease: Duration::from_secs(10 * 60),
    };
    /// Several instances share the outbox: a row claimed by an instance that died goes
    /// to another within the lease, which is still longer than a delivery's timeouts
    /// (30 s by default), so a live instance's rows do not expire while it sends them.
    /// Few rows at a time, so that a claimed row never waits long for its turn.
    pub const SHARED: ClaimPolicy = ClaimPolicy {
        batch: 16,
        lease: Duration::from_secs(60),
    };
}

/// Whether this instance may poll a source now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollClaim {
    /// It may: no other instance polls it, and it is due.
    Granted,
    /// Not before this time: another instance polls it, or polled it and set when it
    /// is next due.
    Later(DateTime<Utc>),
}

/// An instance sharing the state, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub started: DateTime<Utc>,
    pub heartbeat: DateTime<Utc>,
    /// A hash of its effective config: instances that differ run different configs.
    pub config_hash: String,
    /// Sources it is polling now.
    pub polling: u64,
    /// Alerts it is delivering now.
    pub delivering: u64,
}

/// Everything a state holds, as plain rows, for moving it from the embedded engine to a
/// database (`newshound migrate-state`). Times are Unix seconds, as both engines keep
/// them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dump {
    pub feeds: Vec<(FeedId, FeedState)>,
    /// Feed, item key, first seen, gone from its feed since.
    pub seen: Vec<(String, String, i64, Option<i64>)>,
    pub outbox: Vec<DumpedRow>,
    /// Key, value, set at.
    pub notes: Vec<(String, String, i64)>,
    /// Feed, item key, seen, the item as JSON, the filter that dropped it.
    pub recent: Vec<(String, String, i64, String, Option<String>)>,
    /// What each rule caught, per day.
    pub rule_days: Vec<RuleDay>,
    /// What feedback taught.
    pub learned: Vec<Learned>,
}

/// One outbox row as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedRow {
    pub id: i64,
    pub feed: String,
    pub item_key: String,
    pub channel: String,
    /// The alert as JSON.
    pub alert: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub created: i64,
    pub finished: Option<i64>,
    pub story_link: Option<String>,
    pub story_title: Option<String>,
    pub merged_into: Option<i64>,
}
