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
    // Every item's text goes through here, and most of it is already words apart by
    // one space: such runs are copied whole, and the bytes between looked at one by
    // one without decoding characters (see `space_len`).
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    loop {
        while i < bytes.len() && space_len(s, i) > 0 {
            i += space_len(s, i);
        }
        if i == bytes.len() {
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let run = i;
        while i < bytes.len() {
            if space_len(s, i) == 0 {
                i += 1;
            } else if bytes[i] == b' ' && i + 1 < bytes.len() && space_len(s, i + 1) == 0 {
                i += 2;
            } else {
                break;
            }
        }
        // `i` is at whitespace or the end, so on a character boundary.
        out.push_str(&s[run..i]);
    }
}

/// The length in bytes of the whitespace character starting at byte `i` of `s`, or 0
/// when there is none there. Any byte may be asked about: a byte inside a character is
/// never the start of whitespace, and non-ASCII whitespace (U+0085, U+00A0, U+1680,
/// U+2000–U+3000) starts only with one of four bytes, so only those are decoded.
fn space_len(s: &str, i: usize) -> usize {
    match s.as_bytes()[i] {
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => 1,
        0xc2 | 0xe1 | 0xe2 | 0xe3 => s[i..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
            .map_or(0, char::len_utf8),
        _ => 0,
    }
}
