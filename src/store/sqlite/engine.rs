//! The embedded engine's side of the [`Engine`](crate::store::engine::Engine) contract:
//! reads on a reader connection, writes on the writer thread. A poll's outcome may wait
//! to share its commit ([`Commit::Grouped`]); everything else someone waits on, so it
//! is committed at once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;

use super::{Commit, Engine, dump, feeds, items, notes, outbox};
use crate::model::{Alert, FeedId, Item, ItemKey};
use crate::store::engine::{self, Answer, known};
use crate::store::trace::{ItemRows, Search};
use crate::store::types::{Claim, Expired, Health, Mark, NewItemTimes, Queue};
use crate::store::{
    Dump, Failure, FeedState, Learned, OutboxCounts, OutboxRow, OutboxState, PollRecord,
    RecentAlert, Replayable, Retrying, RuleDay, StoreError,
};

impl engine::Engine for Engine {
    fn is_shared(&self) -> bool {
        false
    }

    fn feed_state(&self, feed: FeedId) -> Answer<'_, Option<FeedState>> {
        self.read(move |c| feeds::feed_state(c, &feed)).boxed()
    }

    fn feed_states_of(&self, ids: Vec<FeedId>) -> Answer<'_, Vec<FeedState>> {
        self.read(move |c| {
            ids.iter()
                .map(|id| Ok(feeds::feed_state(c, id)?.unwrap_or_default()))
                .collect()
        })
        .boxed()
    }

    fn feed_states(&self) -> Answer<'_, Vec<(FeedId, FeedState, u64)>> {
        self.read(feeds::feed_states).boxed()
    }

    fn new_item_times(&self, limit: usize) -> Answer<'_, NewItemTimes> {
        self.read(move |c| feeds::new_item_times(c, limit)).boxed()
    }

    fn unseen(&self, feed: FeedId, keys: Vec<ItemKey>) -> Answer<'_, Vec<ItemKey>> {
        self.read(move |c| items::unseen(c, &feed, keys)).boxed()
    }

    fn record_poll(&self, poll: PollRecord) -> Answer<'_, Vec<i64>> {
        self.write(Commit::Grouped, move |c| items::record_poll(c, &poll))
            .boxed()
    }

    fn record_unchanged(&self, feed: FeedId, at: DateTime<Utc>) -> Answer<'_, ()> {
        self.write(Commit::Grouped, move |c| {
            feeds::record_unchanged(c, &feed, at)
        })
        .boxed()
    }

    fn record_failure(&self, feed: FeedId, failure: Failure, at: DateTime<Utc>) -> Answer<'_, u32> {
        self.write(Commit::Grouped, move |c| {
            feeds::record_failure(c, &feed, &failure, at)
        })
        .boxed()
    }

    fn set_health(&self, health: Health) -> Answer<'_, ()> {
        self.write(Commit::Grouped, move |c| feeds::set_health(c, &health))
            .boxed()
    }

    fn claim_due(&self, claim: Claim) -> Answer<'_, Vec<OutboxRow>> {
        self.write(Commit::Now, move |c| outbox::claim_due(c, &claim))
            .boxed()
    }

    fn release_expired(&self, now: DateTime<Utc>) -> Answer<'_, usize> {
        self.write(Commit::Now, move |c| outbox::release_expired(c, now))
            .boxed()
    }

    fn end_waits_at(&self, lifetime: Duration) -> Answer<'_, usize> {
        self.write(Commit::Now, move |c| outbox::end_waits_at(c, lifetime))
            .boxed()
    }

    fn release_claims(&self) -> Answer<'_, usize> {
        self.write(Commit::Now, outbox::release_claims).boxed()
    }

    fn next_due(&self) -> Answer<'_, Option<DateTime<Utc>>> {
        self.read(outbox::next_due).boxed()
    }

    fn mark(&self, ids: Vec<i64>, mark: Mark) -> Answer<'_, ()> {
        self.write(Commit::Now, move |c| outbox::mark(c, &ids, &mark))
            .boxed()
    }

    fn outbox_counts(&self) -> Answer<'_, OutboxCounts> {
        self.read(outbox::counts).boxed()
    }

    fn expire(&self, what: Expired, before: DateTime<Utc>, limit: usize) -> Answer<'_, usize> {
        self.write(Commit::Now, move |c| items::expire(c, what, before, limit))
            .boxed()
    }

    fn forget_feeds(
        &self,
        before: DateTime<Utc>,
        configured: Vec<FeedId>,
    ) -> Answer<'_, (u64, u64)> {
        self.write(Commit::Now, move |c| {
            items::forget_feeds(c, before, &configured)
        })
        .boxed()
    }

    fn reclaim(&self) -> Answer<'_, u64> {
        self.write(Commit::Now, super::reclaim).boxed()
    }

    fn state_bytes(&self) -> Answer<'_, u64> {
        self.read(|c| {
            let bytes: i64 = c.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get(0),
            )?;
            Ok(bytes.unsigned_abs())
        })
        .boxed()
    }

    fn replayable(
        &self,
        state: OutboxState,
        since: Option<DateTime<Utc>>,
    ) -> Answer<'_, Vec<Replayable>> {
        self.read(move |c| outbox::replayable(c, state, since))
            .boxed()
    }

    fn queue(
        &self,
        alerts: Vec<(String, Alert)>,
        at: DateTime<Utc>,
        how: Queue,
    ) -> Answer<'_, Vec<i64>> {
        self.write(Commit::Now, move |c| outbox::queue(c, &alerts, at, how))
            .boxed()
    }

    fn retrying(&self) -> Answer<'_, Vec<Retrying>> {
        self.read(outbox::retrying).boxed()
    }

    fn recent_alerts(&self, limit: usize) -> Answer<'_, Vec<RecentAlert>> {
        self.read(move |c| outbox::recent_alerts(c, limit)).boxed()
    }

    fn dead_letters(&self) -> Answer<'_, Vec<(i64, String, String)>> {
        self.read(outbox::dead_letters).boxed()
    }

    fn recent_items(&self, since: DateTime<Utc>) -> Answer<'_, Vec<(FeedId, Item)>> {
        self.read(move |c| items::recent_items(c, since)).boxed()
    }

    fn note_once(&self, key: String, value: String, at: DateTime<Utc>) -> Answer<'_, String> {
        self.write(Commit::Now, move |c| notes::note_once(c, &key, &value, at))
            .boxed()
    }

    fn learn(&self, learned: Learned) -> Answer<'_, ()> {
        self.write(Commit::Now, move |c| notes::learn(c, &learned))
            .boxed()
    }

    fn learned(&self) -> Answer<'_, Vec<Learned>> {
        self.read(notes::learned).boxed()
    }

    fn alert(&self, id: i64) -> Answer<'_, Option<Alert>> {
        self.read(move |c| outbox::alert(c, id)).boxed()
    }

    fn rule_days(&self, since: i64) -> Answer<'_, Vec<RuleDay>> {
        self.read(move |c| items::rule_days(c, since)).boxed()
    }

    fn find_items(&self, search: Search) -> Answer<'_, Vec<(String, String, Option<String>)>> {
        self.read(move |c| items::find(c, &search)).boxed()
    }

    fn item_rows(&self, feed: FeedId, key: ItemKey) -> Answer<'_, ItemRows> {
        self.read(move |c| items::item_rows(c, &feed, &key)).boxed()
    }

    fn set_note(&self, key: String, value: Option<String>, at: DateTime<Utc>) -> Answer<'_, ()> {
        self.write(Commit::Now, move |c| {
            notes::set(c, &key, value.as_deref(), at)
        })
        .boxed()
    }

    fn note(&self, key: String) -> Answer<'_, Option<(String, DateTime<Utc>)>> {
        self.read(move |c| notes::get(c, &key)).boxed()
    }

    fn reserve_sends(
        &self,
        channel: String,
        limit: u32,
        wanted: usize,
        now: DateTime<Utc>,
    ) -> Answer<'_, (usize, DateTime<Utc>)> {
        known(Ok(self.rate.reserve(&channel, limit, wanted, now)))
    }

    fn dump(&self) -> Answer<'_, Dump> {
        self.read(dump::dump).boxed()
    }

    fn load<'a>(&'a self, _dump: &'a Dump) -> Answer<'a, ()> {
        known(Err(StoreError::Unsupported(
            "a state is moved into a PostgreSQL database, not into a SQLite file",
        )))
    }

    fn delay_commits(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.commit_delay.store(micros, Ordering::Relaxed);
    }
}
