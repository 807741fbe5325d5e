//! What changed between two configs, said the way a reload logs it:
//! `+2 rules (a, b), -1 feed (old), channel me: recipients changed`.

use std::collections::BTreeMap;

use super::{Channel, Config, Transport};

impl Config {
    /// The differences from `old` to `self`, one phrase each; empty when nothing
    /// that matters changed.
    pub fn changes_since(&self, old: &Config) -> Vec<String> {
        let mut changes = Vec::new();
        let feeds = |c: &Config| -> BTreeMap<String, (String, std::time::Duration)> {
            c.feeds
                .iter()
                .map(|f| (f.id.0.clone(), (f.source.to_string(), f.interval)))
                .collect()
        };
        named(&mut changes, "feed", &feeds(old), &feeds(self), |_, _| {
            "url or interval changed".into()
        });
        let rules = |c: &Config| -> BTreeMap<String, String> {
            c.rule_specs
                .iter()
                .map(|r| {
                    let channels = c.routes.get(&r.name).cloned().unwrap_or_default();
                    (r.name.clone(), format!("{r:?} → {channels:?}"))
                })
                .collect()
        };
        named(&mut changes, "rule", &rules(old), &rules(self), |_, _| {
            "changed".into()
        });
        if old.lists != self.lists {
            changes.push("lists changed".into());
        }
        named(
            &mut changes,
            "channel",
            &old.channels,
            &self.channels,
            channel_change,
        );
        if old.smtp != self.smtp {
            changes.push("smtp changed".into());
        }
        if old.daemon != self.daemon {
            changes.push("daemon settings changed".into());
        }
        changes
    }
}

/// Adds `+n kind (names)`, `-n kind (names)` and `kind name: what` for entries in
/// both that differ.
fn named<V: PartialEq>(
    changes: &mut Vec<String>,
    kind: &str,
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    what: impl Fn(&V, &V) -> String,
) {
    let list = |sign: char, names: Vec<&String>| {
        let plural = if names.len() == 1 { "" } else { "s" };
        let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        format!(
            "{sign}{} {kind}{plural} ({})",
            names.len(),
            names.join(", ")
        )
    };
    let added: Vec<&String> = new.keys().filter(|k| !old.contains_key(*k)).collect();
    let removed: Vec<&String> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    if !added.is_empty() {
        changes.push(list('+', added));
    }
    if !removed.is_empty() {
        changes.push(list('-', removed));
    }
    for (name, before) in old {
        if let Some(after) = new.get(name).filter(|after| *after != before) {
            changes.push(format!("{kind} {name}: {}", what(before, after)));
        }
    }
}

/// What differs between two versions of a channel.
fn channel_change(old: &Channel, new: &Channel) -> String {
    let mut what = Vec::new();
    match (&old.transport, &new.transport) {
        (Transport::Email { to: a }, Transport::Email { to: b }) if a != b => {
            what.push("recipients changed");
        }
        (
            Transport::Webhook {
                url: a,
                secret: sa,
                format: fa,
            },
            Transport::Webhook {
                url: b,
                secret: sb,
                format: fb,
            },
        ) => {
            if a != b {
                what.push("url changed");
            }
            if fa != fb {
                what.push("format changed");
            }
            if sa != sb {
                what.push("signing key changed");
            }
        }
        (Transport::Maildir { path: a }, Transport::Maildir { path: b }) if a != b => {
            what.push("path changed");
        }
        (a, b) if std::mem::discriminant(a) != std::mem::discriminant(b) => {
            what.push("type changed");
        }
        _ => {}
    }
    if old.digest != new.digest {
        what.push("digest changed");
    }
    if old.max_per_minute != new.max_per_minute {
        what.push("rate limit changed");
    }
    if old.max_in_flight != new.max_in_flight {
        what.push("max_in_flight changed");
    }
    if old.templates != new.templates {
        what.push("templates changed");
    }
    what.join(", ")
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
        assert!(load(BASE).changes_since(&load(BASE)).is_empty());
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
        assert_eq!(
            load(&new).changes_since(&load(BASE)),
            [
                "-1 feed (old)",
                "+2 rules (geneva, nato)",
                "rule talks: changed",
                "channel team: url changed",
            ]
        );
    }

    #[test]
    fn a_rule_sent_elsewhere_and_a_digest_are_changes() {
        let new = BASE
            .replace("channels = [\"inbox\"]", "channels = [\"inbox\", \"team\"]")
            .replace("path = \"alerts\"", "path = \"alerts\"\ndigest = \"1h\"");
        assert_eq!(
            load(&new).changes_since(&load(BASE)),
            ["rule talks: changed", "channel inbox: digest changed"]
        );
    }
}
