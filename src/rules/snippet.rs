//! What an alert shows of a match: the terms found, and a passage of the original text
//! around the first hit with every hit inside it marked.

use super::{Hit, RuleMatch};
use crate::model::{Field, Item, Snippet, floor_char_boundary};

/// The terms of `matches`, each once, in the order first found.
pub fn matched_terms(matches: &[RuleMatch]) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for hit in matches.iter().flat_map(|m| &m.hits) {
        if !terms.iter().any(|t| t == hit.term) {
            terms.push(hit.term.to_owned());
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
    let chosen = [
        Field::Summary,
        Field::Content,
        Field::Title,
        Field::Article,
        Field::Author,
        Field::Category,
        Field::Link,
    ]
    .into_iter()
    .find(|f| hits.iter().any(|h| h.field == *f));
    let Some(field) = chosen else {
        return Snippet {
            text: lead(&item.summary, 2 * SNIPPET_CONTEXT),
            highlights: Vec::new(),
        };
    };
    let spans: Vec<(usize, usize)> = hits
        .iter()
        .filter(|h| h.field == field)
        .map(|h| h.span)
        .collect();
    passage(field.text(item), spans)
}

/// A passage of `text` around the first of `spans` (byte ranges, at least one), with
/// every span inside it marked; overlapping spans merge into one mark.
pub fn passage(text: &str, mut spans: Vec<(usize, usize)>) -> Snippet {
    spans.sort_unstable();
    spans.dedup();
    let Some(&first) = spans.first() else {
        return Snippet {
            text: lead(text, 2 * SNIPPET_CONTEXT),
            highlights: Vec::new(),
        };
    };
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

fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}
