//! The PostgreSQL engine's side of the [`Engine`](crate::store::engine::Engine)
//! contract: each operation is its own transaction, committed at once, but for what
//! polls write and the claims they make, which wait for their batch (`group`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;

use super::{Engine, feeds, group, items, load, notes, outbox, shared};
use crate::model::{Alert, FeedId, Item, ItemKey};
use crate::store::engine::{self, Answer, known};
use crate::store::trace::{ItemRows, Search};
use crate::store::types::{Claim, Expired, Health, Mark, NewItemTimes, Queue};
use crate::store::{
    Dump, Failure, FeedState, Instance, Learned, OutboxCounts, OutboxRow, OutboxState, PollClaim,
    PollRecord, RecentAlert, Replayable, Retrying, RuleDay, StoreError,
};

impl engine::Engine for Engine {
    fn is_shared(&self) -> bool {
        true
    }

    fn feed_state(&self, feed: FeedId) -> Answer<'_, Option<FeedState>> {
        async move { feeds::feed_state(self, &feed).await }.boxed()
    }

    fn feed_states_of(&self, ids: Vec<FeedId>) -> Answer<'_, Vec<FeedState>> {
        async move { feeds::feed_states_of(self, &ids).await }.boxed()
    }

    fn feed_states(&self) -> Answer<'_, Vec<(FeedId, FeedState, u64)>> {
        feeds::feed_states(self).boxed()
    }

    fn new_item_times(&self, limit: usize) -> Answer<'_, NewItemTimes> {
        async move { feeds::new_item_times(self, limit).await }.boxed()
    }

    fn unseen(&self, feed: FeedId, keys: Vec<ItemKey>) -> Answer<'_, Vec<ItemKey>> {
        async move { items::unseen(self, &feed, keys).await }.boxed()
    }

    fn record_poll(&self, poll: PollRecord) -> Answer<'_, Vec<i64>> {
        let write = items::Write::Poll(Box::new(poll));
        async move { self.writes.submit(write, |w| group::commit(self, w)).await }.boxed()
    }

    fn record_unchanged(&self, feed: FeedId, at: DateTime<Utc>) -> Answer<'_, ()> {
        let write = items::Write::Unchanged(feed, at);
        async move {
            let committed = self.writes.submit(write, |w| group::commit(self, w));
            committed.await.map(drop)
        }
        .boxed()
    }

    fn record_failure(&self, feed: FeedId, failure: Failure, at: DateTime<Utc>) -> Answer<'_, u32> {
        async move { feeds::record_failure(self, &feed, &failure, at).await }.boxed()
    }

    fn set_health(&self, health: Health) -> Answer<'_, ()> {
        async move { feeds::set_health(self, &health).await }.boxed()
    }

    fn claim_due(&self, claim: Claim) -> Answer<'_, Vec<OutboxRow>> {
        async move { outbox::claim_due(self, &claim).await }.boxed()
    }

    fn release_expired(&self, now: DateTime<Utc>) -> Answer<'_, usize> {
        outbox::release_expired(self, now).boxed()
    }

    fn end_waits_at(&self, lifetime: Duration) -> Answer<'_, usize> {
        outbox::end_waits_at(self, lifetime).boxed()
    }

    /// Another instance may be delivering what is claimed: claims are left to expire
    /// with their lease.
    fn release_claims(&self) -> Answer<'_, usize> {
        known(Ok(0))
    }

    fn expire(&self, what: Expired, before: DateTime<Utc>, limit: usize) -> Answer<'_, usize> {
        items::expire(self, what, before, limit).boxed()
    }

    fn forget_feeds(
        &self,
        before: DateTime<Utc>,
        configured: Vec<FeedId>,
    ) -> Answer<'_, (u64, u64)> {
        async move { items::forget_feeds(self, before, &configured).await }.boxed()
    }

    /// PostgreSQL's autovacuum makes the space of deleted rows reusable.
    fn reclaim(&self) -> Answer<'_, u64> {
        known(Ok(0))
    }

    fn next_due(&self) -> Answer<'_, Option<DateTime<Utc>>> {
        outbox::next_due(self).boxed()
    }

    fn mark(&self, ids: Vec<i64>, mark: Mark) -> Answer<'_, ()> {
        async move { outbox::mark(self, &ids, &mark).await }.boxed()
    }

    fn outbox_counts(&self) -> Answer<'_, OutboxCounts> {
        outbox::counts(self).boxed()
    }

    fn state_bytes(&self) -> Answer<'_, u64> {
        async move {
            let row = self
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await?;
            Ok(row.get::<_, i64>(0).unsigned_abs())
        }
        .boxed()
    }

    fn replayable(
        &self,
        state: OutboxState,
        since: Option<DateTime<Utc>>,
    ) -> Answer<'_, Vec<Replayable>> {
        outbox::replayable(self, state, since).boxed()
    }

    fn queue(
        &self,
        alerts: Vec<(String, Alert)>,
        at: DateTime<Utc>,
        how: Queue,
    ) -> Answer<'_, Vec<i64>> {
        async move { outbox::queue_alone(self, &alerts, at, how).await }.boxed()
    }

    fn retrying(&self) -> Answer<'_, Vec<Retrying>> {
        outbox::retrying(self).boxed()
    }

    fn recent_alerts(&self, limit: usize) -> Answer<'_, Vec<RecentAlert>> {
        outbox::recent_alerts(self, limit).boxed()
    }

    fn dead_letters(&self) -> Answer<'_, Vec<(i64, String, String)>> {
        outbox::dead_letters(self).boxed()
    }

    fn recent_items(&self, since: DateTime<Utc>) -> Answer<'_, Vec<(FeedId, Item)>> {
        items::recent_items(self, since).boxed()
    }

    fn note_once(&self, key: String, value: String, at: DateTime<Utc>) -> Answer<'_, String> {
        async move { notes::note_once(self, &key, &value, at).await }.boxed()
    }

    fn learn(&self, learned: Learned) -> Answer<'_, ()> {
        async move { notes::learn(self, &learned).await }.boxed()
    }

    fn learned(&self) -> Answer<'_, Vec<Learned>> {
        notes::learned(self).boxed()
    }

    fn alert(&self, id: i64) -> Answer<'_, Option<Alert>> {
        outbox::alert(self, id).boxed()
    }

    fn rule_days(&self, since: i64) -> Answer<'_, Vec<RuleDay>> {
        async move { items::rule_days(self, since).await }.boxed()
    }

    fn find_items(&self, search: Search) -> Answer<'_, Vec<(String, String, Option<String>)>> {
        async move { items::find(self, &search).await }.boxed()
    }

    fn item_rows(&self, feed: FeedId, key: ItemKey) -> Answer<'_, ItemRows> {
        async move { items::item_rows(self, &feed, &key).await }.boxed()
    }

    fn set_note(&self, key: String, value: Option<String>, at: DateTime<Utc>) -> Answer<'_, ()> {
        async move { notes::set(self, &key, value.as_deref(), at).await }.boxed()
    }

    fn note(&self, key: String) -> Answer<'_, Option<(String, DateTime<Utc>)>> {
        async move { notes::get(self, &key).await }.boxed()
    }

    fn reserve_sends(
        &self,
        channel: String,
        limit: u32,
        wanted: usize,
        now: DateTime<Utc>,
    ) -> Answer<'_, (usize, DateTime<Utc>)> {
        async move { shared::reserve_sends(self, &channel, limit, wanted, now).await }.boxed()
    }

    fn claim_poll(
        &self,
        source: String,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Answer<'_, PollClaim> {
        let claim = shared::Claim { source, now, lease };
        async move { self.claims.submit(claim, |c| group::claim(self, c)).await }.boxed()
    }

    fn poll_done(&self, source: String, next_due: DateTime<Utc>) -> Answer<'_, ()> {
        let write = items::Write::PollDone(source, next_due);
        async move {
            let committed = self.writes.submit(write, |w| group::commit(self, w));
            committed.await.map(drop)
        }
        .boxed()
    }

    fn heartbeat(&self, config_hash: String, now: DateTime<Utc>) -> Answer<'_, ()> {
        async move { shared::heartbeat(self, &config_hash, now).await }.boxed()
    }

    fn leave(&self) -> Answer<'_, ()> {
        shared::leave(self).boxed()
    }

    fn instances(&self, now: DateTime<Utc>) -> Answer<'_, Vec<Instance>> {
        shared::instances(self, now).boxed()
    }

    fn dump(&self) -> Answer<'_, Dump> {
        known(Err(StoreError::Unsupported(
            "a state is moved from the embedded SQLite file into PostgreSQL, not out of it",
        )))
    }

    fn load<'a>(&'a self, dump: &'a Dump) -> Answer<'a, ()> {
        load::load(self, dump).boxed()
    }

    fn delay_commits(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.commit_delay
            .store(micros, std::sync::atomic::Ordering::Relaxed);
    }
}
