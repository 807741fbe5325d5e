//! From rule specs to a [`RuleSet`]: queries parsed, terms folded and shared across
//! rules, automata built, and each rule turned into an [`Expr`] over term hits.

use std::collections::HashMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::{Regex, RegexSet};

use super::expr::{Expr, Rule};
use super::normalize::{self, FoldMode, fold_term};
use super::query::{self, Ast, QueryError};
use super::scan::{Automaton, Matcher, Regexes, Term, TermId, TermKind};
use super::topic::{Embedder, Topic};
use super::{Condition, FieldSet, Lists, RuleError, RuleSet, RuleSetError, RuleSpec};
use crate::model::collapse_whitespace;

/// Distinct terms and patterns, shared by every rule.
#[derive(Default)]
struct TermTable {
    terms: Vec<Term>,
    by_key: HashMap<TermKey, TermId>,
    /// Per folding mode: the patterns and the terms behind each.
    patterns: Vec<(FoldMode, Vec<String>, Vec<Vec<TermId>>)>,
    /// Where each folded pattern sits in `patterns`.
    pattern_slot: HashMap<(FoldMode, String), (usize, usize)>,
    regexes: Vec<(String, TermId)>,
}

#[derive(PartialEq, Eq, Hash)]
enum TermKey {
    Literal(FoldMode, String, TermKind),
    Regex(String),
}

impl TermTable {
    fn literal(&mut self, written: &str, kind: TermKind, mode: FoldMode) -> Option<TermId> {
        let folded = fold_term(written, mode);
        if !folded.chars().any(normalize::is_word_char) {
            return None;
        }
        let key = TermKey::Literal(mode, folded.clone(), kind);
        if let Some(&id) = self.by_key.get(&key) {
            return Some(id);
        }
        let id = self.push(written, kind, key);
        if let Some(&(slot, p)) = self.pattern_slot.get(&(mode, folded.clone())) {
            self.patterns[slot].2[p].push(id);
            return Some(id);
        }
        let slot = match self.patterns.iter().position(|(m, ..)| *m == mode) {
            Some(slot) => slot,
            None => {
                self.patterns.push((mode, Vec::new(), Vec::new()));
                self.patterns.len() - 1
            }
        };
        let (_, patterns, terms) = &mut self.patterns[slot];
        self.pattern_slot
            .insert((mode, folded.clone()), (slot, patterns.len()));
        patterns.push(folded);
        terms.push(vec![id]);
        Some(id)
    }

    fn regex(&mut self, pattern: &str, case_sensitive: bool) -> Result<TermId, String> {
        let full = if case_sensitive {
            pattern.to_owned()
        } else {
            format!("(?i:{pattern})")
        };
        Regex::new(&full).map_err(|e| e.to_string())?;
        let key = TermKey::Regex(full.clone());
        if let Some(&id) = self.by_key.get(&key) {
            return Ok(id);
        }
        let id = self.push(&format!("/{pattern}/"), TermKind::Regex, key);
        self.regexes.push((full, id));
        Ok(id)
    }

    fn push(&mut self, display: &str, kind: TermKind, key: TermKey) -> TermId {
        let suffix = if kind == TermKind::Prefix { "*" } else { "" };
        self.terms.push(Term {
            display: format!("{}{suffix}", display.trim()),
            kind,
            near_partners: Vec::new(),
        });
        self.by_key.insert(key, self.terms.len() - 1);
        self.terms.len() - 1
    }
}

/// What a rule's terms are compiled with.
#[derive(Clone, Copy)]
struct Context {
    fields: FieldSet,
    mode: FoldMode,
    case_sensitive: bool,
}

pub fn compile(
    specs: &[RuleSpec],
    lists: &Lists,
    embedder: Option<Arc<dyn Embedder>>,
) -> Result<RuleSet, RuleSetError> {
    let mut table = TermTable::default();
    let mut rules = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let fail = |error| RuleSetError { rule: index, error };
        if spec.fields.is_empty() {
            return Err(fail(RuleError::NoFields));
        }
        let cx = Context {
            fields: spec.fields,
            mode: FoldMode {
                case: !spec.case_sensitive,
                accents: !spec.strict_accents,
            },
            case_sensitive: spec.case_sensitive,
        };
        let expr = match &spec.condition {
            Condition::Keywords(keywords) => {
                if keywords.is_empty() {
                    return Err(fail(RuleError::NoKeywords));
                }
                let mut any = Vec::with_capacity(keywords.len());
                for (k, keyword) in keywords.iter().enumerate() {
                    let term = table
                        .literal(keyword, TermKind::Exact, cx.mode)
                        .ok_or_else(|| fail(RuleError::EmptyKeyword { index: k }))?;
                    any.push(Expr::Term {
                        term,
                        fields: cx.fields,
                    });
                }
                Expr::Or(any)
            }
            Condition::Query(text) => {
                let query_error = |error: QueryError| {
                    fail(RuleError::Query {
                        query: text.clone(),
                        error,
                    })
                };
                let ast = query::parse(text).map_err(query_error)?;
                lower(&ast, cx, &mut table, lists).map_err(query_error)?
            }
            // True over no hits at all: such a rule is tried on every item.
            Condition::Always => Expr::And(Vec::new()),
        };
        let topic = match (&spec.topic, &embedder) {
            (None, _) => None,
            (Some(topic), _) if topic.about.trim().is_empty() => {
                return Err(fail(RuleError::EmptyAbout));
            }
            (Some(topic), Some(embedder)) => Some(Topic::new(topic, spec.fields, &**embedder)),
            (Some(_), None) => return Err(fail(RuleError::NoModel)),
        };
        rules.push(Rule {
            name: spec.name.clone(),
            feeds: spec.feeds.clone(),
            expr,
            topic,
        });
    }
    let embedder = embedder.filter(|_| rules.iter().any(|r| r.topic.is_some()));
    build(rules, table, embedder).map_err(|e| RuleSetError {
        rule: 0,
        error: RuleError::Automaton(e),
    })
}

fn lower(ast: &Ast, cx: Context, table: &mut TermTable, lists: &Lists) -> Result<Expr, QueryError> {
    // Parse errors carry columns; errors found here point at the query's start unless
    // the node knows better.
    let at = |column: usize, message: String| QueryError { column, message };
    let term = |term| Expr::Term {
        term,
        fields: cx.fields,
    };
    Ok(match ast {
        Ast::Literal(_) | Ast::Prefix(_) | Ast::Regex(_) | Ast::List { .. } => {
            let alternatives = term_alternatives(ast, cx, table, lists)?;
            match alternatives.as_slice() {
                [one] => term(*one),
                _ => Expr::Or(alternatives.into_iter().map(term).collect()),
            }
        }
        Ast::Field(field, inner) => lower(
            inner,
            Context {
                fields: FieldSet::from_fields([*field]),
                ..cx
            },
            table,
            lists,
        )?,
        Ast::Near {
            left,
            right,
            distance,
            column,
        } => {
            let side = |ast: &Ast, table: &mut TermTable| {
                term_alternatives(ast, cx, table, lists).map_err(|e| {
                    if e.column == 0 {
                        at(*column, "NEAR needs a word, \"phrase\", prefix*, /regex/ or @list (or an OR of them) on each side; for one field, write title:(a NEAR/3 b)".into())
                    } else {
                        e
                    }
                })
            };
            Expr::Near {
                left: side(left, table)?,
                right: side(right, table)?,
                fields: cx.fields,
                distance: *distance,
            }
        }
        Ast::And(all) => Expr::And(
            all.iter()
                .map(|a| lower(a, cx, table, lists))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Or(any) => Expr::Or(
            any.iter()
                .map(|a| lower(a, cx, table, lists))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Not(inner) => Expr::Not(Box::new(lower(inner, cx, table, lists)?)),
    })
}

/// The terms a term-like node stands for. A node that is not term-like gives an
/// error with column 0, which NEAR turns into its own message.
fn term_alternatives(
    ast: &Ast,
    cx: Context,
    table: &mut TermTable,
    lists: &Lists,
) -> Result<Vec<TermId>, QueryError> {
    let at = |column: usize, message: String| QueryError { column, message };
    let literal = |table: &mut TermTable, text: &str, kind| {
        table.literal(text, kind, cx.mode).ok_or_else(|| {
            at(
                1,
                format!("the term {text:?} has no letters or digits to match"),
            )
        })
    };
    match ast {
        Ast::Literal(text) => Ok(vec![literal(table, text, TermKind::Exact)?]),
        Ast::Prefix(stem) => Ok(vec![literal(table, stem, TermKind::Prefix)?]),
        Ast::Regex(pattern) => table
            .regex(pattern, cx.case_sensitive)
            .map(|t| vec![t])
            .map_err(|e| {
                at(
                    1,
                    format!("invalid regex /{pattern}/: {}", collapse_whitespace(&e)),
                )
            }),
        Ast::List { name, column } => {
            let entries = lists.get(name).ok_or_else(|| {
                let known: Vec<&str> = lists.keys().map(String::as_str).collect();
                at(
                    *column,
                    format!(
                        "unknown list @{name}; [lists] defines: {}",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            if entries.is_empty() {
                return Err(at(*column, format!("list @{name} is empty")));
            }
            entries
                .iter()
                .map(|entry| {
                    table
                        .literal(entry, TermKind::Exact, cx.mode)
                        .ok_or_else(|| {
                            at(
                                *column,
                                format!(
                                    "list @{name} holds {entry:?}, which has no letters or digits"
                                ),
                            )
                        })
                })
                .collect()
        }
        Ast::Or(any) => {
            let mut all = Vec::new();
            for a in any {
                all.extend(term_alternatives(a, cx, table, lists)?);
            }
            Ok(all)
        }
        Ast::Field(..) | Ast::Near { .. } | Ast::And(_) | Ast::Not(_) => Err(at(0, String::new())),
    }
}

/// Builds the automata, the regex set and the indexes the matcher needs.
fn build(
    rules: Vec<Rule>,
    table: TermTable,
    embedder: Option<Arc<dyn Embedder>>,
) -> Result<RuleSet, String> {
    let mut automata = Vec::with_capacity(table.patterns.len());
    for (mode, patterns, terms_of_pattern) in table.patterns {
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            // A full DFA costs memory at build time but scans at one lookup per byte;
            // with 1,000 rules it measured 1.6x the throughput of the default choice.
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&patterns)
            .map_err(|e| e.to_string())?;
        automata.push(Automaton {
            mode,
            automaton,
            terms_of_pattern,
        });
    }
    let regexes = if table.regexes.is_empty() {
        None
    } else {
        let (patterns, term): (Vec<String>, Vec<TermId>) = table.regexes.into_iter().unzip();
        let set = RegexSet::new(&patterns).map_err(|e| collapse_whitespace(&e.to_string()))?;
        let each = patterns
            .iter()
            .map(|p| Regex::new(p))
            .collect::<Result<_, _>>()
            .map_err(|e| collapse_whitespace(&e.to_string()))?;
        Some(Regexes { set, each, term })
    };
    let mut rules_of_term = vec![Vec::new(); table.terms.len()];
    let mut always = Vec::new();
    let mut fields = FieldSet::from_fields([]);
    let mut terms_list = table.terms;
    for (index, rule) in rules.iter().enumerate() {
        let mut terms = Vec::new();
        rule.expr.terms(&mut terms);
        terms.sort_unstable();
        terms.dedup();
        for term in terms {
            rules_of_term[term].push(index);
        }
        if rule.expr.eval(&[], &mut Vec::new()) {
            always.push(index);
        }
        fields = fields.union(rule.expr.fields());
        let mut pairs = Vec::new();
        rule.expr.near_partners(&mut pairs);
        for (term, partner) in pairs {
            terms_list[term].near_partners.push(partner);
        }
    }
    for term in &mut terms_list {
        term.near_partners.sort_unstable();
        term.near_partners.dedup();
    }
    Ok(RuleSet {
        rules,
        matcher: Matcher {
            terms: terms_list,
            automata,
            regexes,
            fields,
        },
        rules_of_term,
        always,
        embedder,
    })
}
