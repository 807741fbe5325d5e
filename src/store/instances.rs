//! What instances sharing a database coordinate through: who polls a source now and
//! when it is next due, who is alive, how many messages a channel sent, and how long
//! a claim on the outbox lasts. The embedded store has a single instance (its state
//! directory is locked), for which most of this is a no-op.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{ClaimPolicy, Instance, PollClaim, Store, StoreError};

impl Store {
    /// Whether other instances may share this state (a PostgreSQL database).
    pub fn is_shared(&self) -> bool {
        self.engine.is_shared()
    }

    /// How many outbox rows a dispatch pass claims at a time, and for how long.
    pub fn claim_policy(&self) -> ClaimPolicy {
        if self.is_shared() {
            ClaimPolicy::SHARED
        } else {
            ClaimPolicy::ALONE
        }
    }

    /// Claims the poll of `source` for this instance until `now + lease`, when no
    /// other instance is polling it and it is due. The embedded store has one
    /// instance (its state directory is locked), which may always poll.
    pub async fn claim_poll(
        &self,
        source: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<PollClaim, StoreError> {
        self.engine.claim_poll(source.to_owned(), now, lease).await
    }

    /// This instance polled `source`; whichever instance claims it next, it is due at
    /// `next_due`.
    pub async fn poll_done(&self, source: &str, next_due: DateTime<Utc>) -> Result<(), StoreError> {
        self.engine.poll_done(source.to_owned(), next_due).await
    }

    /// Says this instance is alive, running the config with `config_hash`.
    pub async fn heartbeat(&self, config_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.engine.heartbeat(config_hash.to_owned(), now).await
    }

    /// This instance stops: it leaves the list of instances, and frees its polls.
    pub async fn leave(&self) -> Result<(), StoreError> {
        self.engine.leave().await
    }

    /// The instances sharing the state, by name (none for the embedded store).
    pub async fn instances(&self, now: DateTime<Utc>) -> Result<Vec<Instance>, StoreError> {
        self.engine.instances(now).await
    }

    /// Takes up to `wanted` of the messages `channel` may still send in the minute up
    /// to `now`, all instances sharing the database together (at most `limit`): how
    /// many it got, and when the next slot frees up. The embedded store's single
    /// instance keeps its window in memory, for as long as the store is open.
    pub async fn reserve_sends(
        &self,
        channel: &str,
        limit: u32,
        wanted: usize,
        now: DateTime<Utc>,
    ) -> Result<(usize, DateTime<Utc>), StoreError> {
        let channel = channel.to_owned();
        self.engine.reserve_sends(channel, limit, wanted, now).await
    }
}
