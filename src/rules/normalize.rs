//! Folding text for matching: case, accents, apostrophes and whitespace, with a map
//! back to the original text so hits can be shown where the reader wrote them.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// Text folded for matching, plus where each folded byte came from.
#[derive(Debug)]
pub struct Folded {
    pub text: String,
    /// For each byte of `text`, the byte range in the original of the char it came from.
    origin: Vec<(u32, u32)>,
}

impl Folded {
    /// Maps a byte range of the folded text back to a byte range of the original.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        debug_assert!(start < end && end <= self.text.len());
        (
            self.origin[start].0 as usize,
            self.origin[end - 1].1 as usize,
        )
    }
}

/// Folds `original`: lower case (full Unicode), accents and other combining marks
/// removed after canonical decomposition, typographic apostrophes made `'`, final
/// sigma made `σ`, and every run of whitespace made one space.
pub fn fold(original: &str) -> Folded {
    let mut text = String::with_capacity(original.len());
    let mut origin = Vec::with_capacity(original.len());
    let mut in_space = false;
    for (pos, ch) in original.char_indices() {
        let span = (pos as u32, (pos + ch.len_utf8()) as u32);
        if ch.is_whitespace() {
            if !in_space {
                text.push(' ');
                origin.push(span);
                in_space = true;
            }
            continue;
        }
        in_space = false;
        fold_char(ch, |folded| {
            let before = text.len();
            text.push(folded);
            origin.extend(std::iter::repeat_n(span, text.len() - before));
        });
    }
    Folded { text, origin }
}

/// Folds a search term the same way as text, so that both meet in the middle.
pub fn fold_term(term: &str) -> String {
    fold(term.trim()).text
}

fn fold_char(ch: char, mut emit: impl FnMut(char)) {
    match ch {
        '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{FF07}' => return emit('\''),
        // Invisible joiners and soft hyphens sit inside words without changing them.
        '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => return,
        _ => {}
    }
    if ch.is_ascii() {
        return emit(ch.to_ascii_lowercase());
    }
    decompose_canonical(ch, |base| {
        if is_combining_mark(base) {
            return;
        }
        for lower in base.to_lowercase() {
            emit(if lower == 'ς' { 'σ' } else { lower });
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
        assert_eq!(fold("Lavróv").text, "lavrov");
        assert_eq!(fold("ЛАВРОВ").text, "лавров");
        assert_eq!(fold("ΟΔΥΣΣΕΥΣ").text, "οδυσσευσ");
        assert_eq!(fold("Straße Ñandú").text, "straße nandu");
        assert_eq!(fold("Blinken\u{2019}s").text, "blinken's");
    }

    #[test]
    fn collapses_whitespace_and_drops_invisible_joiners() {
        assert_eq!(fold("  Sergei\n\t Lavrov ").text, " sergei lavrov ");
        assert_eq!(fold("Lav\u{200C}rov").text, "lavrov");
    }

    #[test]
    fn maps_spans_back_to_the_original() {
        let original = "Mr  Lavróv’s trip";
        let folded = fold(original);
        let start = folded
            .text
            .find("lavrov")
            .expect("folded text holds the name");
        let (s, e) = folded.original_span(start, start + "lavrov".len());
        assert_eq!(&original[s..e], "Lavróv");
    }

    #[test]
    fn maps_expanding_chars_to_the_whole_original_char() {
        // 'İ' lower-cases to two chars; a span over either maps to the whole of it.
        let folded = fold("İstanbul");
        assert_eq!(folded.text, "istanbul");
        assert_eq!(folded.original_span(0, 1), (0, 'İ'.len_utf8()));
    }
}
