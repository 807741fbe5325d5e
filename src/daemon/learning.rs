//! What feedback taught the rules: the examples learned (kept in the store, where
//! every instance adds its own, and refreshed from it), and each config's rule set
//! with them added to its topic rules, rebuilt when they change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::SubsecRound;

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

    /// Whether `learned` is known already: the same vote with the same text, for the
    /// same rule and item.
    pub fn knows(&self, learned: &Learned) -> bool {
        self.examples()
            .iter()
            .any(|l| same_item(l, learned) && (l.vote, &l.text) == (learned.vote, &learned.text))
    }

    /// Adds an example just learned (in place of an earlier vote on the same item for
    /// the same rule), its time in whole seconds as the store keeps it: the next
    /// refresh finds the store's examples the same, and builds nothing again.
    pub fn add(&self, mut learned: Learned) {
        learned.at = learned.at.trunc_subsecs(0);
        let mut examples = self.examples.write().unwrap_or_else(|p| p.into_inner());
        let mut next: Vec<Learned> = examples
            .iter()
            .filter(|l| !same_item(l, &learned))
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

/// Whether two votes are on the same item for the same rule.
fn same_item(a: &Learned, b: &Learned) -> bool {
    (&a.rule, &a.feed, &a.key) == (&b.rule, &b.feed, &b.key)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FeedId, ItemKey};

    #[tokio::test]
    async fn the_same_vote_again_or_a_refresh_of_what_is_known_changes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).await.expect("store");
        let learning = Learning::default();
        let vote = Learned {
            rule: "talks".into(),
            feed: FeedId("wire".into()),
            key: ItemKey("k1".into()),
            alert: 1,
            vote: Vote::Not,
            text: "Talks in Geneva".into(),
            at: chrono::Utc::now(),
        };
        assert!(!learning.knows(&vote));
        store.learn(vote.clone()).await.expect("learned");
        learning.add(vote.clone());
        let built = learning.version();
        let again = Learned {
            alert: 2,
            ..vote.clone()
        };
        assert!(
            learning.knows(&again),
            "the same item through another alert"
        );
        store.learn(again).await.expect("the same vote again");
        learning.refresh(&store).await.expect("refresh");
        assert_eq!(learning.version(), built, "the store holds what is known");
        assert!(!learning.knows(&Learned {
            vote: Vote::More,
            ..vote
        }));
    }
}
