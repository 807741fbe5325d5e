//! The `atom` channel: the latest matches as an Atom feed file, for a feed reader to
//! subscribe to. Each alert is an entry whose id is the alert's own (stable across
//! redeliveries); the newest `entries` are kept, in a JSON file beside the feed, and
//! both files are replaced whole (written aside, synced, renamed).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Key, Kind, Outgoing, Settings};
use crate::model::{Alert, rfc3339};
use crate::notify::DeliveryError;
use crate::notify::message::webhook_id;

/// The feed holds this many entries unless `entries` says otherwise.
const DEFAULT_ENTRIES: usize = 50;
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    pub path: PathBuf,
    pub entries: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    path: PathBuf,
    /// How many of the latest matches the feed holds.
    entries: Option<usize>,
}

impl Kind for Atom {
    const NAME: &'static str = "atom";
    /// One writer at a time: each delivery rewrites the whole file.
    const IN_FLIGHT: usize = 1;
    const PACED: bool = false;
    const CHANGED: &'static str = "path or entries changed";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Atom, S::Error> {
        let entries = raw.entries.unwrap_or(DEFAULT_ENTRIES);
        if !(1..=MAX_ENTRIES).contains(&entries) {
            return Err(settings.invalid(
                &[Key::Name("entries")],
                format!("must be from 1 to {MAX_ENTRIES}"),
            ));
        }
        Ok(Atom {
            path: settings.path(&raw.path),
            entries,
        })
    }

    fn describe(&self) -> String {
        format!("{} (the latest {})", self.path.display(), self.entries)
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        deliver(
            &self.path,
            self.entries,
            out.channel,
            out.alerts,
            chrono::Utc::now(),
        )
        .map_err(|e| DeliveryError::retry(format!("atom {}: {e}", self.path.display())))
    }
}

/// One entry, as kept between deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    id: String,
    title: String,
    link: Option<String>,
    updated: String,
    feed: String,
    rules: Vec<String>,
    terms: Vec<String>,
    summary: String,
}

/// Adds `alerts` to the feed at `path` (an entry already there is left as it was),
/// keeps the newest `entries`, and writes the feed anew. Says how many it holds.
pub fn deliver(
    path: &Path,
    entries: usize,
    channel: &str,
    alerts: &[Alert],
    now: DateTime<Utc>,
) -> std::io::Result<String> {
    let kept_path = kept(path);
    let mut kept: Vec<Entry> = match fs::read(&kept_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    for alert in alerts {
        let id = format!(
            "urn:newshound:{}",
            webhook_id(std::slice::from_ref(alert), channel)
        );
        if kept.iter().any(|e| e.id == id) {
            continue;
        }
        kept.insert(
            0,
            Entry {
                id,
                title: alert.title.clone(),
                link: crate::render::safe_link(alert.link.as_deref()),
                updated: rfc3339(alert.published.unwrap_or(now)),
                feed: alert.feed.0.clone(),
                rules: alert.rules.clone(),
                terms: alert.terms.clone(),
                summary: match alert.also_line() {
                    Some(also) => format!("{}\n{also}", alert.snippet.text),
                    None => alert.snippet.text.clone(),
                },
            },
        );
    }
    kept.truncate(entries);
    let json = serde_json::to_vec(&kept).map_err(std::io::Error::other)?;
    replace(&kept_path, &json)?;
    replace(path, feed(channel, &kept, now).as_bytes())?;
    Ok(format!("{} entries in {}", kept.len(), path.display()))
}

/// Where the entries are kept: beside the feed, `.json` added.
fn kept(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Writes `bytes` beside `path`, syncs them, and renames them over it.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut aside = path.as_os_str().to_owned();
    aside.push(".new");
    let aside = PathBuf::from(aside);
    let mut file = fs::File::create(&aside)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&aside, path)
}

/// The Atom document.
fn feed(channel: &str, entries: &[Entry], now: DateTime<Utc>) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    let updated = entries
        .first()
        .map_or_else(|| rfc3339(now), |e| e.updated.clone());
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <id>urn:newshound:channel:{}</id>\n<title>newshound: {}</title>\n<updated>{updated}</updated>\n\
         <author><name>newshound</name></author>\n<generator>newshound</generator>\n",
        text(channel),
        text(channel)
    );
    for e in entries {
        out.push_str(&format!(
            "<entry>\n<id>{}</id>\n<title>{}</title>\n<updated>{}</updated>\n",
            text(&e.id),
            text(&e.title),
            text(&e.updated)
        ));
        if let Some(link) = &e.link {
            out.push_str(&format!(
                "<link rel=\"alternate\" href=\"{}\"/>\n",
                attr(link)
            ));
        }
        for rule in &e.rules {
            out.push_str(&format!("<category term=\"{}\"/>\n", attr(rule)));
        }
        let matched = match e.terms.as_slice() {
            [] => String::new(),
            terms => format!(" (matched: {})", terms.join(", ")),
        };
        out.push_str(&format!(
            "<summary type=\"text\">{}{}</summary>\n<source><title>{}</title></source>\n</entry>\n",
            text(&e.summary),
            text(&matched),
            text(&e.feed)
        ));
    }
    out.push_str("</feed>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FeedId, ItemKey, Notice};

    fn alert(key: &str, title: &str) -> Alert {
        Alert {
            terms: vec!["Lavrov".into()],
            ..Alert::from(Notice {
                feed: FeedId("wire".into()),
                key: ItemKey(key.into()),
                title: title.into(),
                link: Some(format!("https://news.example.org/{key}?a=1&b=2")),
                rules: vec!["talks".into()],
                text: "Lavrov met <Blinken> & co.".into(),
                at: DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
            })
        }
    }

    #[test]
    fn alerts_become_entries_with_stable_ids_newest_first_and_capped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("feeds/matches.atom");
        let now = DateTime::from_timestamp(1_700_000_100, 0).expect("time");
        deliver(&path, 2, "reader", &[alert("a", "First & <one>")], now).expect("written");
        deliver(&path, 2, "reader", &[alert("a", "First & <one>")], now).expect("again");
        let said = deliver(
            &path,
            2,
            "reader",
            &[alert("b", "Second"), alert("c", "Third")],
            now,
        )
        .expect("written");
        assert_eq!(said, format!("2 entries in {}", path.display()));
        let xml = fs::read(&path).expect("feed");
        let parsed = feed_rs::parser::parse(xml.as_slice()).expect("valid Atom");
        let titles: Vec<String> = parsed
            .entries
            .iter()
            .map(|e| {
                e.title
                    .as_ref()
                    .map(|t| t.content.clone())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(titles, ["Third", "Second"], "newest first, at most 2");
        let first_id = parsed.entries[1].id.clone();
        deliver(&path, 2, "reader", &[alert("b", "Second")], now).expect("redelivered");
        let again =
            feed_rs::parser::parse(fs::read(&path).expect("feed").as_slice()).expect("Atom");
        assert_eq!(again.entries[1].id, first_id, "an alert keeps its entry id");
        assert_eq!(
            again.entries[0].links[0].href,
            "https://news.example.org/c?a=1&b=2"
        );
        let text = String::from_utf8(fs::read(&path).expect("feed")).expect("utf-8");
        assert!(
            text.contains("Lavrov met &lt;Blinken&gt; &amp; co. (matched: Lavrov)"),
            "{text}"
        );
        assert!(
            !path.with_extension("atom.new").exists(),
            "written aside, then renamed"
        );
    }
}
