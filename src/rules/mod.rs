//! Watch rules: folding text, compiling every rule's terms into one automaton, and
//! evaluating rules over the hits. Pure code: no I/O, no async.
//!
//! Compilation runs in three steps so that the query language can grow on top:
//! terms (folded, de-duplicated across rules) → one Aho-Corasick automaton over all
//! of them → a small expression per rule evaluated over the set of terms found.

mod normalize;

use std::collections::BTreeSet;
use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::model::{Field, Item, Snippet};

pub use normalize::{Folded, fold, fold_term};

/// What a rule is made of, before compilation (from the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    /// Any of these matches (each a word or a phrase).
    pub keywords: Vec<String>,
    /// Only items of these feeds; `None` means every feed.
    pub feeds: Option<BTreeSet<String>>,
    /// Which fields the terms are looked for in.
    pub fields: FieldSet,
}

/// A set of [`Field`]s, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSet(u8);

impl FieldSet {
    pub const ALL: FieldSet = FieldSet(0b111);

    pub fn from_fields(fields: impl IntoIterator<Item = Field>) -> FieldSet {
        FieldSet(fields.into_iter().fold(0, |acc, f| acc | FieldSet::bit(f)))
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & FieldSet::bit(field) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn bit(field: Field) -> u8 {
        match field {
            Field::Title => 1,
            Field::Summary => 2,
            Field::Content => 4,
        }
    }
}

impl Default for FieldSet {
    fn default() -> Self {
        FieldSet::ALL
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
    #[error("cannot build the matcher: {0}")]
    Automaton(String),
}

/// A rule error together with the rule it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule:?}: {error}")]
pub struct RuleSetError {
    /// Index of the rule in the order given.
    pub rule: usize,
    pub error: RuleError,
}

/// Index of a distinct folded term in the automaton.
type TermId = usize;

/// A rule's condition over the terms found in an item.
#[derive(Debug, Clone)]
enum Expr {
    /// The term was found in one of the fields.
    Term { term: TermId, fields: FieldSet },
    /// Any of the sub-expressions holds.
    Any(Vec<Expr>),
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    feeds: Option<BTreeSet<String>>,
    expr: Expr,
}

/// Every rule compiled into one automaton; cheap to share and to query.
#[derive(Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// The folded text of each term, indexed by [`TermId`].
    terms: Vec<String>,
    /// The term as the rule's author wrote it, for alerts.
    display: Vec<String>,
    automaton: AhoCorasick,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("terms", &self.terms.len())
            .finish()
    }
}

/// One term found in one field, with its place in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub term: String,
    pub field: Field,
    /// Byte range in the field's original (unfolded) text.
    pub span: (usize, usize),
}

/// A rule that fired, with the hits that made it fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub rule: String,
    pub hits: Vec<Hit>,
}

impl RuleSet {
    /// Compiles the rules; the first bad rule is reported with its index.
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, RuleSetError> {
        let mut terms: Vec<String> = Vec::new();
        let mut display: Vec<String> = Vec::new();
        let mut rules = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let fail = |error| RuleSetError { rule: index, error };
            if spec.fields.is_empty() {
                return Err(fail(RuleError::NoFields));
            }
            if spec.keywords.is_empty() {
                return Err(fail(RuleError::NoKeywords));
            }
            let mut any = Vec::with_capacity(spec.keywords.len());
            for (k, keyword) in spec.keywords.iter().enumerate() {
                let folded = fold_term(keyword);
                if !folded.chars().any(normalize::is_word_char) {
                    return Err(fail(RuleError::EmptyKeyword { index: k }));
                }
                let term = match terms.iter().position(|t| *t == folded) {
                    Some(existing) => existing,
                    None => {
                        terms.push(folded);
                        display.push(keyword.trim().to_owned());
                        terms.len() - 1
                    }
                };
                any.push(Expr::Term {
                    term,
                    fields: spec.fields,
                });
            }
            rules.push(Rule {
                name: spec.name.clone(),
                feeds: spec.feeds.clone(),
                expr: Expr::Any(any),
            });
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&terms)
            .map_err(|e| RuleSetError {
                rule: 0,
                error: RuleError::Automaton(e.to_string()),
            })?;
        Ok(RuleSet {
            rules,
            terms,
            display,
            automaton,
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every rule that fires on `item` from `feed`, in rule order.
    pub fn matches(&self, feed: &str, item: &Item) -> Vec<RuleMatch> {
        let wanted = |rule: &Rule| rule.feeds.as_ref().is_none_or(|f| f.contains(feed));
        if !self.rules.iter().any(wanted) {
            return Vec::new();
        }
        let hits = self.scan(item);
        self.rules
            .iter()
            .filter(|rule| wanted(rule))
            .filter_map(|rule| {
                let mut used = Vec::new();
                rule.expr.eval(&hits, &mut used).then(|| RuleMatch {
                    rule: rule.name.clone(),
                    hits: used
                        .into_iter()
                        .map(|h: &ScanHit| Hit {
                            term: self.display[h.term].clone(),
                            field: h.field,
                            span: h.span,
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// Finds every whole-word occurrence of every term in every field, once.
    fn scan(&self, item: &Item) -> Vec<ScanHit> {
        let mut hits = Vec::new();
        for field in Field::ALL {
            let original = field.text(item);
            if original.is_empty() {
                continue;
            }
            let folded = fold(original);
            for m in self.automaton.find_overlapping_iter(folded.text.as_str()) {
                if is_whole_word(&folded.text, m.start(), m.end()) {
                    hits.push(ScanHit {
                        term: m.pattern().as_usize(),
                        field,
                        span: folded.original_span(m.start(), m.end()),
                    });
                }
            }
        }
        hits
    }
}

#[derive(Debug)]
struct ScanHit {
    term: TermId,
    field: Field,
    span: (usize, usize),
}

impl Expr {
    /// Whether the expression holds over `hits`; the hits that made it hold are added
    /// to `used` (every occurrence, so alerts can highlight each).
    fn eval<'h>(&self, hits: &'h [ScanHit], used: &mut Vec<&'h ScanHit>) -> bool {
        match self {
            Expr::Term { term, fields } => {
                let before = used.len();
                used.extend(
                    hits.iter()
                        .filter(|h| h.term == *term && fields.contains(h.field)),
                );
                used.len() > before
            }
            Expr::Any(exprs) => {
                // No short cut: every matching branch adds its hits for the alert.
                let mut found = false;
                for e in exprs {
                    found |= e.eval(hits, used);
                }
                found
            }
        }
    }
}

/// A hit counts only where it is not part of a longer word. A term that starts or ends
/// in an unspaced script (Chinese, Japanese) needs no boundary on that side.
fn is_whole_word(text: &str, start: usize, end: usize) -> bool {
    let matched = &text[start..end];
    let first = matched.chars().next();
    let last = matched.chars().next_back();
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let edge_ok = |edge: Option<char>, neighbour: Option<char>| {
        edge.is_some_and(normalize::is_unspaced_script)
            || !edge.is_some_and(normalize::is_word_char)
            || !neighbour.is_some_and(normalize::is_word_char)
    };
    edge_ok(first, before) && edge_ok(last, after)
}

/// The terms of `matches`, each once, in the order first found.
pub fn matched_terms(matches: &[RuleMatch]) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for hit in matches.iter().flat_map(|m| &m.hits) {
        if !terms.contains(&hit.term) {
            terms.push(hit.term.clone());
        }
    }
    terms
}

/// About how many bytes of context a snippet shows on each side of the first hit.
const SNIPPET_CONTEXT: usize = 120;

/// A passage of the original text around the first hit, preferring the summary, then
/// content, then the title, with every hit inside it marked.
pub fn snippet(item: &Item, matches: &[RuleMatch]) -> Snippet {
    let hits: Vec<&Hit> = matches.iter().flat_map(|m| &m.hits).collect();
    let chosen = [Field::Summary, Field::Content, Field::Title]
        .into_iter()
        .find(|f| hits.iter().any(|h| h.field == *f));
    let Some(field) = chosen else {
        return Snippet {
            text: lead(&item.summary, 2 * SNIPPET_CONTEXT),
            highlights: Vec::new(),
        };
    };
    let text = field.text(item);
    let mut spans: Vec<(usize, usize)> = hits
        .iter()
        .filter(|h| h.field == field)
        .map(|h| h.span)
        .collect();
    spans.sort_unstable();
    spans.dedup();
    let first = spans[0];
    let start = floor_char_boundary(text, first.0.saturating_sub(SNIPPET_CONTEXT));
    let start = text[start..first.0]
        .find(char::is_whitespace)
        .filter(|_| start > 0)
        .map_or(start, |ws| start + ws + 1);
    let end = ceil_char_boundary(text, (first.1 + SNIPPET_CONTEXT).min(text.len()));
    let end = text[first.1..end]
        .rfind(char::is_whitespace)
        .filter(|_| end < text.len())
        .map_or(end, |ws| first.1 + ws);
    let prefix = if start > 0 { "…" } else { "" };
    let suffix = if end < text.len() { "…" } else { "" };
    let shift = |pos: usize| pos - start + prefix.len();
    let mut highlights: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans.into_iter().filter(|&(s, e)| s >= start && e <= end) {
        // Overlapping hits ("NATO" inside "NATO summit") merge into one mark.
        match highlights.last_mut() {
            Some(last) if shift(s) <= last.1 => last.1 = last.1.max(shift(e)),
            _ => highlights.push((shift(s), shift(e))),
        }
    }
    Snippet {
        text: format!("{prefix}{}{suffix}", &text[start..end]),
        highlights,
    }
}

fn lead(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let end = floor_char_boundary(text, max);
    let end = text[..end].rfind(char::is_whitespace).unwrap_or(end);
    format!("{}…", &text[..end])
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests;
