//! The pruner: what expired under the config's retention, and how often to look.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::shared::Shared;
use crate::config::{Config, Daemon};
use crate::model::earlier;
use crate::store::{Pruned, Retention, StoreError};

/// The state is pruned this often (more often when a retention is shorter than two of
/// these, as in tests).
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// How long from one pruning to the next under `daemon`'s retention.
pub fn every(daemon: &Daemon) -> Duration {
    let shortest = daemon
        .forget_after
        .min(daemon.keep_sent)
        .min(daemon.keep_dead);
    (shortest / 2).clamp(Duration::from_secs(1), PRUNE_EVERY)
}

/// What expired at `now` under `config`'s retention.
pub fn retention(config: &Config, now: DateTime<Utc>) -> Retention {
    let d = &config.daemon;
    Retention {
        forget_before: earlier(now, d.forget_after),
        sent_before: earlier(now, d.keep_sent),
        dead_before: earlier(now, d.keep_dead),
        configured: config.feeds.iter().map(|f| f.id.clone()).collect(),
    }
}

/// Deletes what expired, unless the state was pruned within [`every`] (by this
/// process, an earlier run, or another instance sharing the database) or another
/// instance is pruning it now (`None`).
pub async fn prune(shared: &Shared) -> Result<Option<Pruned>, StoreError> {
    let now = shared.clock.now();
    let every = every(&shared.config.daemon);
    let pruned = shared
        .store
        .prune(&retention(&shared.config, now), now, every)
        .await?;
    if let Some(pruned) = &pruned {
        info!(%pruned, "state pruned");
    }
    Ok(pruned)
}

/// Prunes at once, then every [`every`], until `stop`.
pub async fn prune_forever(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every(&shared.config.daemon));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = prune(&shared).await {
                    warn!(error = %e, "cannot prune the state; trying again at the next pruning");
                }
            }
        }
    }
}
