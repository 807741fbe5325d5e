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
    /// Where the folded text stops running byte for byte beside the original, in
    /// order of `folded`; empty for plain ASCII with single spaces, the common case.
    anchors: Vec<Anchor>,
}

/// From `folded` on (until the next anchor), the folded text comes from the
/// original at `original`: byte for byte when `aligned`, else every byte from the one
/// char that starts there.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    folded: u32,
    original: u32,
    aligned: bool,
}

impl Folded {
    /// Maps a byte range of the folded text back to a byte range of the original.
    pub fn original_span(&self, original: &str, start: usize, end: usize) -> (usize, usize) {
        debug_assert!(start < end && end <= self.text.len());
        let last = self.origin(original, end - 1);
        let last_len = original[last..].chars().next().map_or(0, char::len_utf8);
        (self.origin(original, start), last + last_len)
    }

    /// The start of the original char that folded byte `at` came from.
    fn origin(&self, original: &str, at: usize) -> usize {
        let before = self.anchors.partition_point(|a| a.folded as usize <= at);
        // Before the first anchor, both texts run byte for byte from their start.
        let anchor = match before.checked_sub(1) {
            Some(index) => self.anchors[index],
            None => Anchor::new(0, 0, true),
        };
        if !anchor.aligned {
            return anchor.original as usize;
        }
        // An aligned stretch holds whole chars of equal length on both sides, so the
        // byte beside `at` lies in the char it came from.
        let mut pos = anchor.original as usize + (at - anchor.folded as usize);
        while !original.is_char_boundary(pos) {
            pos -= 1;
        }
        pos
    }
}

/// Folds `original` for matching: lower case (full Unicode) unless `mode.case` is off,
/// accents and other combining marks removed after canonical decomposition unless
/// `mode.accents` is off, typographic apostrophes made `'`, invisible joiners dropped,
/// and every run of whitespace made one space.
pub fn fold(original: &str, mode: FoldMode) -> Folded {
    let bytes = original.as_bytes();
    let mut text: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut anchors: Vec<Anchor> = Vec::new();
    // Whether the next byte out lies beside the next byte in, as the last anchor
    // (or none) says.
    let mut aligned = true;
    let mut in_space = false;
    let mut pos = 0;
    while pos < bytes.len() {
        // Most of any text, even in other scripts, is ASCII with single spaces: such a
        // stretch folds byte for byte, with no table lookups.
        let start = pos;
        let mut space = in_space;
        while let Some(&b) = bytes.get(pos) {
            let next_space = ASCII_FOLDS[0][usize::from(b)] == b' ';
            if !b.is_ascii() || (space && next_space) {
                break;
            }
            space = next_space;
            pos += 1;
        }
        if pos > start {
            if !aligned {
                anchors.push(Anchor::new(text.len(), start, true));
                aligned = true;
            }
            let folds = &ASCII_FOLDS[usize::from(mode.case)];
            text.extend(bytes[start..pos].iter().map(|&b| folds[usize::from(b)]));
            in_space = space;
        }
        let Some(&b) = bytes.get(pos) else {
            break;
        };
        if b.is_ascii() {
            // A second space in a row.
            aligned = false;
            pos += 1;
            continue;
        }
        let ch = original[pos..].chars().next().unwrap_or_default();
        let before = text.len();
        if ch.is_whitespace() {
            if !in_space {
                text.push(b' ');
            }
            in_space = true;
        } else {
            in_space = false;
            let mut buffer = [0; 4];
            fold_char(ch, mode, |folded| {
                text.extend_from_slice(folded.encode_utf8(&mut buffer).as_bytes())
            });
        }
        let len = ch.len_utf8();
        let emitted = text.len() - before;
        let same_length = emitted == len;
        if emitted > 0 && (!same_length || !aligned) {
            anchors.push(Anchor::new(before, pos, same_length));
        }
        aligned = same_length;
        pos += len;
    }
    Folded {
        // Only whole chars went in, so the result is valid UTF-8.
        text: String::from_utf8(text).unwrap_or_default(),
        anchors,
    }
}

/// What each ASCII byte folds to, keeping case (`[0]`) or not (`[1]`): whitespace
/// becomes a space. Other bytes map to themselves (and are never looked up).
const ASCII_FOLDS: [[u8; 256]; 2] = [ascii_folds(false), ascii_folds(true)];

const fn ascii_folds(case: bool) -> [u8; 256] {
    let mut folds = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        folds[b] = match byte {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => b' ',
            _ if case => byte.to_ascii_lowercase(),
            _ => byte,
        };
        b += 1;
    }
    folds
}

impl Anchor {
    fn new(folded: usize, original: usize, aligned: bool) -> Anchor {
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Anchor {
            folded: at(folded),
            original: at(original),
            aligned,
        }
    }
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
        assert!(folded.anchors.is_empty());
        assert!(!fold("two  spaces", FoldMode::FULL).anchors.is_empty());
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

    /// Every folded byte maps back to the char it came from, as a fold that records
    /// each byte's origin would say.
    #[test]
    fn maps_every_folded_byte_to_its_char() {
        let texts = [
            "Ünïcode  text\u{a0}\u{a0}with — dashes",
            "Лавров\u{2019}s trip to İstanbul,\n\n ΟΔΥΣΣΕΥΣ Straße",
            "lav\u{200c}rov\u{00ad}\u{00ad}x  \t y\u{3000}z 北京 e\u{301}",
            "plain ascii only",
            "",
        ];
        let modes = [
            FoldMode::FULL,
            FoldMode {
                case: false,
                accents: true,
            },
            FoldMode {
                case: true,
                accents: false,
            },
        ];
        for original in texts {
            for mode in modes {
                let mut expected = String::new();
                let mut origins = Vec::new();
                let mut in_space = false;
                for (pos, ch) in original.char_indices() {
                    if ch.is_whitespace() {
                        if !in_space {
                            expected.push(' ');
                            origins.push(pos);
                        }
                        in_space = true;
                        continue;
                    }
                    in_space = false;
                    fold_char(ch, mode, |c| {
                        expected.push(c);
                        origins.extend(std::iter::repeat_n(pos, c.len_utf8()));
                    });
                }
                let folded = fold(original, mode);
                assert_eq!(folded.text, expected, "{original:?} {mode:?}");
                for (at, &origin) in origins.iter().enumerate() {
                    assert_eq!(
                        folded.origin(original, at),
                        origin,
                        "{original:?} byte {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn maps_expanding_chars_to_the_whole_original_char() {
        // 'İ' lower-cases to two chars; a span over either maps to the whole of it.
        let folded = fold("İstanbul", FoldMode::FULL);
        assert_eq!(folded.text, "istanbul");
        assert_eq!(folded.original_span("İstanbul", 0, 1), (0, 'İ'.len_utf8()));
    }
}
