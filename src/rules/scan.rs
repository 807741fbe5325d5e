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
    /// The terms on the other side of each NEAR that uses this one (sorted): with one
    /// of them found in the same field, the term's hits need word positions.
    pub near_partners: Vec<TermId>,
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
            self.place_in_words(original, &mut hits[first..]);
        }
        hits.sort_unstable();
        hits
    }
}

impl Matcher {
    /// Sets the word positions of the hits that a NEAR will look at (those with a
    /// partner found in the same field), counting words in one pass that stops at the
    /// last of them.
    fn place_in_words(&self, text: &str, hits: &mut [ScanHit]) {
        if hits
            .iter()
            .all(|h| self.terms[h.term].near_partners.is_empty())
        {
            return;
        }
        let mut found: Vec<TermId> = hits.iter().map(|h| h.term).collect();
        found.sort_unstable();
        found.dedup();
        let mut needed: Vec<&mut ScanHit> = hits
            .iter_mut()
            .filter(|h| {
                self.terms[h.term]
                    .near_partners
                    .iter()
                    .any(|p| found.binary_search(p).is_ok())
            })
            .collect();
        if needed.is_empty() {
            return;
        }
        needed.sort_unstable_by_key(|h| h.span.0);
        // Each hit needs the index of the word holding its first and its last byte.
        let mut marks: Vec<(usize, usize, bool)> = needed
            .iter()
            .enumerate()
            .flat_map(|(i, h)| [(h.span.0, i, true), (h.span.1 - 1, i, false)])
            .collect();
        marks.sort_unstable();
        let bytes = text.as_bytes();
        let mut words: i64 = -1;
        let mut in_word = false;
        let mut next = 0;
        let mut pos = 0;
        // Every mark lies inside the text, so the walk ends on the last of them.
        while next < marks.len() && pos < bytes.len() {
            let (word, len) = match bytes[pos] {
                b if b.is_ascii() => (b.is_ascii_alphanumeric() || b == b'_', 1),
                _ => {
                    let ch = text[pos..].chars().next().unwrap_or_default();
                    (normalize::is_word_char(ch), ch.len_utf8())
                }
            };
            if word && !in_word {
                words += 1;
            }
            in_word = word;
            pos += len;
            while next < marks.len() && marks[next].0 < pos {
                let (_, i, first) = marks[next];
                let index = u32::try_from(words.max(0)).unwrap_or(u32::MAX);
                if first {
                    needed[i].words.0 = index;
                } else {
                    needed[i].words.1 = index;
                }
                next += 1;
            }
        }
    }
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
