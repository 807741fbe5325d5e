//! Checking `[[rules]]`: their terms and queries, the channels they send to, topic
//! clauses, and the `[semantic]` model those are scored with.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::check::Checker;
use super::raw::{RawFeed, RawFilter, RawRule, RawSemantic};
use super::*;
use crate::rules::{FilterSpec, TopicSpec};
use crate::semantic::{self, Model, Setting};

impl Checker<'_> {
    /// The `[[rules]]` as specs, before compilation, and the channels of each.
    pub(super) fn check_rules(
        &self,
        raw: &[RawRule],
        feeds: &[Feed],
        channels: &BTreeMap<String, Channel>,
    ) -> Result<(Vec<RuleSpec>, Routes), ConfigError> {
        let feed_names: HashSet<&str> = feeds.iter().map(|f| f.id.0.as_str()).collect();
        let mut specs = Vec::with_capacity(raw.len());
        let mut routes = BTreeMap::new();
        let mut rule_names: HashMap<&str, usize> = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            let key = || KeyPath::default().key("rules").index(i);
            let name = r.name.trim();
            if name.is_empty() {
                return Err(self.invalid(key().key("name"), "a rule needs a non-empty name"));
            }
            if let Some(first) = rule_names.insert(name, i) {
                return Err(self.invalid(
                    key().key("name"),
                    format!(
                        "duplicate rule name {name:?} (also {}); names must be unique",
                        self.place(&KeyPath::default().key("rules").index(first).key("name"))
                    ),
                ));
            }
            if r.channels.is_empty() {
                return Err(self.invalid(
                    key().key("channels"),
                    "list at least one channel to send matches to",
                ));
            }
            for (c, channel) in r.channels.iter().enumerate() {
                if !channels.contains_key(channel) {
                    return Err(self.invalid(
                        key().key("channels").index(c),
                        format!("unknown channel {channel:?}; define it as [channels.{channel}]"),
                    ));
                }
            }
            if let Some(rule_feeds) = &r.feeds {
                for (f, feed) in rule_feeds.iter().enumerate() {
                    if !feed_names.contains(feed.as_str()) {
                        return Err(self.invalid(
                            key().key("feeds").index(f),
                            format!(
                                "unknown feed {feed:?}; it must be the name of a [[feeds]] entry"
                            ),
                        ));
                    }
                }
            }
            let topic = self.check_topic(r.topical(), &key)?;
            let condition = match (&r.keywords, &r.query) {
                (Some(keywords), None) => Condition::Keywords(keywords.clone()),
                (None, Some(query)) => Condition::Query(query.clone()),
                (Some(_), Some(_)) => {
                    return Err(self.invalid(
                        key().key("query"),
                        "a rule has `keywords` or `query`, not both",
                    ));
                }
                (None, None) if topic.is_some() => Condition::Always,
                (None, None) => {
                    return Err(self.invalid(
                        key(),
                        "a rule needs `keywords = [...]`, `query = \"...\"` or `about = \"...\"`",
                    ));
                }
            };
            routes.insert(name.to_owned(), r.channels.clone());
            specs.push(RuleSpec {
                name: name.to_owned(),
                condition,
                feeds: r
                    .feeds
                    .as_ref()
                    .map(|f| f.iter().cloned().collect::<BTreeSet<_>>()),
                fields: r
                    .fields
                    .clone()
                    .map_or(FieldSet::DEFAULT, FieldSet::from_fields),
                case_sensitive: r.case_sensitive.unwrap_or(false),
                strict_accents: r.accents.unwrap_or_default() == Accents::Strict,
                priority: r.priority.unwrap_or_default(),
                topic,
            });
        }
        Ok((specs, routes))
    }

    /// The `[[filters]]` and each feed's `drop` and `keep`, as filters, each with the
    /// key its query is written at.
    pub(super) fn check_filters(
        &self,
        raw: &[RawFilter],
        raw_feeds: &[RawFeed],
        feeds: &[Feed],
    ) -> Result<Vec<(FilterSpec, KeyPath)>, ConfigError> {
        let feed_names: HashSet<&str> = feeds.iter().map(|f| f.id.0.as_str()).collect();
        let mut specs = Vec::new();
        for (i, f) in raw.iter().enumerate() {
            let key = || KeyPath::default().key("filters").index(i);
            let topic = self.check_topic(f.topical(), &key)?;
            let condition = match (&f.drop, &topic) {
                (Some(query), _) => Condition::Query(query.clone()),
                (None, Some(_)) => Condition::Always,
                (None, None) => {
                    return Err(self.invalid(
                        key(),
                        "a filter needs `drop = \"<query>\"` or `about = \"...\"`: what it drops",
                    ));
                }
            };
            let label = match (f.name.as_deref().map(str::trim), &f.drop, &f.about) {
                (Some(name), ..) if !name.is_empty() => name.to_owned(),
                (_, Some(query), _) => format!("drop {query:?}"),
                (_, None, about) => format!("about {:?}", about.as_deref().unwrap_or_default()),
            };
            for (n, feed) in f.feeds.iter().flatten().enumerate() {
                if !feed_names.contains(feed.as_str()) {
                    return Err(self.invalid(
                        key().key("feeds").index(n),
                        format!("unknown feed {feed:?}; it must be the name of a [[feeds]] entry"),
                    ));
                }
            }
            let rule = RuleSpec {
                condition,
                topic,
                feeds: f.feeds.as_ref().map(|f| f.iter().cloned().collect()),
                ..RuleSpec::keywords(&label, &[])
            };
            let at = key().key(if f.drop.is_some() { "drop" } else { "about" });
            specs.push((FilterSpec { rule, keep: false }, at));
        }
        for (i, (raw, feed)) in raw_feeds.iter().zip(feeds).enumerate() {
            for (what, query, keep) in [("drop", &raw.drop, false), ("keep", &raw.keep, true)] {
                let Some(query) = query else { continue };
                let label = format!("{what} of feed {}", feed.id);
                let rule = RuleSpec {
                    feeds: Some(BTreeSet::from([feed.id.0.clone()])),
                    ..RuleSpec::query(&label, query)
                };
                let at = KeyPath::default().key("feeds").index(i).key(what);
                specs.push((FilterSpec { rule, keep }, at));
            }
        }
        Ok(specs)
    }

    /// A rule's or a filter's `about`, `like`, `unlike` and `min_score`.
    fn check_topic(
        &self,
        r: Topical<'_>,
        key: &dyn Fn() -> KeyPath,
    ) -> Result<Option<TopicSpec>, ConfigError> {
        let Some(about) = &r.about else {
            let stray = [
                ("like", r.like.is_some()),
                ("unlike", r.unlike.is_some()),
                ("min_score", r.min_score.is_some()),
            ];
            return match stray.into_iter().find(|(_, given)| *given) {
                Some((name, _)) => Err(self.invalid(
                    key().key(name),
                    format!("`{name}` belongs to a topic rule; add `about = \"...\"` saying what the rule is about"),
                )),
                None => Ok(None),
            };
        };
        if about.trim().is_empty() {
            return Err(self.invalid(
                key().key("about"),
                "`about` is empty; say in a sentence what the rule is about",
            ));
        }
        let examples = |name: &str, texts: &Option<Vec<String>>| {
            let texts = texts.clone().unwrap_or_default();
            match texts.iter().position(|t| t.trim().is_empty()) {
                Some(i) => Err(self.invalid(
                    key().key(name).index(i),
                    "an empty example; write a headline or a sentence",
                )),
                None => Ok(texts),
            }
        };
        let min_score = match r.min_score {
            Some(score) if !(0.0..=1.0).contains(&score) => {
                return Err(self.invalid(
                    key().key("min_score"),
                    format!("{score} is outside 0 to 1; a similarity threshold such as 0.45"),
                ));
            }
            score => score.map(|s| s as f32),
        };
        Ok(Some(TopicSpec {
            about: about.clone(),
            like: examples("like", r.like)?,
            unlike: examples("unlike", r.unlike)?,
            min_score,
        }))
    }

    /// The model `[semantic] model` names (the builtin one by default), loaded once
    /// per process.
    pub(super) fn load_model(
        &self,
        raw: RawSemantic,
        base: &Path,
    ) -> Result<Arc<Model>, ConfigError> {
        let key = || KeyPath::default().key("semantic").key("model");
        let setting = match raw.model.as_deref().map(str::trim) {
            None | Some("builtin") => Setting::Builtin,
            Some("") => {
                return Err(self.invalid(
                    key(),
                    "empty; write \"builtin\" or the path of a model directory",
                ));
            }
            Some(path) => Setting::Directory(base.join(path)),
        };
        semantic::shared(&setting).map_err(|e| {
            self.invalid(
                key(),
                format!("{e}; point it at a model directory, or write \"builtin\""),
            )
        })
    }
}

/// The topic keys of a rule or a filter, as written.
struct Topical<'a> {
    about: &'a Option<String>,
    like: &'a Option<Vec<String>>,
    unlike: &'a Option<Vec<String>>,
    min_score: Option<f64>,
}

impl RawRule {
    fn topical(&self) -> Topical<'_> {
        Topical {
            about: &self.about,
            like: &self.like,
            unlike: &self.unlike,
            min_score: self.min_score,
        }
    }
}

impl RawFilter {
    fn topical(&self) -> Topical<'_> {
        Topical {
            about: &self.about,
            like: &self.like,
            unlike: &self.unlike,
            min_score: self.min_score,
        }
    }
}
