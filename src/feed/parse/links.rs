//! Links as a reader would follow them: redirect wrappers unwrapped (Google Alerts'
//! `google.com/url?…&url=`, Facebook's `l.php?u=`, Bing News' `apiclick.aspx?url=`),
//! and FeedBurner's proxied links replaced by the item's `feedburner:origLink`. Only
//! the link shown, matched (`link:`) and compared for dedupe changes: an item's key
//! is derived before, so it stays what it was.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

/// The link `link` wraps, if it is a known redirect wrapper carrying an http(s) target.
pub fn unwrapped(link: &str) -> Option<String> {
    // Every wrapper's path holds `url` or `l.php`, and the URL parser adds no letters
    // to a path, only drops tabs and line breaks: most links need no parsing.
    let plain = memchr::memchr3(b'\t', b'\n', b'\r', link.as_bytes()).is_none();
    if plain && !link.contains("url") && !link.contains("l.php") {
        return None;
    }
    let url = url::Url::parse(link).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let param = match (host.as_str(), url.path()) {
        (h, "/url") if is_google(h) => ["url", "q"].as_slice(),
        ("l.facebook.com" | "lm.facebook.com", "/l.php") => &["u"],
        ("www.bing.com" | "bing.com", "/news/apiclick.aspx") => &["url"],
        _ => return None,
    };
    let target = param.iter().find_map(|name| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    })?;
    let parsed = url::Url::parse(&target).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// `google.com`, `www.google.com`, `www.google.co.uk`, …
fn is_google(host: &str) -> bool {
    let host = host.strip_prefix("www.").unwrap_or(host);
    host.starts_with("google.")
}

/// For each item of an RSS or Atom document that names its original link
/// (`feedburner:origLink`), its own link (the proxy) and that original. Empty for a
/// document without any (checked cheaply first) or one that cannot be read.
pub fn original_links(doc: &[u8]) -> HashMap<String, String> {
    let mut found = HashMap::new();
    if memchr::memmem::find(doc, b"origLink").is_some() {
        // A document that cannot be read keeps the links found before the error.
        let _ = read_original_links(doc, &mut found);
    }
    found
}

/// What an item said of its links, while it is read.
#[derive(Default)]
struct Entry {
    link: Option<String>,
    original: Option<String>,
}

/// Which of an item's elements is being read, and its text so far.
struct Reading {
    original: bool,
    text: String,
}

fn read_original_links(
    doc: &[u8],
    found: &mut HashMap<String, String>,
) -> Result<(), quick_xml::Error> {
    let mut reader = Reader::from_reader(doc);
    let local = |name: &str| name.rsplit(':').next().unwrap_or(name).to_owned();
    let href = |e: &quick_xml::events::BytesStart<'_>| {
        let rel = e.try_get_attribute("rel").ok().flatten();
        if rel.is_some_and(|r| r.value != "alternate") {
            return None;
        }
        let value = e.try_get_attribute("href").ok().flatten()?;
        let value = value.normalized_value(XmlVersion::Implicit1_0).ok()?;
        Some(value.trim().to_owned())
    };
    let mut entry: Option<Entry> = None;
    let mut reading: Option<Reading> = None;
    loop {
        match reader.read_event()? {
            Event::Start(e) => match (local(e.name().as_ref()).as_str(), &mut entry) {
                ("item" | "entry", _) => entry = Some(Entry::default()),
                (name @ ("link" | "origLink"), Some(current)) => {
                    if let Some(href) = href(&e) {
                        current.link.get_or_insert(href);
                    }
                    let original = name == "origLink";
                    reading = Some(Reading {
                        original,
                        text: String::new(),
                    });
                }
                _ => {}
            },
            Event::Empty(e) => {
                if let (Some(current), "link") = (&mut entry, local(e.name().as_ref()).as_str())
                    && let Some(href) = href(&e)
                {
                    current.link.get_or_insert(href);
                }
            }
            Event::Text(t) => push(&mut reading, t.as_ref()),
            Event::CData(t) => push(&mut reading, t.as_ref()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        _ => String::new(),
                    },
                };
                push(&mut reading, &resolved);
            }
            Event::End(e) => {
                let name = local(e.name().as_ref());
                if let (Some(read), Some(current)) = (reading.take(), entry.as_mut()) {
                    let text = read.text.trim().to_owned();
                    match read.original {
                        true => current.original = Some(text),
                        false if !text.is_empty() => {
                            current.link.get_or_insert(text);
                        }
                        false => {}
                    }
                }
                if matches!(name.as_str(), "item" | "entry")
                    && let Some(Entry {
                        link: Some(link),
                        original: Some(original),
                    }) = entry.take()
                {
                    found.insert(link, original);
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Adds `text` to the element being read, if any.
fn push(reading: &mut Option<Reading>, text: &str) {
    if let Some(read) = reading {
        read.text.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_wrappers_give_their_target() {
        let cases = [
            (
                "https://www.google.com/url?rct=j&sa=t&url=https://news.example.org/a%3Fid%3D1&ct=ga&cd=CAE&usg=AOv",
                Some("https://news.example.org/a?id=1"),
            ),
            (
                "https://www.google.co.uk/url?q=https://news.example.org/b&sa=U",
                Some("https://news.example.org/b"),
            ),
            (
                "https://l.facebook.com/l.php?u=https%3A%2F%2Fnews.example.org%2Fc&h=AT0",
                Some("https://news.example.org/c"),
            ),
            (
                "https://www.bing.com/news/apiclick.aspx?ref=FexRss&url=https%3a%2f%2fnews.example.org%2fd",
                Some("https://news.example.org/d"),
            ),
            // The URL parser drops line breaks and reads `\\` as `/`: still wrappers.
            (
                "https://www.google.com/u\nrl?q=https://news.example.org/e",
                Some("https://news.example.org/e"),
            ),
            (
                "https://www.google.com\\url?q=https://news.example.org/f",
                Some("https://news.example.org/f"),
            ),
            // Not a wrapper, or a target that is no web page.
            (
                "https://news.example.org/url?url=https://elsewhere.example.org/",
                None,
            ),
            ("https://www.google.com/url?url=javascript:alert(1)", None),
            ("https://www.google.com/search?q=lavrov", None),
            ("not a url", None),
        ];
        for (link, expected) in cases {
            assert_eq!(unwrapped(link).as_deref(), expected, "{link}");
        }
    }

    #[test]
    fn feedburner_items_name_their_original_links() {
        let rss = br#"<rss xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel>
            <item><title>a</title><link>http://feedproxy.google.com/~r/x/~3/a/</link>
              <feedburner:origLink>https://news.example.org/a</feedburner:origLink></item>
            <item><title>b</title><link>https://news.example.org/b</link></item>
            </channel></rss>"#;
        let atom = br#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
            <entry><id>1</id><link rel="alternate" href="http://feedproxy.google.com/~r/y/~3/c/"/>
              <feedburner:origLink>https://news.example.org/c</feedburner:origLink></entry></feed>"#;
        assert_eq!(
            original_links(rss),
            HashMap::from([(
                "http://feedproxy.google.com/~r/x/~3/a/".to_owned(),
                "https://news.example.org/a".to_owned()
            )])
        );
        assert_eq!(
            original_links(atom)
                .get("http://feedproxy.google.com/~r/y/~3/c/")
                .map(String::as_str),
            Some("https://news.example.org/c")
        );
        assert!(
            original_links(b"<rss><channel><item><link>x</link></item></channel></rss>").is_empty()
        );
    }
}
