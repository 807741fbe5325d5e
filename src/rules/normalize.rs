//! Folding text for matching: case, accents, apostrophes and whitespace, with a map
//! back to the original text so hits can be shown where the reader wrote them.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// What folding removes. The default folds both case and accents; a rule can keep
/// either (`case_sensitive = true`, `accents = "strict"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FoldMode {
    pub case: bool,
    pub accents: bool,
}

impl FoldMode {
    pub const FULL: FoldMode = FoldMode {
        case: true,
        accents: true,
    };
}

/// Text folded for matching, plus where each folded byte came from.
#[derive(Debug)]
pub struct Folded {
    pub text: String,
    /// For each byte of `text`, the start in the original of the char it came from;
    /// `None` when folding kept every byte in place (plain ASCII, the common case).
    origin: Option<Vec<u32>>,
}

impl Folded {
    /// Maps a byte range of the folded text back to a byte range of the original.
    pub fn original_span(&self, original: &str, start: usize, end: usize) -> (usize, usize) {
        debug_assert!(start < end && end <= self.text.len());
        let Some(origin) = &self.origin else {
            return (start, end);
        };
        let last = origin[end - 1] as usize;
        let last_len = original[last..].chars().next().map_or(0, char::len_utf8);
        (origin[start] as usize, last + last_len)
    }
}

/// Folds `original` for matching: lower case (full Unicode) unless `mode.case` is off,
/// accents and other combining marks removed after canonical decomposition unless
/// `mode.accents` is off, typographic apostrophes made `'`, invisible joiners dropped,
/// and every run of whitespace made one space.
pub fn fold(original: &str, mode: FoldMode) -> Folded {
    if let Some(text) = fold_ascii_in_place(original, mode) {
        return Folded { text, origin: None };
    }
    let mut text = String::with_capacity(original.len());
    let mut origin = Vec::with_capacity(original.len());
    let mut in_space = false;
    for (pos, ch) in original.char_indices() {
        if ch.is_whitespace() {
            if !in_space {
                text.push(' ');
                origin.push(pos as u32);
                in_space = true;
            }
            continue;
        }
        in_space = false;
        if ch.is_ascii() && !ch.is_ascii_control() {
            // Most of any text, even in other scripts: no table lookups needed.
            text.push(if mode.case {
                ch.to_ascii_lowercase()
            } else {
                ch
            });
            origin.push(pos as u32);
            continue;
        }
        fold_char(ch, mode, |folded| {
            let before = text.len();
            text.push(folded);
            origin.extend(std::iter::repeat_n(pos as u32, text.len() - before));
        });
    }
    Folded {
        text,
        origin: Some(origin),
    }
}

/// The fast path: ASCII text without whitespace runs folds byte for byte.
fn fold_ascii_in_place(original: &str, mode: FoldMode) -> Option<String> {
    let bytes = original.as_bytes();
    let mut previous_space = false;
    for &b in bytes {
        let space = b.is_ascii_whitespace();
        if !b.is_ascii() || (space && previous_space) {
            return None;
        }
        previous_space = space;
    }
    let folded = bytes
        .iter()
        .map(|&b| match b {
            b if b.is_ascii_whitespace() => b' ',
            b if mode.case => b.to_ascii_lowercase(),
            b => b,
        })
        .collect();
    // Only ASCII bytes went in, so the result is valid UTF-8.
    String::from_utf8(folded).ok()
}

/// Folds a search term the same way as text, so that both meet in the middle.
pub fn fold_term(term: &str, mode: FoldMode) -> String {
    fold(term.trim(), mode).text
}

fn fold_char(ch: char, mode: FoldMode, mut emit: impl FnMut(char)) {
    match ch {
        '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{FF07}' => return emit('\''),
        // Invisible joiners and soft hyphens sit inside words without changing them.
        '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => return,
        _ => {}
    }
    if ch.is_ascii() {
        return emit(if mode.case {
            ch.to_ascii_lowercase()
        } else {
            ch
        });
    }
    let mut lower = |c: char| {
        if !mode.case {
            return emit(c);
        }
        for l in c.to_lowercase() {
            emit(if l == 'ς' { 'σ' } else { l });
        }
    };
    // Decomposed either way, so that a precomposed "ó" and "o" + U+0301 fold alike;
    // the marks are then dropped unless accents are strict.
    decompose_canonical(ch, |base| {
        if !(mode.accents && is_combining_mark(base)) {
            lower(base);
        }
    });
}

/// Whether `ch` belongs to a word: a hit must not continue into one.
pub fn is_word_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// Scripts written without spaces between words (Han, kana), where a term is matched
/// anywhere: a whole-word rule would never match there.
pub fn is_unspaced_script(ch: char) -> bool {
    matches!(ch,
        '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}' // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK Unified Ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK Compatibility Ideographs
        | '\u{FF66}'..='\u{FF9F}' // half-width Katakana
        | '\u{20000}'..='\u{2FA1F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_accents_in_every_script() {
        assert_eq!(fold("Lavróv", FoldMode::FULL).text, "lavrov");
        assert_eq!(fold("ЛАВРОВ", FoldMode::FULL).text, "лавров");
        assert_eq!(fold("ΟΔΥΣΣΕΥΣ", FoldMode::FULL).text, "οδυσσευσ");
        assert_eq!(fold("Straße Ñandú", FoldMode::FULL).text, "straße nandu");
        assert_eq!(fold("Blinken\u{2019}s", FoldMode::FULL).text, "blinken's");
    }

    #[test]
    fn collapses_whitespace_and_drops_invisible_joiners() {
        assert_eq!(
            fold("  Sergei\n\t Lavrov ", FoldMode::FULL).text,
            " sergei lavrov "
        );
        assert_eq!(fold("Lav\u{200C}rov", FoldMode::FULL).text, "lavrov");
    }

    #[test]
    fn strict_modes_keep_case_or_accents() {
        let keep_case = FoldMode {
            case: false,
            accents: true,
        };
        assert_eq!(fold("Lavróv NATO", keep_case).text, "Lavrov NATO");
        let keep_accents = FoldMode {
            case: true,
            accents: false,
        };
        assert_eq!(fold("Lavróv NATO", keep_accents).text, "lavro\u{301}v nato");
        assert_eq!(fold("Lavro\u{301}v", keep_accents).text, "lavro\u{301}v");
    }

    #[test]
    fn plain_ascii_folds_in_place() {
        let folded = fold("NATO Summit\tin Vilnius", FoldMode::FULL);
        assert_eq!(folded.text, "nato summit in vilnius");
        assert!(folded.origin.is_none());
        assert!(fold("two  spaces", FoldMode::FULL).origin.is_some());
    }

    #[test]
    fn maps_spans_back_to_the_original() {
        let original = "Mr  Lavróv’s trip";
        let folded = fold(original, FoldMode::FULL);
        let start = folded
            .text
            .find("lavrov")
            .expect("folded text holds the name");
        let (s, e) = folded.original_span(original, start, start + "lavrov".len());
        assert_eq!(&original[s..e], "Lavróv");
    }

    #[test]
    fn maps_expanding_chars_to_the_whole_original_char() {
        // 'İ' lower-cases to two chars; a span over either maps to the whole of it.
        let folded = fold("İstanbul", FoldMode::FULL);
        assert_eq!(folded.text, "istanbul");
        assert_eq!(folded.original_span("İstanbul", 0, 1), (0, 'İ'.len_utf8()));
    }
}
