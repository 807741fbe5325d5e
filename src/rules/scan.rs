//! Finding every term in an item: each field folded once per folding mode in use and
//! scanned once by that mode's automaton, plus one `RegexSet` pass over the original.

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexSet};

use super::FieldSet;
use super::normalize::{self, FoldMode, fold};
use crate::model::{Field, Item};

/// Index of a distinct term.
pub type TermId = usize;

/// How a term's occurrences count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TermKind {
    /// A whole word or phrase.
    Exact,
    /// A word that starts with the term (`sanction*`).
    Prefix,
    /// A regular expression; its matches count as they are.
    Regex,
}

#[derive(Debug, Clone)]
pub struct Term {
    /// As the rule wrote it, for alerts.
    pub display: String,
    pub kind: TermKind,
}

/// One automaton over text folded one way, and the terms behind each of its patterns.
#[derive(Clone)]
pub struct Automaton {
    pub mode: FoldMode,
    pub automaton: AhoCorasick,
    /// For each pattern, the terms it stands for (exact and prefix terms share one).
    pub terms_of_pattern: Vec<Vec<TermId>>,
}

#[derive(Clone)]
pub struct Regexes {
    pub set: RegexSet,
    pub each: Vec<Regex>,
    pub term: Vec<TermId>,
}

#[derive(Clone)]
pub struct Matcher {
    pub terms: Vec<Term>,
    pub automata: Vec<Automaton>,
    pub regexes: Option<Regexes>,
    /// Fields any rule looks at; the others are not scanned.
    pub fields: FieldSet,
    /// Whether some rule uses NEAR, which needs word positions.
    pub needs_positions: bool,
}

/// A term found in a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScanHit {
    pub term: TermId,
    pub field: Field,
    /// Byte range in the original text of the field.
    pub span: (usize, usize),
    /// Index of the first and the last word the hit covers (0 when not needed).
    pub words: (u32, u32),
}

impl Matcher {
    /// Every occurrence of every term in `item`, sorted by term.
    pub fn scan(&self, item: &Item) -> Vec<ScanHit> {
        let mut hits = Vec::new();
        for field in Field::EVERY {
            let original = field.text(item);
            if original.is_empty() || !self.fields.contains(field) {
                continue;
            }
            let first = hits.len();
            for automaton in &self.automata {
                let folded = fold(original, automaton.mode);
                for m in automaton
                    .automaton
                    .find_overlapping_iter(folded.text.as_str())
                {
                    let (left, right) = boundaries(&folded.text, m.start(), m.end());
                    if !left {
                        continue;
                    }
                    for &term in &automaton.terms_of_pattern[m.pattern().as_usize()] {
                        if right || self.terms[term].kind == TermKind::Prefix {
                            hits.push(ScanHit {
                                term,
                                field,
                                span: folded.original_span(original, m.start(), m.end()),
                                words: (0, 0),
                            });
                        }
                    }
                }
            }
            if let Some(regexes) = &self.regexes {
                for index in regexes.set.matches(original).iter() {
                    for m in regexes.each[index].find_iter(original) {
                        if m.is_empty() {
                            continue;
                        }
                        hits.push(ScanHit {
                            term: regexes.term[index],
                            field,
                            span: (m.start(), m.end()),
                            words: (0, 0),
                        });
                    }
                }
            }
            if self.needs_positions && hits.len() > first {
                let starts = word_starts(original);
                for hit in &mut hits[first..] {
                    hit.words = (
                        word_index(&starts, hit.span.0),
                        word_index(&starts, hit.span.1 - 1),
                    );
                }
            }
        }
        hits.sort_unstable();
        hits
    }
}

/// Byte offsets where words start in `text`.
fn word_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut in_word = false;
    for (pos, ch) in text.char_indices() {
        let word = normalize::is_word_char(ch);
        if word && !in_word {
            starts.push(pos);
        }
        in_word = word;
    }
    starts
}

/// The index of the word that holds (or last started before) byte `offset`.
fn word_index(starts: &[usize], offset: usize) -> u32 {
    let index = starts.partition_point(|&s| s <= offset).saturating_sub(1);
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Whether a hit starts and ends on a word boundary. A hit that starts or ends in an
/// unspaced script (Chinese, Japanese) needs no boundary on that side.
fn boundaries(text: &str, start: usize, end: usize) -> (bool, bool) {
    let matched = &text[start..end];
    let edge_ok = |edge: Option<char>, neighbour: Option<char>| {
        edge.is_some_and(normalize::is_unspaced_script)
            || !edge.is_some_and(normalize::is_word_char)
            || !neighbour.is_some_and(normalize::is_word_char)
    };
    (
        edge_ok(matched.chars().next(), text[..start].chars().next_back()),
        edge_ok(matched.chars().next_back(), text[end..].chars().next()),
    )
}
