//! Well-formed rewrites of the ill-formed XML that feeds publish, where the intent is
//! clear, as feedparser's loose mode and Miniflux do, so that feed-rs can read them: a
//! bare `&` (`AT&T`, `?a=1&b=2`), an HTML entity that XML does not define (`&nbsp;`),
//! `&#X41;`, an end tag without a start, an element left open inside another, and
//! empty text elements feed-rs refuses (`<media:credit><![CDATA[]]>…`). Also
//! Atom 0.3, whose names and content types are rewritten to Atom 1.0's.

use std::borrow::Cow;

use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::{Reader, Writer};

const ATOM_03: &str = "http://purl.org/atom/ns#";
const ATOM_10: &str = "http://www.w3.org/2005/Atom";

/// `doc` rewritten to be well-formed: references fixed, tags balanced, empty text
/// elements dropped. `None` when nothing could be read at all.
pub fn well_formed(doc: &[u8]) -> Option<Vec<u8>> {
    rewrite(&fixed_references(doc), Dialect::Rss)
}

/// An Atom 0.3 document as Atom 1.0 (same meaning, other names), else `doc` as it is.
pub fn atom_03_as_10(doc: &[u8]) -> Cow<'_, [u8]> {
    let head = &doc[..doc.len().min(4096)];
    if !head.windows(ATOM_03.len()).any(|w| w == ATOM_03.as_bytes()) {
        return Cow::Borrowed(doc);
    }
    match rewrite(doc, Dialect::Atom03) {
        Some(rewritten) => Cow::Owned(rewritten),
        None => Cow::Borrowed(doc),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Rss,
    Atom03,
}

/// One pass of quick-xml over `doc`, writing what it reads: end tags without a start
/// are dropped, the elements left open inside one that ends are closed, and an element
/// with no content and no attribute but `type`/`mode`/`xml:…` is dropped (feed-rs
/// wants text in those). `None` for a document cut short.
fn rewrite(doc: &[u8], dialect: Dialect) -> Option<Vec<u8>> {
    let mut reader = Reader::from_reader(doc);
    reader.config_mut().check_end_names = false;
    reader.config_mut().allow_unmatched_ends = true;
    let mut writer = Writer::new(Vec::with_capacity(doc.len() + 64));
    let mut open: Vec<String> = Vec::new();
    // Where the innermost element started in the output, while it is empty and may go.
    let mut droppable_from: Option<usize> = None;
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) => break,
            // A document cut short (or unreadable past here) is not guessed at: its
            // last item may be cut too, and the next poll may bring all of it.
            Err(_) => return None,
            Ok(event) => event,
        };
        let written = match event {
            Event::Start(start) => {
                let start = renamed_start(start, dialect);
                let at = writer.get_ref().len();
                open.push(start.name().as_ref().to_owned());
                droppable_from = is_droppable(&start).then_some(at);
                writer.write_event(Event::Start(start))
            }
            Event::End(end) => {
                let end_name = end.name();
                let name = renamed(end_name.as_ref(), dialect);
                let Some(depth) = open.iter().rposition(|n| *n == name) else {
                    continue;
                };
                if let (Some(at), true) = (droppable_from.take(), depth + 1 == open.len()) {
                    writer.get_mut().truncate(at);
                    open.pop();
                    continue;
                }
                close(&mut writer, &mut open, depth)
            }
            Event::Text(ref text) if text.trim().is_empty() => writer.write_event(event),
            Event::CData(ref data) if data.is_empty() => writer.write_event(event),
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {
                writer.write_event(event)
            }
            other => {
                droppable_from = None;
                writer.write_event(other)
            }
        };
        written.ok()?;
    }
    // The same for a root element never closed.
    if !open.is_empty() {
        return None;
    }
    let out = writer.into_inner();
    (!out.is_empty()).then_some(out)
}

/// Writes the end tags of `open[depth..]`, innermost first, and forgets them.
fn close(
    writer: &mut Writer<Vec<u8>>,
    open: &mut Vec<String>,
    depth: usize,
) -> std::io::Result<()> {
    for name in open.drain(depth..).rev() {
        writer.write_event(Event::End(BytesEnd::new(name)))?;
    }
    Ok(())
}

/// Whether an element's attributes say nothing but how its text is typed.
fn is_droppable(start: &BytesStart<'_>) -> bool {
    start.attributes().flatten().all(|a| {
        let key = a.key.as_ref();
        key == "type" || key == "mode" || key.starts_with("xml:")
    })
}

/// Atom 0.3's element names for what Atom 1.0 calls otherwise.
fn renamed(name: &str, dialect: Dialect) -> &str {
    if dialect != Dialect::Atom03 {
        return name;
    }
    match name {
        "issued" => "published",
        "modified" => "updated",
        "tagline" => "subtitle",
        "copyright" => "rights",
        other => other,
    }
}

/// A start tag with a content type given as a MIME type (Atom 0.3's way, and a common
/// mistake in Atom 1.0 text) as Atom 1.0's `text`/`html`/`xhtml`, and in Atom 0.3 its
/// name and namespace rewritten.
fn renamed_start(start: BytesStart<'_>, dialect: Dialect) -> BytesStart<'_> {
    let name = start.name();
    let mut out = BytesStart::new(renamed(name.as_ref(), dialect).to_owned());
    for attr in start.attributes().flatten() {
        let key = attr.key.as_ref();
        let value = match (key, attr.value.as_ref()) {
            (key, ATOM_03) if key == "xmlns" || key.starts_with("xmlns:") => ATOM_10,
            ("type", value) if name.as_ref() == "link" => value,
            ("type", "text/plain") => "text",
            ("type", "application/xhtml+xml") => "xhtml",
            ("type", "text/html") => "html",
            (_, value) => value,
        };
        out.push_attribute((key, value));
    }
    out
}

/// `doc` with every `&` that does not start a reference XML understands made into one:
/// `&amp;` for a bare `&`, a numeric reference for an HTML entity (`&nbsp;` →
/// `&#160;`), `&#x` for `&#X`. CDATA sections and comments are left alone.
fn fixed_references(doc: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut copied, mut at) = (0, 0);
    while let Some(found) = doc
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'&' || b == b'<'))
    {
        at += found;
        if doc[at] == b'<' {
            at = skip_verbatim(doc, at);
            continue;
        }
        let replacement = reference_fix(&doc[at..]);
        if let Some((len, replacement)) = replacement {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(doc.len() + 64));
            buf.extend_from_slice(&doc[copied..at]);
            buf.extend_from_slice(&replacement);
            copied = at + len;
            at += len;
        } else {
            at += 1;
        }
    }
    match out {
        Some(mut buf) => {
            buf.extend_from_slice(&doc[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(doc),
    }
}

/// Past a CDATA section or comment starting at `at` (else just past the `<`).
fn skip_verbatim(doc: &[u8], at: usize) -> usize {
    let rest = &doc[at..];
    let end = if rest.starts_with(b"<![CDATA[") {
        b"]]>".as_slice()
    } else if rest.starts_with(b"<!--") {
        b"-->".as_slice()
    } else {
        return at + 1;
    };
    rest.windows(end.len())
        .position(|w| w == end)
        .map_or(doc.len(), |p| at + p + end.len())
}

/// For text starting with `&`: how many bytes to replace and with what, or `None`
/// when it is a reference XML understands.
fn reference_fix(text: &[u8]) -> Option<(usize, Vec<u8>)> {
    const LONGEST: usize = 40;
    let name_len = text[1..]
        .iter()
        .take(LONGEST)
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'#'))
        .unwrap_or(text.len().min(LONGEST + 1) - 1);
    let name = &text[1..1 + name_len];
    if text.get(1 + name_len) != Some(&b';') || name.is_empty() {
        return Some((1, b"&amp;".to_vec()));
    }
    let is_hex = |digits: &[u8]| !digits.is_empty() && digits.iter().all(u8::is_ascii_hexdigit);
    let is_decimal = |digits: &[u8]| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    let number = match name {
        [b'#', b'x' | b'X', digits @ ..] if is_hex(digits) => Some((digits, 16)),
        [b'#', digits @ ..] if is_decimal(digits) => Some((digits, 10)),
        _ => None,
    };
    if let Some((digits, radix)) = number {
        let allowed = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| u32::from_str_radix(d, radix).ok())
            .and_then(char::from_u32)
            .is_some_and(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'));
        return match (allowed, name[1]) {
            (true, b'X') => Some((3, b"&#x".to_vec())),
            (true, _) => None,
            (false, _) => Some((name_len + 2, b"&#xFFFD;".to_vec())),
        };
    }
    match name {
        b"amp" | b"lt" | b"gt" | b"quot" | b"apos" => None,
        _ => {
            let entity = std::str::from_utf8(&text[..name_len + 2]).ok()?;
            let decoded = html_escape::decode_html_entities(entity);
            if decoded == entity {
                return Some((1, b"&amp;".to_vec()));
            }
            let numeric: String = decoded
                .chars()
                .map(|c| format!("&#{};", u32::from(c)))
                .collect();
            Some((name_len + 2, numeric.into_bytes()))
        }
    }
}
