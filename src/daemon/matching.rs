//! Which alerts an item causes: the rules that match it, grouped by channel; for a
//! poll's new items, and for the recent items new rules are tried on (backfill).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::shared::Shared;
use crate::config::{Config, Feed};
use crate::feed;
use crate::model::{Alert, FeedId, Field, Item, ItemKey, Meaning, RuleFields, Sketch};
use crate::rules::{self, RuleMatch, RuleSet};

/// Whether `item` is older than its feed's `max_age` at `now`: recorded as seen, never
/// alerted.
pub(super) fn too_old(feed: &Feed, item: &Item, now: DateTime<Utc>) -> bool {
    feed.max_age
        .is_some_and(|age| item.dated_before(crate::model::earlier(now, age)))
}

/// What a poll's new items cause.
#[derive(Default)]
pub(super) struct Matched {
    pub alerts: Vec<(String, Alert)>,
    /// The items themselves, kept a while for `why` and new rules.
    pub recent: Vec<Item>,
    /// The items a filter dropped, with its label.
    pub dropped: Vec<(ItemKey, String)>,
    /// Each rule that matched an item, with the item's title.
    pub caught: Vec<(String, String)>,
}

/// Which of a poll's new items are kept a day (for `why` and new rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    All,
    /// Those a filter dropped (what dropped them is known only from them).
    Dropped,
}

/// What a poll's new items (those of `items` whose keys are in `new`) cause, with
/// `shared`'s rules as feedback taught them: their
/// alerts when `alerting` (an item too old for its feed, or dropped by a filter,
/// causes none), and the items `keep_recent` says to keep. An item is matched
/// with the text of its article when `articles` holds one.
pub(super) fn match_new(
    shared: &Shared,
    feed: &Feed,
    items: &[Item],
    new: &[ItemKey],
    articles: &HashMap<ItemKey, String>,
    (alerting, keep_recent): (bool, Keep),
    now: DateTime<Utc>,
) -> Matched {
    let (config, rules) = (&shared.config, shared.rules());
    let mut matched = Matched::default();
    for item in fresh(items, new) {
        let dropped_before = matched.dropped.len();
        let item = match articles.get(&item.key) {
            Some(text) => Cow::Owned(Item {
                article: text.clone(),
                ..item.clone()
            }),
            None => Cow::Borrowed(item),
        };
        if alerting && !too_old(feed, &item, now) {
            match config.filters.dropped_by(&feed.id.0, &item) {
                Some(filter) => {
                    super::metrics::dropped(&feed.id);
                    matched.dropped.push((item.key.clone(), filter.to_owned()));
                }
                None => {
                    let alerts = match_item(config, &rules, feed, &item, |_| true);
                    let mut rules: Vec<&String> =
                        alerts.iter().flat_map(|(_, a)| &a.rules).collect();
                    rules.sort_unstable();
                    rules.dedup();
                    let title = || item.title.clone();
                    matched
                        .caught
                        .extend(rules.into_iter().map(|r| (r.clone(), title())));
                    matched.alerts.extend(alerts);
                }
            }
        }
        let dropped = matched.dropped.len() > dropped_before;
        if keep_recent == Keep::All || dropped {
            matched.recent.push(item.into_owned());
        }
    }
    matched
}

/// The alerts the rules named `rules` cause for recent `items` (with their feeds):
/// what a backfill queues. Items of feeds since removed from the config are left
/// alone, and so are those too old for their feed or dropped by a filter.
pub(super) fn backfill(
    config: &Config,
    rules: &RuleSet,
    items: Vec<(FeedId, Item)>,
    names: &HashSet<String>,
    now: DateTime<Utc>,
) -> Vec<(String, Alert)> {
    let mut alerts = Vec::new();
    for (feed_id, item) in items {
        let Some(feed) = config.feeds.iter().find(|f| f.id == feed_id) else {
            continue;
        };
        if too_old(feed, &item, now) || config.filters.dropped_by(&feed_id.0, &item).is_some() {
            continue;
        }
        alerts.extend(match_item(config, rules, feed, &item, |m| {
            names.contains(m.rule)
        }));
    }
    alerts
}

/// The alerts an item causes: the rules that match it (those `keep` keeps), one alert
/// per channel, each listing the rules (and their terms) that send there.
pub(super) fn match_item(
    config: &Config,
    rules: &RuleSet,
    feed: &Feed,
    item: &Item,
    keep: impl Fn(&RuleMatch) -> bool,
) -> Vec<(String, Alert)> {
    let matches: Vec<RuleMatch> = rules
        .matches(&feed.id.0, item)
        .into_iter()
        .filter(|m| keep(m))
        .collect();
    for m in &matches {
        super::metrics::matched(m.rule);
    }
    if matches.is_empty() {
        return Vec::new();
    }
    let excerpt = feed::parse::excerpt(item);
    let sketch = Sketch::of(&item.story_texts());
    let gist = config.gist(item);
    let mut channels: Vec<&str> = Vec::new();
    for m in &matches {
        for channel in config.routes.get(m.rule).into_iter().flatten() {
            if !channels.contains(&channel.as_str()) {
                channels.push(channel);
            }
        }
    }
    channels
        .into_iter()
        .map(|channel| {
            let mine: Vec<RuleMatch> = matches
                .iter()
                .filter(|m| {
                    config
                        .routes
                        .get(m.rule)
                        .is_some_and(|c| c.iter().any(|c| c == channel))
                })
                .cloned()
                .collect();
            let alert = Alert {
                feed: feed.id.clone(),
                key: item.key.clone(),
                title: item.title.clone(),
                link: item.link.clone(),
                published: item.published,
                rules: mine.iter().map(|m| m.rule.to_owned()).collect(),
                terms: rules::matched_terms(&mine),
                snippet: rules::snippet(item, &mine),
                why: mine.iter().map(rule_fields).collect(),
                summary_html: excerpt.clone(),
                also_in: Vec::new(),
                sketch: sketch.clone(),
                gist: gist.clone(),
                priority: mine
                    .iter()
                    .map(|m| config.priority_of(m.rule))
                    .max()
                    .unwrap_or_default(),
                feedback: Vec::new(),
            };
            (channel.to_owned(), alert)
        })
        .collect()
}

/// The fields a rule's hits were found in, in field order, and how close the item
/// came to the rule's topic.
fn rule_fields(m: &RuleMatch) -> RuleFields {
    let mut fields: Vec<Field> = m.hits.iter().map(|h| h.field).collect();
    fields.sort_unstable();
    fields.dedup();
    RuleFields {
        rule: m.rule.to_owned(),
        fields,
        meaning: m.topic.as_ref().map(|t| Meaning::new(t.score, t.closest)),
    }
}

/// The items of `items` whose keys are in `new`, each key once (a key the feed repeats
/// is alerted once, like it is recorded once).
pub(super) fn fresh<'a>(items: &'a [Item], new: &[ItemKey]) -> impl Iterator<Item = &'a Item> {
    let new: HashSet<&ItemKey> = new.iter().collect();
    let mut done: HashSet<&ItemKey> = HashSet::new();
    items
        .iter()
        .filter(move |i| new.contains(&i.key) && done.insert(&i.key))
}
