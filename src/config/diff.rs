//! What changed between two configs: the feeds, rules and channels added, removed and
//! changed, and whether the other tables changed. A reload logs it (its `Display` is
//! `-1 feed (old), +2 rules (a, b), channel me: recipients changed`) and tries the
//! rules it added on recent items.

use std::collections::BTreeMap;
use std::fmt;

use super::{Channel, Config};

/// The entries of one kind (feeds, rules, channels) that a new config adds, removes
/// or changes, by name, sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Entries in both that differ, with what differs.
    pub changed: Vec<(String, String)>,
}

impl Changes {
    fn between<V: PartialEq>(
        old: &BTreeMap<String, V>,
        new: &BTreeMap<String, V>,
        what: impl Fn(&V, &V) -> String,
    ) -> Changes {
        Changes {
            added: new
                .keys()
                .filter(|k| !old.contains_key(*k))
                .cloned()
                .collect(),
            removed: old
                .keys()
                .filter(|k| !new.contains_key(*k))
                .cloned()
                .collect(),
            changed: old
                .iter()
                .filter_map(|(name, before)| {
                    let after = new.get(name).filter(|after| *after != before)?;
                    Some((name.clone(), what(before, after)))
                })
                .collect(),
        }
    }

    /// `+n kind (names)`, `-n kind (names)` and `kind name: what`, one phrase each.
    fn phrases(&self, kind: &str) -> Vec<String> {
        let list = |sign: char, names: &[String]| {
            let plural = if names.len() == 1 { "" } else { "s" };
            format!(
                "{sign}{} {kind}{plural} ({})",
                names.len(),
                names.join(", ")
            )
        };
        let mut phrases = Vec::new();
        if !self.added.is_empty() {
            phrases.push(list('+', &self.added));
        }
        if !self.removed.is_empty() {
            phrases.push(list('-', &self.removed));
        }
        for (name, what) in &self.changed {
            phrases.push(format!("{kind} {name}: {what}"));
        }
        phrases
    }
}

/// What changed from one config to the next.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigDiff {
    /// A feed changes with its url or interval.
    pub feeds: Changes,
    /// A rule changes with its terms, filters or channels.
    pub rules: Changes,
    pub channels: Changes,
    pub lists: bool,
    /// `[[filters]]`, or a feed's `drop` or `keep`.
    pub filters: bool,
    pub smtp: bool,
    pub daemon: bool,
}

impl ConfigDiff {
    /// The differences from `old` to `new`.
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        let feeds = |c: &Config| -> BTreeMap<String, super::Feed> {
            c.feeds
                .iter()
                .map(|f| (f.id.0.clone(), f.clone()))
                .collect()
        };
        let rules = |c: &Config| -> BTreeMap<String, _> {
            c.rule_specs
                .iter()
                .map(|r| (r.name.clone(), (r.clone(), c.routes.get(&r.name).cloned())))
                .collect()
        };
        ConfigDiff {
            feeds: Changes::between(&feeds(old), &feeds(new), feed_change),
            rules: Changes::between(&rules(old), &rules(new), |_, _| "changed".into()),
            channels: Changes::between(&old.channels, &new.channels, channel_change),
            lists: old.lists != new.lists,
            filters: old.filter_specs != new.filter_specs,
            smtp: old.smtp != new.smtp,
            daemon: old.daemon != new.daemon,
        }
    }

    /// Whether nothing that matters changed.
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }
}

impl Config {
    /// A hash of what the config makes newshound do (feeds, rules, channels, daemon
    /// settings; not what is each instance's own: where it keeps its files, its name,
    /// where it serves its status page): instances sharing a database compare it to
    /// warn when they run different configs.
    /// Worked out once per config: with 100,000 feeds it takes a tenth of a second.
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| {
            use sha2::Digest as _;
            let daemon = super::Daemon {
                state_dir: std::path::PathBuf::new(),
                instance: None,
                listen: None,
                ..self.daemon.clone()
            };
            let text = format!(
                "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{daemon:?}",
                self.feeds,
                self.rule_specs,
                self.filter_specs,
                self.routes,
                self.lists,
                self.channels,
                self.smtp
            );
            crate::model::hex(&sha2::Sha256::digest(text.as_bytes())[..8])
        })
    }
}

impl fmt::Display for ConfigDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut phrases = self.feeds.phrases("feed");
        phrases.extend(self.rules.phrases("rule"));
        if self.lists {
            phrases.push("lists changed".into());
        }
        if self.filters {
            phrases.push("filters changed".into());
        }
        phrases.extend(self.channels.phrases("channel"));
        if self.smtp {
            phrases.push("smtp changed".into());
        }
        if self.daemon {
            phrases.push("daemon settings changed".into());
        }
        f.write_str(&phrases.join(", "))
    }
}

/// What differs between two versions of a feed.
fn feed_change(old: &super::Feed, new: &super::Feed) -> String {
    let what = named([
        (old.source != new.source, "url"),
        (old.interval != new.interval, "interval"),
        (old.max_age != new.max_age, "max_age"),
        (old.fetch_article != new.fetch_article, "fetch_article"),
        (old.request != new.request, "HTTP options"),
    ]);
    format!("{} changed", what.join(", "))
}

/// What differs between two versions of a channel.
fn channel_change(old: &Channel, new: &Channel) -> String {
    let mut what = old.transport.changes(&new.transport);
    what.extend(named([
        (old.digest != new.digest, "digest changed"),
        (old.quiet_hours != new.quiet_hours, "quiet hours changed"),
        (
            old.max_per_minute != new.max_per_minute,
            "rate limit changed",
        ),
        (
            old.max_in_flight != new.max_in_flight,
            "max_in_flight changed",
        ),
        (old.templates != new.templates, "templates changed"),
    ]));
    what.join(", ")
}

/// The names whose flag is set, in order.
fn named<const N: usize>(flags: [(bool, &'static str); N]) -> Vec<&'static str> {
    flags
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    fn load(text: &str) -> Config {
        Config::from_toml(Path::new("/etc/nh/n.toml"), text, &HashMap::new()).expect("valid")
    }

    const BASE: &str = r#"
[[feeds]]
name = "wire"
url = "https://wire.example.org/rss"

[[feeds]]
name = "old"
url = "https://old.example.org/rss"

[channels.inbox]
type = "maildir"
path = "alerts"

[channels.team]
type = "webhook"
url = "https://hooks.example.org/a"

[[rules]]
name = "talks"
keywords = ["Lavrov"]
channels = ["inbox"]
"#;

    #[test]
    fn the_same_config_has_no_changes() {
        assert!(ConfigDiff::between(&load(BASE), &load(BASE)).is_empty());
    }

    #[test]
    fn added_removed_and_changed_parts_are_named() {
        let new =
            BASE.replace(
                "[[feeds]]\nname = \"old\"\nurl = \"https://old.example.org/rss\"\n",
                "",
            )
            .replace("hooks.example.org/a", "hooks.example.org/b")
            .replace(
                "keywords = [\"Lavrov\"]",
                "keywords = [\"Lavrov\", \"Blinken\"]",
            ) + "\n[[rules]]\nname = \"nato\"\nkeywords = [\"NATO\"]\nchannels = [\"team\"]\n\
               \n[[rules]]\nname = \"geneva\"\nkeywords = [\"Geneva\"]\nchannels = [\"team\"]\n";
        let diff = ConfigDiff::between(&load(BASE), &load(&new));
        assert_eq!(
            diff.to_string(),
            "-1 feed (old), +2 rules (geneva, nato), rule talks: changed, channel team: url changed"
        );
        assert_eq!(diff.rules.added, ["geneva", "nato"]);
        assert_eq!(diff.feeds.removed, ["old"]);
    }

    /// Regression-proofing the reload: a feed's HTTP options or age limit changing is a
    /// change (the running pipeline would otherwise keep the old password).
    #[test]
    fn a_feeds_http_options_and_age_are_changes() {
        let new = BASE.replace(
            "url = \"https://wire.example.org/rss\"",
            "url = \"https://wire.example.org/rss\"\nuser_agent = \"x/1\"\nmax_age = \"2d\"",
        );
        assert_eq!(
            ConfigDiff::between(&load(BASE), &load(&new)).to_string(),
            "feed wire: max_age, HTTP options changed"
        );
    }

    #[test]
    fn a_rule_sent_elsewhere_and_a_digest_are_changes() {
        let new = BASE
            .replace("channels = [\"inbox\"]", "channels = [\"inbox\", \"team\"]")
            .replace("path = \"alerts\"", "path = \"alerts\"\ndigest = \"1h\"");
        assert_eq!(
            ConfigDiff::between(&load(BASE), &load(&new)).to_string(),
            "rule talks: changed, channel inbox: digest changed"
        );
    }

    #[test]
    fn the_fingerprint_leaves_out_what_is_each_instances_own() {
        let daemon = |lines: &str| {
            load(&format!("[daemon]\n{lines}\n{BASE}"))
                .fingerprint()
                .to_owned()
        };
        let mine =
            daemon("listen = \"127.0.0.1:9185\"\ninstance = \"a\"\nstate_dir = \"/var/lib/a\"");
        let yours =
            daemon("listen = \"127.0.0.1:9186\"\ninstance = \"b\"\nstate_dir = \"/var/lib/b\"");
        assert_eq!(
            mine, yours,
            "listen, instance and state_dir are per instance"
        );
        assert_ne!(
            mine,
            daemon("poll_interval = \"1m\""),
            "what every instance does counts"
        );
    }
}
