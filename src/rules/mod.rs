//! Watch rules: the query language, folding text, compiling every rule's terms into
//! one automaton, and evaluating rules over the hits. Pure code: no I/O, no async.
//!
//! Compilation runs in three steps: terms (folded, de-duplicated across rules) → one
//! Aho-Corasick automaton per folding mode in use (normally one) plus one `RegexSet` →
//! a small expression per rule. Matching folds each field of an item once, scans it
//! once, and evaluates only the rules that one of the hits (or no hit at all, for
//! `NOT …` rules) can make true, so its cost follows the text, not the rule count.

mod compile;
mod expr;
mod filter;
mod normalize;
pub mod query;
mod scan;
mod snippet;
mod topic;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::model::{Field, Priority};

pub use filter::{FilterSpec, Filters};
pub use normalize::{FoldMode, Folded, fold, fold_term};
pub use query::QueryError;
pub use snippet::{matched_terms, passage, snippet};
pub use topic::{Embedder, TopicScore, TopicSpec, topic_text};

/// What a rule is made of, before compilation (from the config file).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub condition: Condition,
    /// What the rule is about (`about`, `like`, `unlike`): matched by meaning, and
    /// together with `condition` when both are given.
    pub topic: Option<TopicSpec>,
    /// Only items of these feeds; `None` means every feed.
    pub feeds: Option<BTreeSet<String>>,
    /// Where terms without a field prefix are looked for.
    pub fields: FieldSet,
    pub case_sensitive: bool,
    /// Accents must match exactly (`accents = "strict"`).
    pub strict_accents: bool,
    /// How urgent its alerts are, for the services that have priorities.
    pub priority: Priority,
}

impl RuleSpec {
    /// A rule firing on any of `keywords`, with the default options.
    pub fn keywords(name: &str, keywords: &[&str]) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            condition: Condition::Keywords(keywords.iter().map(|k| k.to_string()).collect()),
            feeds: None,
            fields: FieldSet::DEFAULT,
            case_sensitive: false,
            strict_accents: false,
            priority: Priority::Normal,
            topic: None,
        }
    }

    /// A rule with a query, with the default options.
    pub fn query(name: &str, query: &str) -> RuleSpec {
        RuleSpec {
            condition: Condition::Query(query.into()),
            ..RuleSpec::keywords(name, &[])
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Any of these words or phrases (taken literally, no query syntax).
    Keywords(Vec<String>),
    /// An expression of the query language (see [`query`]).
    Query(String),
    /// No words: the rule's topic alone decides.
    Always,
}

/// Named term lists (`[lists]`), usable in queries as `@name`.
pub type Lists = BTreeMap<String, Vec<String>>;

/// A set of [`Field`]s, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSet(u8);

impl FieldSet {
    /// Title, summary, content and the article: where terms are looked for unless a
    /// rule says.
    pub const DEFAULT: FieldSet = FieldSet(0b100_0111);

    pub fn from_fields(fields: impl IntoIterator<Item = Field>) -> FieldSet {
        FieldSet(fields.into_iter().fold(0, |acc, f| acc | FieldSet::bit(f)))
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & FieldSet::bit(field) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    fn bit(field: Field) -> u8 {
        1 << field as u8
    }
}

impl Default for FieldSet {
    fn default() -> Self {
        FieldSet::DEFAULT
    }
}

/// Why a rule could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("keyword {index} is empty (or only punctuation that matching ignores)")]
    EmptyKeyword { index: usize },
    #[error("the rule has no keywords")]
    NoKeywords,
    #[error("`fields` is empty, so the rule could never match")]
    NoFields,
    #[error("{query:?}: {error}")]
    Query { query: String, error: QueryError },
    #[error("cannot build the matcher: {0}")]
    Automaton(String),
    #[error("`about` is empty; say in a sentence what the rule is about")]
    EmptyAbout,
    #[error("a topic rule needs a semantic model, and none was given")]
    NoModel,
}

/// A rule error together with the rule it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {error}")]
pub struct RuleSetError {
    /// Index of the rule in the order given.
    pub rule: usize,
    pub error: RuleError,
}

/// One term found in one field, with its place in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'r> {
    /// The term as the rule wrote it (`Lavrov`, `sanction*`, `/S-?400/`).
    pub term: &'r str,
    pub field: Field,
    /// Byte range in the field's original (unfolded) text.
    pub span: (usize, usize),
}

/// A rule that fired, with the hits that made it fire. Borrows the rule set's names,
/// so a match costs no string copies.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMatch<'r> {
    pub rule: &'r str,
    pub hits: Vec<Hit<'r>>,
    /// How close the item came to the rule's topic, for a topic rule.
    pub topic: Option<TopicScore<'r>>,
}

/// Every rule compiled into one matcher; cheap to share and to query.
#[derive(Clone)]
pub struct RuleSet {
    rules: Vec<expr::Rule>,
    matcher: scan::Matcher,
    /// For each term, the rules that mention it.
    rules_of_term: Vec<Vec<usize>>,
    /// Rules that can hold with no hit at all (`NOT x`, topic rules without words):
    /// evaluated for every item.
    always: Vec<usize>,
    /// What scores topic rules; `None` when no rule has a topic.
    embedder: Option<Arc<dyn Embedder>>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("terms", &self.matcher.terms.len())
            .finish()
    }
}

impl RuleSet {
    /// Compiles rules without topics; the first bad rule is reported with its index.
    pub fn compile(specs: &[RuleSpec], lists: &Lists) -> Result<RuleSet, RuleSetError> {
        compile::compile(specs, lists, None)
    }

    /// Compiles rules, topic rules among them, whose texts `embedder` turns into
    /// vectors now and whose items it embeds when they are matched.
    pub fn compile_with(
        specs: &[RuleSpec],
        lists: &Lists,
        embedder: Arc<dyn Embedder>,
    ) -> Result<RuleSet, RuleSetError> {
        compile::compile(specs, lists, Some(embedder))
    }

    /// This set with examples learned from feedback added to its topic rules: each
    /// (rule, whether it is one more like the topic, its text). Examples of rules
    /// without a topic, or no longer in the set, change nothing.
    pub fn with_learned<'a>(
        &self,
        examples: impl IntoIterator<Item = (&'a str, bool, &'a str)>,
    ) -> RuleSet {
        let mut set = self.clone();
        let Some(embedder) = set.embedder.clone() else {
            return set;
        };
        for (rule, like, text) in examples {
            let topic = set.rules.iter_mut().find(|r| r.name == rule);
            if let Some(topic) = topic.and_then(|r| r.topic.as_mut()) {
                topic.learn(like, text, embedder.embed(text));
            }
        }
        set
    }

    /// Whether some rule has a topic (and items are embedded to match it).
    pub fn has_topics(&self) -> bool {
        self.rules.iter().any(|r| r.topic.is_some())
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How close `item` from `feed` comes to each topic rule for that feed, whether or
    /// not its words hold: what `test-rules --explain` shows.
    pub fn topic_scores(
        &self,
        feed: &str,
        item: &crate::model::Item,
    ) -> Vec<(&str, TopicScore<'_>)> {
        let mut vectors = Vectors::default();
        self.rules
            .iter()
            .filter(|rule| rule.feeds.as_ref().is_none_or(|f| f.contains(feed)))
            .filter_map(|rule| {
                let topic = rule.topic.as_ref()?;
                let vector = vectors.of(self.embedder.as_deref()?, item, topic.fields);
                Some((rule.name.as_str(), topic.score(vector)))
            })
            .collect()
    }

    /// For every rule, in order, whether it fires on `item` from `feed`, and if not,
    /// why: what `newshound why` shows.
    pub fn explain(&self, feed: &str, item: &crate::model::Item) -> Vec<(&str, Verdict)> {
        let hits = self.matcher.scan(item);
        let mut vectors = Vectors::default();
        let display = |t: scan::TermId| self.matcher.terms[t].display.clone();
        self.rules
            .iter()
            .map(|rule| {
                let verdict = if rule.feeds.as_ref().is_some_and(|f| !f.contains(feed)) {
                    Verdict::OtherFeeds
                } else if !rule.expr.eval(&hits, &mut Vec::new()) {
                    Verdict::Words(rule.expr.why_not(&hits, &display))
                } else {
                    match (&rule.topic, self.embedder.as_deref()) {
                        (Some(topic), Some(embedder)) => {
                            let score = topic.score(vectors.of(embedder, item, topic.fields));
                            match (score.matched(), score.vetoed_by) {
                                (true, _) => Verdict::Matched(Some(score.score)),
                                (false, Some((unlike, _))) => Verdict::Unlike(unlike.to_owned()),
                                (false, None) => Verdict::Topic {
                                    score: score.score,
                                    min_score: score.min_score,
                                },
                            }
                        }
                        _ => Verdict::Matched(None),
                    }
                };
                (rule.name.as_str(), verdict)
            })
            .collect()
    }

    /// Every rule that fires on `item` from `feed`, in rule order.
    pub fn matches(&self, feed: &str, item: &crate::model::Item) -> Vec<RuleMatch<'_>> {
        let hits = self.matcher.scan(item);
        let mut candidates: Vec<usize> = self.always.clone();
        let mut last_term = None;
        for hit in &hits {
            if last_term != Some(hit.term) {
                candidates.extend(&self.rules_of_term[hit.term]);
                last_term = Some(hit.term);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut used = Vec::new();
        let mut vectors = Vectors::default();
        candidates
            .into_iter()
            .map(|i| &self.rules[i])
            .filter(|rule| rule.feeds.as_ref().is_none_or(|f| f.contains(feed)))
            .filter_map(|rule| {
                used.clear();
                if !rule.expr.eval(&hits, &mut used) {
                    return None;
                }
                // The words hold; a topic is scored only then, since embedding costs
                // more than everything else here.
                let topic = match (&rule.topic, self.embedder.as_deref()) {
                    (Some(topic), Some(embedder)) => {
                        let score = topic.score(vectors.of(embedder, item, topic.fields));
                        if !score.matched() {
                            return None;
                        }
                        Some(score)
                    }
                    _ => None,
                };
                used.sort_unstable();
                used.dedup();
                Some(RuleMatch {
                    rule: &rule.name,
                    hits: used
                        .iter()
                        .map(|&h| Hit {
                            term: &self.matcher.terms[hits[h].term].display,
                            field: hits[h].field,
                            span: hits[h].span,
                        })
                        .collect(),
                    topic,
                })
            })
            .collect()
    }
}

/// Whether a rule fires on an item, and if not, why.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It fires (with the item's score against its topic, for a topic rule).
    Matched(Option<f32>),
    /// It watches other feeds.
    OtherFeeds,
    /// Its words do not hold: the first clause that fails.
    Words(String),
    /// Its words hold (or it has none), but the item is not close enough to its topic.
    Topic { score: f32, min_score: f32 },
    /// The item is nearer this `unlike` example than to the topic.
    Unlike(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Matched(None) => f.write_str("matched"),
            Verdict::Matched(Some(score)) => write!(f, "matched (topic score {score:.2})"),
            Verdict::OtherFeeds => f.write_str("not matched: the rule watches other feeds"),
            Verdict::Words(why) => write!(f, "not matched: {why}"),
            Verdict::Topic { score, min_score } => write!(
                f,
                "not matched: topic score {score:.2}, under its min_score {min_score:.2}"
            ),
            Verdict::Unlike(example) => {
                write!(f, "not matched: nearer its unlike example {example:?}")
            }
        }
    }
}

/// An item's vectors, made once per set of fields that topics read (usually one).
#[derive(Default)]
struct Vectors(Vec<(FieldSet, Vec<f32>)>);

impl Vectors {
    fn of(
        &mut self,
        embedder: &dyn Embedder,
        item: &crate::model::Item,
        fields: FieldSet,
    ) -> &[f32] {
        let index = match self.0.iter().position(|(f, _)| *f == fields) {
            Some(index) => index,
            None => {
                self.0
                    .push((fields, embedder.embed(&topic_text(item, fields))));
                self.0.len() - 1
            }
        };
        &self.0[index].1
    }
}

#[cfg(test)]
mod tests;
