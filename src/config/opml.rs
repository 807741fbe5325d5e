//! OPML, the feed list format readers (Feedly, Miniflux, NetNewsWire…) import and
//! export: reading subscriptions into `[[feeds]]` entries, appending them to a config
//! file without touching its comments or layout, and writing the config's feeds out.

use std::collections::HashSet;

use quick_xml::events::{BytesStart, Event};

use super::Config;
use crate::model::FeedSource;
use crate::model::collapse_whitespace;

/// One subscription of an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The title (or text) the reader showed.
    pub title: String,
    pub url: String,
    /// The folder it was in, if any.
    pub category: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("not OPML: {0}")]
    Xml(String),
    #[error("no subscriptions (no outline with an xmlUrl)")]
    Empty,
    #[error("the config file is not valid TOML: {0}")]
    Toml(String),
}

/// Every outline with an `xmlUrl`, in document order, each with the title of the
/// outline it sits in (a reader's folder).
pub fn parse(text: &str) -> Result<Vec<Subscription>, OpmlError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut found = Vec::new();
    let mut seen_opml = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| OpmlError::Xml(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "opml" => {
                seen_opml = true;
            }
            Event::Start(ref e) if e.local_name().as_ref() == "outline" => {
                let outline = Outline::read(e)?;
                // An outline with children is a folder, unless it is itself a feed.
                if let Some(sub) = outline.subscription(&folders) {
                    found.push(sub);
                }
                folders.push(outline.title);
            }
            Event::Empty(ref e) if e.local_name().as_ref() == "outline" => {
                if let Some(sub) = Outline::read(e)?.subscription(&folders) {
                    found.push(sub);
                }
            }
            Event::End(e) if e.local_name().as_ref() == "outline" => {
                folders.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_opml {
        return Err(OpmlError::Xml("no <opml> root element".into()));
    }
    if found.is_empty() {
        return Err(OpmlError::Empty);
    }
    Ok(found)
}

struct Outline {
    title: Option<String>,
    url: Option<String>,
}

impl Outline {
    fn read(e: &BytesStart<'_>) -> Result<Outline, OpmlError> {
        let attribute = |name: &str| -> Result<Option<String>, OpmlError> {
            let Some(attr) = e
                .try_get_attribute(name)
                .map_err(|e| OpmlError::Xml(e.to_string()))?
            else {
                return Ok(None);
            };
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| OpmlError::Xml(e.to_string()))?;
            let value = value.trim();
            Ok((!value.is_empty()).then(|| value.to_owned()))
        };
        Ok(Outline {
            title: attribute("title")?.or(attribute("text")?),
            url: attribute("xmlUrl")?,
        })
    }

    fn subscription(&self, folders: &[Option<String>]) -> Option<Subscription> {
        let url = self.url.clone()?;
        Some(Subscription {
            title: self.title.clone().unwrap_or_else(|| url.clone()),
            url,
            category: folders.iter().rev().find_map(Clone::clone),
        })
    }
}

/// A feed name from a title: lower case letters and digits joined by hyphens
/// ("Le Monde — International" → `le-monde-international`), made unique against
/// `taken` (which it joins).
pub fn feed_name(title: &str, taken: &mut HashSet<String>) -> String {
    let mut base = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            base.push(c);
        } else if !base.ends_with('-') && !base.is_empty() {
            base.push('-');
        }
    }
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "feed" } else { base };
    let mut name = base.to_owned();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// What [`append_feeds`] made.
#[derive(Debug)]
pub struct Appended {
    /// The whole config with the new feeds.
    pub config: String,
    /// Only the new `[[feeds]]` entries.
    pub entries: String,
    /// The names given to the new feeds.
    pub names: Vec<String>,
}

/// Adds a `[[feeds]]` entry (after the existing ones) for each subscription whose
/// URL is not already in the config text, keeping everything else of the file as it
/// was.
pub fn append_feeds(
    config_text: &str,
    subscriptions: &[Subscription],
) -> Result<Appended, OpmlError> {
    let mut doc: toml_edit::DocumentMut = config_text
        .parse()
        .map_err(|e: toml_edit::TomlError| OpmlError::Toml(e.to_string()))?;
    let existing = doc
        .get("feeds")
        .and_then(|f| f.as_array_of_tables())
        .map(|feeds| {
            feeds
                .iter()
                .map(|t| {
                    let get = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or_default();
                    (get("name").to_owned(), get("url").to_owned())
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut taken: HashSet<String> = existing.iter().map(|(n, _)| n.clone()).collect();
    let mut urls: HashSet<String> = existing.into_iter().map(|(_, u)| u).collect();
    let feeds = doc
        .entry("feeds")
        .or_insert(toml_edit::Item::ArrayOfTables(
            toml_edit::ArrayOfTables::new(),
        ))
        .as_array_of_tables_mut()
        .ok_or_else(|| OpmlError::Toml("`feeds` is not a list of [[feeds]] tables".into()))?;
    let mut added = Vec::new();
    let mut entries = toml_edit::ArrayOfTables::new();
    for sub in subscriptions {
        if !urls.insert(sub.url.clone()) {
            continue;
        }
        let name = feed_name(&sub.title, &mut taken);
        let mut table = toml_edit::Table::new();
        table.insert("name", toml_edit::value(name.clone()));
        table.insert("url", toml_edit::value(sub.url.clone()));
        let mut note = format!("\n# {}", collapse_whitespace(&sub.title));
        if let Some(category) = &sub.category {
            note.push_str(&format!(" (folder: {})", collapse_whitespace(category)));
        }
        note.push_str(", imported from OPML\n");
        table.decor_mut().set_prefix(note);
        feeds.push(table.clone());
        entries.push(table);
        added.push(name);
    }
    let mut only_new = toml_edit::DocumentMut::new();
    only_new.insert("feeds", toml_edit::Item::ArrayOfTables(entries));
    Ok(Appended {
        config: doc.to_string(),
        entries: only_new.to_string().trim_start().to_owned(),
        names: added,
    })
}

/// The config's web feeds as an OPML 2.0 document (file feeds have no URL a reader
/// could use, and are left out).
pub fn export(config: &Config) -> String {
    use quick_xml::escape::escape;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n  <head>\n    <title>newshound feeds</title>\n  </head>\n  <body>\n",
    );
    for feed in &config.feeds {
        if let FeedSource::Http(url) = &feed.source {
            out.push_str(&format!(
                "    <outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{url}\"/>\n",
                name = escape(feed.id.0.as_str()),
                url = escape(url.as_str()),
            ));
        }
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="World" title="World">
      <outline type="rss" text="Le Monde &amp; International" title="Le Monde &amp; International"
               xmlUrl="https://www.lemonde.fr/international/rss_full.xml" htmlUrl="https://www.lemonde.fr/"/>
      <outline type="rss" text="Meduza" xmlUrl="https://meduza.io/rss/en/all"/>
    </outline>
    <outline type="rss" text="No folder" xmlUrl="https://example.org/feed"/>
    <outline text="Empty folder"></outline>
  </body>
</opml>"#;

    #[test]
    fn outlines_with_xml_urls_are_read_with_their_folder() {
        let subs = parse(READER).expect("parses");
        assert_eq!(
            subs,
            [
                Subscription {
                    title: "Le Monde & International".into(),
                    url: "https://www.lemonde.fr/international/rss_full.xml".into(),
                    category: Some("World".into()),
                },
                Subscription {
                    title: "Meduza".into(),
                    url: "https://meduza.io/rss/en/all".into(),
                    category: Some("World".into()),
                },
                Subscription {
                    title: "No folder".into(),
                    url: "https://example.org/feed".into(),
                    category: None,
                },
            ]
        );
    }

    #[test]
    fn not_opml_or_no_feeds_is_an_error() {
        assert!(matches!(parse("<rss/>"), Err(OpmlError::Xml(_))));
        assert!(matches!(
            parse("<opml><body><outline text=\"x\"/></body></opml>"),
            Err(OpmlError::Empty)
        ));
        assert!(matches!(parse("<opml><body"), Err(OpmlError::Xml(_))));
    }

    #[test]
    fn names_are_slugs_made_unique() {
        let mut taken = HashSet::from(["meduza".to_string()]);
        assert_eq!(feed_name("Meduza", &mut taken), "meduza-2");
        assert_eq!(feed_name("Meduza", &mut taken), "meduza-3");
        assert_eq!(
            feed_name("Le Monde — International!", &mut taken),
            "le-monde-international"
        );
        assert_eq!(feed_name("Лента.ру", &mut taken), "лента-ру");
        assert_eq!(feed_name("???", &mut taken), "feed");
    }

    #[test]
    fn appending_keeps_comments_and_skips_known_urls() {
        let config = "# my feeds\n[daemon]\npoll_interval = \"5m\" # keep\n\n\
                      [[feeds]]\nname = \"meduza\"\nurl = \"https://meduza.io/rss/en/all\"\n";
        let appended = append_feeds(config, &parse(READER).expect("parses")).expect("appends");
        assert_eq!(appended.names, ["le-monde-international", "no-folder"]);
        let text = appended.config;
        assert!(text.starts_with(config), "{text}");
        assert!(appended.entries.starts_with("# Le Monde & International"));
        assert_eq!(appended.entries.matches("[[feeds]]").count(), 2);
        assert!(text.contains(
            "# Le Monde & International (folder: World), imported from OPML\n[[feeds]]\n\
             name = \"le-monde-international\"\nurl = \"https://www.lemonde.fr/international/rss_full.xml\"\n"
        ), "{text}");
    }
}
