//! The contract every engine keeps: one method per operation of the [`Store`](super::Store),
//! each answering with a future, so that the store holds any engine behind one pointer
//! and never asks which one it has. What only a database shared by several instances
//! does (polls by turns, heartbeats) has the single instance's answer as its default.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::{BoxFuture, FutureExt as _, ready};

use super::trace::{ItemRows, Search};
use super::types::{Claim, Expired, Health, Mark, NewItemTimes, Queue};
use super::{
    Dump, Failure, FeedState, Instance, Learned, OutboxCounts, OutboxRow, OutboxState, PollClaim,
    PollRecord, RecentAlert, Replayable, Retrying, RuleDay, StoreError,
};
use crate::model::{Alert, FeedId, Item, ItemKey};

/// What an engine's operation answers, once it is done (and durable, for a write).
pub type Answer<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// An answer already known, with no work to wait for.
pub fn known<'a, T: Send + 'a>(value: Result<T, StoreError>) -> Answer<'a, T> {
    ready(value).boxed()
}

/// The operations of the store on one engine; the [`Store`](super::Store) documents
/// each. Arguments are owned, since an engine may run the operation on another thread.
pub trait Engine: Send + Sync + std::fmt::Debug {
    /// Whether other instances may share this state.
    fn is_shared(&self) -> bool;

    fn feed_state(&self, feed: FeedId) -> Answer<'_, Option<FeedState>>;
    fn feed_states_of(&self, feeds: Vec<FeedId>) -> Answer<'_, Vec<FeedState>>;
    fn feed_states(&self) -> Answer<'_, Vec<(FeedId, FeedState, u64)>>;
    fn new_item_times(&self, limit: usize) -> Answer<'_, NewItemTimes>;
    fn unseen(&self, feed: FeedId, keys: Vec<ItemKey>) -> Answer<'_, Vec<ItemKey>>;
    fn record_poll(&self, poll: PollRecord) -> Answer<'_, Vec<i64>>;
    fn record_unchanged(&self, feed: FeedId, at: DateTime<Utc>) -> Answer<'_, ()>;
    fn record_failure(&self, feed: FeedId, failure: Failure, at: DateTime<Utc>) -> Answer<'_, u32>;
    fn set_health(&self, health: Health) -> Answer<'_, ()>;

    fn claim_due(&self, claim: Claim) -> Answer<'_, Vec<OutboxRow>>;
    fn release_expired(&self, now: DateTime<Utc>) -> Answer<'_, usize>;
    fn end_waits_at(&self, lifetime: Duration) -> Answer<'_, usize>;
    /// Returns every claim to `pending`, where no other instance can hold one.
    fn release_claims(&self) -> Answer<'_, usize>;
    fn next_due(&self) -> Answer<'_, Option<DateTime<Utc>>>;
    /// Moves each of `ids` as `mark` says, if it is in the state the move starts from.
    fn mark(&self, ids: Vec<i64>, mark: Mark) -> Answer<'_, ()>;
    fn outbox_counts(&self) -> Answer<'_, OutboxCounts>;
    /// Deletes at most `limit` rows of `what` that expired before `before`; how many.
    fn expire(&self, what: Expired, before: DateTime<Utc>, limit: usize) -> Answer<'_, usize>;
    /// Forgets the feeds not in `configured` and not polled since `before`, with their
    /// items: how many feeds, and how many items.
    fn forget_feeds(
        &self,
        before: DateTime<Utc>,
        configured: Vec<FeedId>,
    ) -> Answer<'_, (u64, u64)>;
    /// Gives the space of deleted rows back to the disk; how many bytes.
    fn reclaim(&self) -> Answer<'_, u64>;
    /// The bytes the state takes on disk.
    fn state_bytes(&self) -> Answer<'_, u64>;
    fn replayable(
        &self,
        state: OutboxState,
        since: Option<DateTime<Utc>>,
    ) -> Answer<'_, Vec<Replayable>>;
    /// Queues alerts on their own, in one transaction.
    fn queue(
        &self,
        alerts: Vec<(String, Alert)>,
        at: DateTime<Utc>,
        how: Queue,
    ) -> Answer<'_, Vec<i64>>;
    fn retrying(&self) -> Answer<'_, Vec<Retrying>>;
    fn recent_alerts(&self, limit: usize) -> Answer<'_, Vec<RecentAlert>>;
    fn dead_letters(&self) -> Answer<'_, Vec<(i64, String, String)>>;
    fn recent_items(&self, since: DateTime<Utc>) -> Answer<'_, Vec<(FeedId, Item)>>;
    /// Rows that may be the item `search` seeks: feed, key, and the JSON found.
    /// The note `key`, set to `value` first if it is not set yet.
    fn note_once(&self, key: String, value: String, at: DateTime<Utc>) -> Answer<'_, String>;
    fn learn(&self, learned: Learned) -> Answer<'_, ()>;
    fn learned(&self) -> Answer<'_, Vec<Learned>>;
    /// The alert of outbox row `id`, if it is still there.
    fn alert(&self, id: i64) -> Answer<'_, Option<Alert>>;
    /// Every [`RuleDay`] from day `since` (Unix seconds) on.
    fn rule_days(&self, since: i64) -> Answer<'_, Vec<RuleDay>>;
    fn find_items(&self, search: Search) -> Answer<'_, Vec<(String, String, Option<String>)>>;
    fn item_rows(&self, feed: FeedId, key: ItemKey) -> Answer<'_, ItemRows>;
    fn set_note(&self, key: String, value: Option<String>, at: DateTime<Utc>) -> Answer<'_, ()>;
    fn note(&self, key: String) -> Answer<'_, Option<(String, DateTime<Utc>)>>;

    /// Takes up to `wanted` of the messages `channel` may still send in the minute up
    /// to `now`, all instances together.
    fn reserve_sends(
        &self,
        channel: String,
        limit: u32,
        wanted: usize,
        now: DateTime<Utc>,
    ) -> Answer<'_, (usize, DateTime<Utc>)>;

    /// A single instance may always poll.
    fn claim_poll(
        &self,
        _source: String,
        _now: DateTime<Utc>,
        _lease: Duration,
    ) -> Answer<'_, PollClaim> {
        known(Ok(PollClaim::Granted))
    }
    fn poll_done(&self, _source: String, _next_due: DateTime<Utc>) -> Answer<'_, ()> {
        known(Ok(()))
    }
    fn heartbeat(&self, _config_hash: String, _now: DateTime<Utc>) -> Answer<'_, ()> {
        known(Ok(()))
    }
    fn leave(&self) -> Answer<'_, ()> {
        known(Ok(()))
    }
    fn instances(&self, _now: DateTime<Utc>) -> Answer<'_, Vec<Instance>> {
        known(Ok(Vec::new()))
    }

    /// Every row of the state, for an engine a state moves out of.
    fn dump(&self) -> Answer<'_, Dump>;
    /// Fills an empty state with `dump`, for an engine a state moves into.
    fn load<'a>(&'a self, dump: &'a Dump) -> Answer<'a, ()>;
    /// The test hook of [`Store::delay_commits`](super::Store::delay_commits), for an
    /// engine that groups commits.
    fn delay_commits(&self, _by: Duration) {}
}
