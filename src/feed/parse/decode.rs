//! Feed bytes to UTF-8 before anything parses them, the way feedparser and Miniflux
//! read the feeds people actually publish: a wrong or missing charset label, or one bad
//! byte, costs a character and never the feed.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// The document as UTF-8, its XML declaration (if any) saying so.
///
/// A byte-order mark (or UTF-16 without one) wins. Else bytes that are valid UTF-8 are
/// UTF-8, whatever the document or the server says: UTF-8 under a prolog naming
/// another charset is a common mistake, and legacy text with non-ASCII letters is
/// practically never valid UTF-8. Else the charset of the XML declaration, else the
/// server's (`http_charset`). With neither, or with UTF-8 named, bytes that are mostly
/// UTF-8 are read as UTF-8 with U+FFFD for each bad sequence, others as windows-1252.
/// In a JSON document, an escaped lone surrogate (`\ud800`) becomes U+FFFD.
pub fn to_utf8<'a>(bytes: &'a [u8], http_charset: Option<&str>) -> Cow<'a, [u8]> {
    let mut text = decode(bytes, http_charset);
    if let Some(fixed) = with_utf8_declaration(&text) {
        text = Cow::Owned(fixed);
    }
    if text.trim_start().starts_with('{')
        && let Some(fixed) = without_lone_surrogates(&text)
    {
        text = Cow::Owned(fixed);
    }
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

pub(super) fn decode<'a>(bytes: &'a [u8], http_charset: Option<&str>) -> Cow<'a, str> {
    let utf16 = match Encoding::for_bom(bytes) {
        Some((enc, _)) => Some(enc),
        None if bytes.starts_with(b"\0<\0?") => Some(UTF_16BE),
        None if bytes.starts_with(b"<\0?\0") => Some(UTF_16LE),
        None => None,
    };
    if let Some(enc) = utf16 {
        // Honours the BOM, and drops it.
        return enc.decode(bytes).0;
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    // A label of UTF-16 on bytes that are not UTF-16 means UTF-8 (as in HTML).
    let named = declared_encoding(bytes)
        .or_else(|| http_charset.and_then(|c| Encoding::for_label(c.as_bytes())))
        .map(Encoding::output_encoding);
    let encoding = match named {
        Some(enc) if enc != UTF_8 => enc,
        _ if mostly_utf8(bytes) => UTF_8,
        _ => WINDOWS_1252,
    };
    encoding.decode_without_bom_handling(bytes).0
}

/// Whether the bytes hold at least as many UTF-8 characters beyond ASCII as invalid
/// sequences: a stray bad byte in UTF-8 text, not legacy text.
fn mostly_utf8(bytes: &[u8]) -> bool {
    let (mut good, mut bad) = (0usize, 0usize);
    for chunk in bytes.utf8_chunks() {
        good += chunk.valid().bytes().filter(|b| *b >= 0xC0).count();
        bad += usize::from(!chunk.invalid().is_empty());
    }
    good >= bad
}

/// The XML declaration, `<?xml … ?>`, if the document starts with one.
fn declaration(bytes: &[u8]) -> Option<&[u8]> {
    let head = &bytes[..bytes.len().min(256)];
    let rest = head.strip_prefix(b"<?xml")?;
    let end = rest.windows(2).position(|w| w == b"?>")?;
    Some(&head[.."<?xml".len() + end])
}

/// The encoding named in the XML declaration, if it names one encoding_rs knows.
fn declared_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let label = super::attribute(declaration(bytes)?, b"encoding")?;
    Encoding::for_label(label)
}

/// `text` with the encoding its XML declaration names replaced by utf-8, if it names
/// another.
fn with_utf8_declaration(text: &str) -> Option<String> {
    let label = super::attribute(declaration(text.as_bytes())?, b"encoding")?;
    if label.eq_ignore_ascii_case(b"utf-8") {
        return None;
    }
    // The label is borrowed from `text`; its offset says where to splice.
    let start = label.as_ptr() as usize - text.as_ptr() as usize;
    let end = start + label.len();
    Some(format!("{}utf-8{}", &text[..start], &text[end..]))
}

/// `json` with every `\u` escape (four hex digits) of a lone UTF-16 surrogate replaced
/// by `\ufffd` (serde_json refuses the whole document over one), if it has any.
fn without_lone_surrogates(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let unit_at = |at: usize| -> Option<u16> {
        let hex = bytes.get(at..at + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let (mut fixed, mut copied, mut at) = (None::<String>, 0, 0);
    while let Some(found) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        at += found;
        let Some(unit) = unit_at(at) else {
            // Any other escape is two characters, `\\` included.
            at += 2;
            continue;
        };
        let lone = match unit {
            0xD800..=0xDBFF => match unit_at(at + 6) {
                Some(0xDC00..=0xDFFF) => {
                    at += 12;
                    continue;
                }
                _ => true,
            },
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if lone {
            let out = fixed.get_or_insert_with(|| String::with_capacity(json.len()));
            out.push_str(&json[copied..at]);
            out.push_str("\\ufffd");
            copied = at + 6;
        }
        at += 6;
    }
    fixed.map(|mut out| {
        out.push_str(&json[copied..]);
        out
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::without_lone_surrogates;

    proptest! {
        /// Valid JSON is never changed, and no input makes the scan panic (a trailing
        /// backslash, a cut escape).
        #[test]
        fn json_without_lone_surrogates_is_left_alone(text in any::<String>()) {
            let json = serde_json::to_string(&text).expect("a string serialises");
            prop_assert_eq!(without_lone_surrogates(&json), None);
            let _ = without_lone_surrogates(&text);
        }
    }

    #[test]
    fn escapes_cut_at_the_end_do_not_stop_the_scan() {
        for json in ["\\", "\"\\u", "\"\\ud8", "\"\\ud800\\"] {
            assert_eq!(
                without_lone_surrogates(json).is_some(),
                json.ends_with("0\\")
            );
        }
        assert_eq!(
            without_lone_surrogates("\"\\ud800\\udc0").as_deref(),
            Some("\"\\ufffd\\udc0")
        );
    }
}
