//! What the poller and the dispatcher of one config share, and what outlives a
//! config across reloads.

use std::sync::Arc;

use tokio::sync::Notify;

use super::clock::Clock;
use super::health::Health;
use super::learning::{Learning, Taught};
use crate::config::Config;
use crate::rules::RuleSet;
use crate::store::Store;

/// The context of one running config: read by the poller and the dispatcher alike.
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub health: Arc<Health>,
    pub clock: Clock,
    /// Woken when new alerts are queued, so the dispatcher sends them at once.
    pub outbox_changed: Notify,
    pub learning: Arc<Learning>,
    taught: Taught,
    /// The state's key for feedback links, once read.
    pub feedback_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
}

impl Shared {
    /// The config's rules with what feedback taught them (embeds new examples: call
    /// it where CPU work may run).
    pub fn rules(&self) -> Arc<RuleSet> {
        self.taught.rules(&self.config, &self.learning)
    }
}

/// What a reload hands from one config's pipeline to the next: the open store (with
/// the messages each channel sent in the last minute, so a reload does not reset
/// `max_per_minute`), liveness and the clock.
#[derive(Clone)]
pub struct Lasting {
    pub store: Arc<Store>,
    pub health: Arc<Health>,
    pub clock: Clock,
    /// What feedback taught the rules.
    pub learning: Arc<Learning>,
    /// The state's key for feedback links, once read.
    pub feedback_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
}

impl Lasting {
    pub fn new(store: Arc<Store>, clock: Clock) -> Lasting {
        Lasting {
            store,
            health: Arc::new(Health::new(clock.clone())),
            clock,
            learning: Arc::default(),
            feedback_key: Arc::default(),
        }
    }

    pub(super) fn share(&self, config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            config: Arc::new(config),
            store: Arc::clone(&self.store),
            health: Arc::clone(&self.health),
            clock: self.clock.clone(),
            outbox_changed: Notify::new(),
            learning: Arc::clone(&self.learning),
            taught: Taught::default(),
            feedback_key: Arc::clone(&self.feedback_key),
        })
    }
}
