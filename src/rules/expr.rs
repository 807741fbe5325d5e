//! A compiled rule: which feeds it watches, its topic, and its expression over the
//! terms an item's scan found, evaluated without looking at the text again.

use std::collections::BTreeSet;

use super::FieldSet;
use super::scan::{ScanHit, TermId};
use super::topic::Topic;

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub feeds: Option<BTreeSet<String>>,
    pub expr: Expr,
    pub topic: Option<Topic>,
}

/// A rule's condition over the terms found in an item.
#[derive(Debug, Clone)]
pub enum Expr {
    /// The term was found in one of the fields.
    Term {
        term: TermId,
        fields: FieldSet,
    },
    /// A term of `left` and a term of `right` in the same field, at most `distance`
    /// words apart.
    Near {
        left: Vec<TermId>,
        right: Vec<TermId>,
        fields: FieldSet,
        distance: u32,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    /// Whether the expression holds over `hits` (sorted by term). The indices of the
    /// hits that made it hold are added to `used`, so alerts can mark each one.
    pub fn eval(&self, hits: &[ScanHit], used: &mut Vec<usize>) -> bool {
        match self {
            Expr::Term { term, fields } => {
                let before = used.len();
                let range = hits_of(hits, *term);
                used.extend(range.filter(|&h| fields.contains(hits[h].field)));
                used.len() > before
            }
            Expr::Near {
                left,
                right,
                fields,
                distance,
            } => {
                let before = used.len();
                let side = |terms: &[TermId]| -> Vec<usize> {
                    terms
                        .iter()
                        .flat_map(|&t| hits_of(hits, t))
                        .filter(|&h| fields.contains(hits[h].field))
                        .collect()
                };
                let (lefts, rights) = (side(left), side(right));
                for &a in &lefts {
                    for &b in &rights {
                        let (x, y) = (hits[a], hits[b]);
                        let gap = if x.words.0 <= y.words.0 {
                            y.words.0.saturating_sub(x.words.1)
                        } else {
                            x.words.0.saturating_sub(y.words.1)
                        };
                        if x.field == y.field && gap <= *distance {
                            used.extend([a, b]);
                        }
                    }
                }
                used.len() > before
            }
            Expr::And(all) => {
                let before = used.len();
                let holds = all.iter().all(|e| e.eval(hits, used));
                if !holds {
                    used.truncate(before);
                }
                holds
            }
            Expr::Or(any) => {
                // No short cut: every matching branch adds its hits for the alert.
                let mut found = false;
                for e in any {
                    found |= e.eval(hits, used);
                }
                found
            }
            // What a negation looked at is not a reason the rule fired.
            Expr::Not(inner) => !inner.eval(hits, &mut Vec::new()),
        }
    }

    /// Why the expression does not hold over `hits`: the first clause that fails, in
    /// words (`no "Lavrov"`), with each term as `display` names it.
    pub fn why_not(&self, hits: &[ScanHit], display: &dyn Fn(TermId) -> String) -> String {
        let quoted = |term: TermId| format!("\"{}\"", display(term));
        match self {
            // Evaluated false: any hit of the term is in a field the clause does not read.
            Expr::Term { term, .. } => match hits_of(hits, *term).next() {
                Some(_) => format!("{} is only in fields the rule does not read", quoted(*term)),
                None => format!("no {}", quoted(*term)),
            },
            Expr::Near {
                left,
                right,
                distance,
                ..
            } => {
                let side = |terms: &[TermId]| {
                    let names: Vec<String> = terms.iter().map(|&t| quoted(t)).collect();
                    names.join(" or ")
                };
                format!(
                    "{} is not within {distance} words of {}",
                    side(left),
                    side(right)
                )
            }
            Expr::And(all) => all
                .iter()
                .find(|e| !e.eval(hits, &mut Vec::new()))
                .map_or_else(String::new, |e| e.why_not(hits, display)),
            Expr::Or(any) if any.len() == 1 => any[0].why_not(hits, display),
            Expr::Or(any) if any.iter().all(|e| matches!(e, Expr::Term { .. })) => {
                let mut terms = Vec::new();
                self.terms(&mut terms);
                let names: Vec<String> = terms.into_iter().map(quoted).collect();
                format!("none of {}", names.join(", "))
            }
            Expr::Or(any) => {
                let reasons: Vec<String> = any.iter().map(|e| e.why_not(hits, display)).collect();
                format!("neither: {}", reasons.join("; nor "))
            }
            Expr::Not(inner) => {
                let mut terms = Vec::new();
                inner.terms(&mut terms);
                terms.retain(|&t| hits_of(hits, t).next().is_some());
                terms.dedup();
                let names: Vec<String> = terms.into_iter().map(quoted).collect();
                format!(
                    "{} is there, and the rule excludes it (NOT)",
                    names.join(", ")
                )
            }
        }
    }

    /// Every term the expression mentions.
    pub(super) fn terms(&self, out: &mut Vec<TermId>) {
        match self {
            Expr::Term { term, .. } => out.push(*term),
            Expr::Near { left, right, .. } => out.extend(left.iter().chain(right)),
            Expr::And(all) | Expr::Or(all) => all.iter().for_each(|e| e.terms(out)),
            Expr::Not(inner) => inner.terms(out),
        }
    }

    /// The fields the expression looks at.
    pub(super) fn fields(&self) -> FieldSet {
        match self {
            Expr::Term { fields, .. } | Expr::Near { fields, .. } => *fields,
            Expr::And(all) | Expr::Or(all) => all
                .iter()
                .fold(FieldSet::from_fields([]), |acc, e| acc.union(e.fields())),
            Expr::Not(inner) => inner.fields(),
        }
    }

    /// Each term on one side of a NEAR with each term on its other side, both ways
    /// round: a hit needs its word position only when a partner is found too.
    pub(super) fn near_partners(&self, out: &mut Vec<(TermId, TermId)>) {
        match self {
            Expr::Near { left, right, .. } => {
                for &a in left {
                    for &b in right {
                        out.extend([(a, b), (b, a)]);
                    }
                }
            }
            Expr::Term { .. } => {}
            Expr::And(all) | Expr::Or(all) => all.iter().for_each(|e| e.near_partners(out)),
            Expr::Not(inner) => inner.near_partners(out),
        }
    }
}

/// The hits of `term`, as indices into `hits` (sorted by term).
fn hits_of(hits: &[ScanHit], term: TermId) -> std::ops::Range<usize> {
    let start = hits.partition_point(|h| h.term < term);
    let end = start + hits[start..].partition_point(|h| h.term == term);
    start..end
}
