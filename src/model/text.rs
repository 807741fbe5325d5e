//! Text helpers every stage uses: whitespace collapsed, cuts on character boundaries,
//! hex digests.

use std::fmt;

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The largest character boundary of `text` at or before byte `i` (at most its length).
pub fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The words of `s` joined by single spaces: no leading, trailing or repeated
/// whitespace, no line breaks.
pub fn collapse_whitespace(s: &str) -> String {
    // One pass copying whole words, bytes at a time where the text is ASCII: every
    // item's text goes through here.
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut word_start = None;
    let mut i = 0;
    while i < bytes.len() {
        let (space, len) = match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => (true, 1),
            b if b.is_ascii() => (false, 1),
            _ => match s[i..].chars().next() {
                Some(c) => (c.is_whitespace(), c.len_utf8()),
                None => break,
            },
        };
        match (space, word_start) {
            (true, Some(start)) => {
                push_word(&mut out, &s[start..i]);
                word_start = None;
            }
            (false, None) => word_start = Some(i),
            _ => {}
        }
        i += len;
    }
    if let Some(start) = word_start {
        push_word(&mut out, &s[start..]);
    }
    out
}

fn push_word(out: &mut String, word: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
}
