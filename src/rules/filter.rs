//! Filters: what is dropped before any rule sees it. A filter is a rule without
//! channels (words, a topic, or both), and its verdict is to drop; a feed's `keep`
//! drops what does not match it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Embedder, Lists, RuleSet, RuleSetError, RuleSpec};
use crate::model::Item;

/// One filter as the config gives it: its rule (whose name is the filter's label,
/// and whose `feeds` are those it applies to) and whether it keeps or drops.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSpec {
    pub rule: RuleSpec,
    /// A feed's `keep`: what does *not* match is dropped (the rule names one feed).
    pub keep: bool,
}

/// Every filter compiled into one matcher.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    set: Option<RuleSet>,
    /// For each feed with a `keep`, that filter's label.
    keeps: BTreeMap<String, String>,
}

impl Filters {
    /// Compiles the filters; the first bad one is reported with its index. Topics are
    /// scored with `embedder`, which must be given when some filter has one.
    pub fn compile(
        specs: &[FilterSpec],
        lists: &Lists,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Result<Filters, RuleSetError> {
        if specs.is_empty() {
            return Ok(Filters::default());
        }
        let rules: Vec<RuleSpec> = specs.iter().map(|f| f.rule.clone()).collect();
        let set = match embedder {
            Some(embedder) => RuleSet::compile_with(&rules, lists, embedder)?,
            None => RuleSet::compile(&rules, lists)?,
        };
        let keeps = specs
            .iter()
            .filter(|f| f.keep)
            .flat_map(|f| {
                let feeds = f.rule.feeds.iter().flatten();
                feeds.map(|feed| (feed.clone(), f.rule.name.clone()))
            })
            .collect();
        Ok(Filters {
            set: Some(set),
            keeps,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_none()
    }

    /// The label of the filter that drops `item` from `feed`: the first `drop` that
    /// matches it, else the feed's `keep` when it does not match; `None` when the item
    /// goes on to the rules.
    pub fn dropped_by(&self, feed: &str, item: &Item) -> Option<&str> {
        let set = self.set.as_ref()?;
        let matched = set.matches(feed, item);
        let keep = self.keeps.get(feed);
        if let Some(drop) = matched
            .iter()
            .find(|m| Some(m.rule) != keep.map(String::as_str))
        {
            return Some(drop.rule);
        }
        match keep {
            Some(keep) if !matched.iter().any(|m| m.rule == keep) => Some(keep),
            _ => None,
        }
    }
}
