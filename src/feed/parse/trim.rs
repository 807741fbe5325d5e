//! Keeping the first items of a document before feed-rs sees it: feed-rs builds a
//! large model per entry (a 16 MB JSON Feed of 1,000,000 tiny items took 1.1 GB), so a
//! cap on items must cut the bytes, not the parsed list.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

/// `doc` with only its first `max` items (RSS `item`, Atom `entry`, JSON Feed
/// `items`), and how many were dropped. `doc` is UTF-8 (the parser decodes first). A
/// document that cannot be read that far (not well-formed) is returned whole: the
/// parser then says what is wrong with it.
pub fn first_items(doc: &[u8], max: usize) -> (Cow<'_, [u8]>, usize) {
    let trimmed = match doc.iter().find(|b| !b.is_ascii_whitespace()) {
        // No array holds more elements than the document has commas, plus one.
        Some(b'{') if memchr::memchr_iter(b',', doc).count() >= max => json(doc, max),
        Some(b'{') => None,
        Some(_) if item_tags(doc) > max => xml(doc, max),
        _ => None,
    };
    match trimmed {
        Some((kept, dropped)) if dropped > 0 => (Cow::Owned(kept), dropped),
        _ => (Cow::Borrowed(doc), 0),
    }
}

/// At least as many as the item start tags of an XML document: the places where
/// `item` or `entry` follows `<` or a prefix's `:`. Counting them is a fast scan, and
/// most feeds have far fewer than the cap, so they need no reading.
fn item_tags(doc: &[u8]) -> usize {
    let at_tag = |name: &'static [u8]| {
        memchr::memmem::find_iter(doc, name)
            .filter(|&at| at > 0 && matches!(doc[at - 1], b'<' | b':'))
            .count()
    };
    at_tag(b"item") + at_tag(b"entry")
}

/// The items past the first `max`, cut out from the start of the first of them to the
/// end of the last item; whatever follows the items is kept.
fn xml(doc: &[u8], max: usize) -> Option<(Vec<u8>, usize)> {
    let mut reader = Reader::from_reader(doc);
    let (mut items, mut depth, mut item_depth) = (0usize, 0usize, None);
    let (mut cut_from, mut cut_to) = (None, 0u64);
    loop {
        let before = reader.buffer_position();
        let event = reader.read_event().ok()?;
        let is_item = |name: &str| matches!(name.rsplit(':').next(), Some("item" | "entry"));
        match event {
            Event::Start(e) => {
                depth += 1;
                if item_depth.is_none() && is_item(e.name().as_ref()) {
                    items += 1;
                    item_depth = Some(depth);
                    if items == max + 1 {
                        cut_from = Some(before);
                    }
                }
            }
            Event::Empty(e) if item_depth.is_none() && is_item(e.name().as_ref()) => {
                items += 1;
                if items == max + 1 {
                    cut_from = Some(before);
                }
                cut_to = reader.buffer_position();
            }
            Event::End(_) => {
                if item_depth == Some(depth) {
                    item_depth = None;
                    cut_to = reader.buffer_position();
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let from = usize::try_from(cut_from?).ok()?;
    let to = usize::try_from(cut_to).ok()?;
    let mut kept = Vec::with_capacity(doc.len() - (to - from));
    kept.extend_from_slice(doc.get(..from)?);
    kept.extend_from_slice(doc.get(to..)?);
    Some((kept, items - max))
}

/// The JSON Feed with its `items` array cut to the first `max`.
fn json(doc: &[u8], max: usize) -> Option<(Vec<u8>, usize)> {
    use serde_json::value::RawValue;
    let mut top: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    let fields: std::collections::BTreeMap<&str, &RawValue> = serde_json::from_slice(doc).ok()?;
    let items: Vec<&RawValue> = serde_json::from_str(fields.get("items")?.get()).ok()?;
    if items.len() <= max {
        return None;
    }
    for (name, value) in &fields {
        if *name != "items" {
            top.insert((*name).to_owned(), serde_json::from_str(value.get()).ok()?);
        }
    }
    let kept: Vec<serde_json::Value> = items[..max]
        .iter()
        .map(|item| serde_json::from_str(item.get()))
        .collect::<Result<_, _>>()
        .ok()?;
    top.insert("items".into(), serde_json::Value::Array(kept));
    Some((serde_json::to_vec(&top).ok()?, items.len() - max))
}
