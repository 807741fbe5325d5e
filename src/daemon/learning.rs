//! What feedback taught the rules: the examples learned (kept in the store, where
//! every instance adds its own, and refreshed from it), and each config's rule set
//! with them added to its topic rules, rebuilt when they change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use crate::model::Vote;
use crate::rules::RuleSet;
use crate::store::{Learned, Store, StoreError};

/// The examples learned so far, shared by every config the daemon runs.
#[derive(Debug, Default)]
pub struct Learning {
    examples: RwLock<Arc<Vec<Learned>>>,
    /// Counts the changes, so a rule set knows it is out of date.
    version: AtomicU64,
}

impl Learning {
    /// Reads the examples again from `store` (another instance may have learned some).
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let before = self.version();
        let stored = store.learned().await?;
        let mut examples = self.examples.write().unwrap_or_else(|p| p.into_inner());
        // An example added while the store was read is newer than what it said: the
        // next refresh reads it from the store.
        if self.version() == before && **examples != stored {
            *examples = Arc::new(stored);
            self.version.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Adds an example just learned (in place of an earlier vote on the same alert
    /// for the same rule).
    pub fn add(&self, learned: Learned) {
        let mut examples = self.examples.write().unwrap_or_else(|p| p.into_inner());
        let mut next: Vec<Learned> = examples
            .iter()
            .filter(|l| (l.rule.as_str(), l.alert) != (learned.rule.as_str(), learned.alert))
            .cloned()
            .collect();
        next.push(learned);
        *examples = Arc::new(next);
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub fn examples(&self) -> Arc<Vec<Learned>> {
        Arc::clone(&self.examples.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }
}

/// One config's rule set as feedback has taught it.
#[derive(Default)]
pub struct Taught {
    /// The version of the examples it was built with, and the set.
    built: Mutex<Option<(u64, Arc<RuleSet>)>>,
}

impl Taught {
    /// `config`'s rules with what `learning` holds; built again only when that
    /// changed. Embeds the new examples: call it where CPU work may run.
    pub fn rules(&self, config: &Config, learning: &Learning) -> Arc<RuleSet> {
        let version = learning.version();
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        match &*built {
            Some((at, rules)) if *at == version => Arc::clone(rules),
            _ => {
                let rules = Arc::new(taught(&config.rules, &learning.examples()));
                *built = Some((version, Arc::clone(&rules)));
                rules
            }
        }
    }
}

/// `rules` with the `learned` examples added to their topic rules.
pub fn taught(rules: &RuleSet, learned: &[Learned]) -> RuleSet {
    rules.with_learned(
        learned
            .iter()
            .map(|l| (l.rule.as_str(), l.vote == Vote::More, l.text.as_str())),
    )
}
