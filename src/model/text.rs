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
    // one space: such runs are copied whole, their bytes classed by a table, and only
    // the four bytes that may start non-ASCII whitespace decoded (see `BYTE_CLASS`).
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    loop {
        while let Some(len) = space_at(s, i) {
            i += len;
        }
        if i == bytes.len() {
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let run = i;
        while let Some(&b) = bytes.get(i) {
            let next_is_word = || {
                bytes
                    .get(i + 1)
                    .is_some_and(|&n| space_at_byte(s, i + 1, n) == 0)
            };
            match BYTE_CLASS[usize::from(b)] {
                WORD => i += 1,
                SPACE if next_is_word() => i += 2,
                MAYBE_SPACE if space_at_byte(s, i, b) == 0 => i += 1,
                _ => break,
            }
        }
        // `i` is at whitespace or the end, so on a character boundary.
        out.push_str(&s[run..i]);
    }
}

/// Bytes that are part of a word.
const WORD: u8 = 0;
/// An ASCII space.
const SPACE: u8 = 1;
/// Other ASCII whitespace: tab, line feed, vertical tab, form feed, carriage return.
const OTHER_SPACE: u8 = 2;
/// The first byte of U+0085 and U+00A0 (`C2`), U+1680 (`E1`), U+2000–U+205F (`E2`)
/// and U+3000 (`E3`): whitespace or not, depending on the bytes after it. No other
/// byte starts whitespace, and a byte inside a character never does.
const MAYBE_SPACE: u8 = 3;

/// [`WORD`], [`SPACE`], [`OTHER_SPACE`] or [`MAYBE_SPACE`], by byte.
static BYTE_CLASS: [u8; 256] = {
    let mut class = [WORD; 256];
    class[b' ' as usize] = SPACE;
    let mut b = 0x09;
    while b <= 0x0d {
        class[b] = OTHER_SPACE;
        b += 1;
    }
    class[0xc2] = MAYBE_SPACE;
    class[0xe1] = MAYBE_SPACE;
    class[0xe2] = MAYBE_SPACE;
    class[0xe3] = MAYBE_SPACE;
    class
};

/// The length in bytes of the whitespace character at byte `i` of `s`, if there is one
/// (`None` at the end too). Any byte may be asked about.
fn space_at(s: &str, i: usize) -> Option<usize> {
    let &b = s.as_bytes().get(i)?;
    Some(space_at_byte(s, i, b)).filter(|&len| len > 0)
}

/// [`space_at`] for the byte `b` at `i`, 0 for none.
#[inline]
fn space_at_byte(s: &str, i: usize, b: u8) -> usize {
    match BYTE_CLASS[usize::from(b)] {
        WORD => 0,
        SPACE | OTHER_SPACE => 1,
        _ => s[i..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
            .map_or(0, char::len_utf8),
    }
}
