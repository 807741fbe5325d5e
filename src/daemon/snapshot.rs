//! The daemon's state as every status reader shows it — `status`, the systemd STATUS
//! line and `/metrics` — read at once from the store, with next polls computed by the
//! scheduler's own function.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::schedule::{group_due_at, grouped};
use crate::config::{Config, Feed};
use crate::model::Vote;
use crate::model::{FeedId, FeedSource};
use crate::render::status::{bytes, when};
use crate::store::{
    FeedState, Instance, Learned, OutboxCounts, Pruned, RULE_DAYS, RecentAlert, Retrying, RuleDay,
    Store, StoreError,
};

/// The store note holding why the config on disk is not the one running.
pub const CONFIG_ERROR: &str = "config_error";
/// How many of the latest alerts `status` and the status page list.
pub const LATEST_ALERTS: usize = 25;
/// How many times of new items `status` reads per feed, to judge staleness.
const HISTORY: usize = 20;

/// One feed as the status readers show it.
#[derive(Debug, Clone)]
pub struct FeedReport {
    pub id: FeedId,
    /// Its URL, when the config names the feed.
    pub source: Option<String>,
    pub state: FeedState,
    /// Items recorded for it.
    pub items_known: u64,
    /// When the scheduler polls it next (about: each wait is jittered by ±10%);
    /// `None` for a feed never polled.
    pub next_poll: Option<DateTime<Utc>>,
    /// When polls brought new items, newest first (read for `status` only).
    pub new_item_times: Vec<DateTime<Utc>>,
}

/// Which feeds a snapshot shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The feeds of the config: one removed from it no longer counts.
    Configured,
    /// Every feed the store knows (for `status` when the config does not load).
    Stored,
}

/// The daemon's state, read at once.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub feeds: Vec<FeedReport>,
    pub outbox: OutboxCounts,
    /// Alerts waiting for another try (read by `read_full` and `read_details`).
    pub retrying: Vec<Retrying>,
    /// Dead letters: id, channel, last error (read by `read_full` and `read_details`).
    pub dead: Vec<(i64, String, String)>,
    /// The config change the daemon refused, and when (read by `read_full` and `read_details`).
    pub refused: Option<(String, DateTime<Utc>)>,
    /// The instances sharing a `[store]` database (read by `read_full` and `read_details`).
    pub instances: Vec<Instance>,
    /// Items recorded as seen, of every feed the store knows.
    pub seen_items: u64,
    /// The bytes the state takes on disk.
    pub state_bytes: u64,
    /// What the last pruning (of any instance) deleted, and when.
    pub last_prune: Option<(Pruned, DateTime<Utc>)>,
    /// The latest alerts queued (25), newest first (read by `read_full`
    /// and `read_details`).
    pub recent: Vec<RecentAlert>,
    /// What each rule caught on each of the last 30 days (read by `read_full` and
    /// `read_details`).
    pub rule_days: Vec<RuleDay>,
    /// The examples feedback taught the rules (read by `read_full` and
    /// `read_details`).
    pub learned: Vec<Learned>,
}

/// What one rule of the config caught over the last [`RULE_DAYS`] days.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleReport {
    pub rule: String,
    /// Items caught each day, oldest first, today last (UTC days).
    pub days: Vec<(chrono::NaiveDate, u64)>,
    /// In all those days.
    pub caught: u64,
    /// The last item caught, and when.
    pub last: Option<(String, DateTime<Utc>)>,
    /// Feedback on its alerts: "more like this" and "not this" clicks.
    pub more: u64,
    pub not: u64,
    /// It matches by words alone (no `about`): feedback cannot teach it, only hint.
    pub by_words: bool,
}

impl RuleReport {
    /// A rule that caught nothing in all those days may watch for what never comes.
    pub fn possibly_dead(&self) -> bool {
        self.caught == 0
    }

    /// What feedback said, in words: `2 more like this, 1 not this`.
    pub fn feedback(&self) -> Option<String> {
        let said: Vec<String> = [(self.more, "more like this"), (self.not, "not this")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        (!said.is_empty()).then(|| said.join(", "))
    }

    /// Whether it needs a look: it caught nothing, or feedback says to narrow it.
    pub fn needs_a_look(&self) -> bool {
        self.possibly_dead() || self.hint().is_some()
    }

    /// A rule that matches by words and was told "not this": a hint to narrow it.
    pub fn hint(&self) -> Option<&'static str> {
        (self.by_words && self.not > 0).then_some(
            "it matches by words, and feedback said \"not this\": narrow it (a NOT, \
             fields or feeds), or add about = \"...\" so that feedback teaches it",
        )
    }
}

impl Snapshot {
    /// The configured feeds and the outbox's counts: what the heartbeat's readers
    /// (the STATUS line, `/metrics`) need, cheap enough for every 30 s.
    pub async fn read(
        config: &Config,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Snapshot, StoreError> {
        let states = store.feed_states().await?;
        Ok(Snapshot {
            seen_items: states.iter().map(|(_, _, items)| items).sum(),
            feeds: feed_reports(config, states, Scope::Configured, now),
            outbox: store.outbox_counts().await?,
            state_bytes: store.state_bytes().await?,
            last_prune: store.last_prune().await?,
            ..Snapshot::default()
        })
    }

    /// Everything `status` shows: the feeds of `scope` with their history, the
    /// outbox, its retries and dead letters, and a refused config. Without a store
    /// (`None`: no state yet) the configured feeds, never polled.
    pub async fn read_full(
        config: &Config,
        store: Option<&Store>,
        scope: Scope,
        now: DateTime<Utc>,
    ) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot::read_details(config, store, scope, now).await?;
        if let Some(store) = store {
            let mut times = store.new_item_times(HISTORY).await?;
            for feed in &mut snapshot.feeds {
                feed.new_item_times = times.remove(&feed.id).unwrap_or_default();
            }
        }
        Ok(snapshot)
    }

    /// What [`Snapshot::read_full`] reads but the feeds' history of new items (the
    /// distinct times of every feed's new items): for the status page, which may be
    /// asked for often.
    pub async fn read_details(
        config: &Config,
        store: Option<&Store>,
        scope: Scope,
        now: DateTime<Utc>,
    ) -> Result<Snapshot, StoreError> {
        let Some(store) = store else {
            return Ok(Snapshot {
                feeds: feed_reports(config, Vec::new(), scope, now),
                ..Snapshot::default()
            });
        };
        let (mut snapshot, states) = Snapshot::read_stored(store, now).await?;
        snapshot.feeds = feed_reports(config, states, scope, now);
        Ok(snapshot)
    }

    /// What [`Snapshot::read_details`] reads, but with every stored feed state left
    /// as it came (no feed reports): for the status page, which puts only its page of
    /// feeds in words (`reports_of`).
    pub async fn read_stored(
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<(Snapshot, Vec<(FeedId, FeedState, u64)>), StoreError> {
        let states = store.feed_states().await?;
        let snapshot = Snapshot {
            seen_items: states.iter().map(|(_, _, items)| items).sum(),
            outbox: store.outbox_counts().await?,
            retrying: store.retrying().await?,
            dead: store.dead_letters().await?,
            refused: store.note(CONFIG_ERROR).await?,
            instances: store.instances(now).await?,
            state_bytes: store.state_bytes().await?,
            last_prune: store.last_prune().await?,
            recent: store.recent_alerts(LATEST_ALERTS).await?,
            rule_days: store.rule_days(now).await?,
            learned: store.learned().await?,
            ..Snapshot::default()
        };
        Ok((snapshot, states))
    }

    /// Feeds declared broken.
    pub fn broken(&self) -> usize {
        self.feeds
            .iter()
            .filter(|f| f.state.broken_since.is_some())
            .count()
    }

    /// Whether the instances sharing the database run different configs, or one
    /// other than `config`.
    pub fn configs_differ(&self, config: &Config) -> bool {
        if self.instances.is_empty() {
            return false;
        }
        let mine = config.fingerprint();
        self.instances.iter().any(|i| *i.config_hash != *mine)
    }

    /// The state's size and its last pruning, in words: `9 seen items, 57.3 kB on
    /// disk; last pruned 2 h ago: 3 seen items deleted`.
    pub fn state_line(&self, now: DateTime<Utc>) -> String {
        let pruned = match &self.last_prune {
            Some((pruned, at)) => format!("last pruned {}: {pruned}", when(Some(*at), now)),
            None => "never pruned yet".to_owned(),
        };
        format!(
            "{} seen items, {} on disk; {pruned}",
            self.seen_items,
            bytes(self.state_bytes)
        )
    }

    /// What each rule of `config` caught on each of the last [`RULE_DAYS`] days
    /// before `now`, in config order.
    pub fn rules(&self, config: &Config, now: DateTime<Utc>) -> Vec<RuleReport> {
        let today = now.date_naive();
        let first = today - chrono::Days::new(u64::from(RULE_DAYS) - 1);
        // Indexed by rule once: with 10,000 rules, a scan per rule took seconds.
        let mut days_of: HashMap<&str, Vec<&RuleDay>> = HashMap::new();
        for day in &self.rule_days {
            days_of.entry(day.rule.as_str()).or_default().push(day);
        }
        let mut votes_of: HashMap<(&str, Vote), u64> = HashMap::new();
        for learned in &self.learned {
            *votes_of
                .entry((learned.rule.as_str(), learned.vote))
                .or_default() += 1;
        }
        config
            .rule_specs
            .iter()
            .map(|spec| {
                let mine = days_of
                    .get(spec.name.as_str())
                    .map_or(&[][..], Vec::as_slice);
                let days: Vec<(chrono::NaiveDate, u64)> = first
                    .iter_days()
                    .take_while(|day| *day <= today)
                    .map(|day| {
                        let caught = mine.iter().find(|d| d.day.date_naive() == day);
                        (day, caught.map_or(0, |d| d.caught))
                    })
                    .collect();
                let votes = |vote| votes_of.get(&(spec.name.as_str(), vote)).copied();
                RuleReport {
                    more: votes(Vote::More).unwrap_or(0),
                    not: votes(Vote::Not).unwrap_or(0),
                    by_words: spec.topic.is_none(),
                    rule: spec.name.clone(),
                    caught: days.iter().map(|(_, n)| n).sum(),
                    days,
                    last: mine
                        .iter()
                        .max_by_key(|d| d.last_at)
                        .map(|d| (d.last_title.clone(), d.last_at)),
                }
            })
            .collect()
    }

    /// The last successful poll of any feed.
    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.feeds.iter().filter_map(|f| f.state.last_success).max()
    }
}

/// The feeds of `scope`, in config order (or the store's), each with its state and
/// next poll as the scheduler computes it for its group.
fn feed_reports(
    config: &Config,
    stored: Vec<(FeedId, FeedState, u64)>,
    scope: Scope,
    now: DateTime<Utc>,
) -> Vec<FeedReport> {
    let mut items: HashMap<FeedId, u64> = HashMap::new();
    let mut known: HashMap<FeedId, FeedState> = HashMap::new();
    let mut order = Vec::new();
    for (id, state, n) in stored {
        items.insert(id.clone(), n);
        known.insert(id.clone(), state);
        order.push(id);
    }
    let report = |id: &FeedId| FeedReport {
        id: id.clone(),
        state: known.get(id).cloned().unwrap_or_default(),
        items_known: items.get(id).copied().unwrap_or(0),
        source: None,
        next_poll: None,
        new_item_times: Vec::new(),
    };
    if scope == Scope::Stored {
        return order.iter().map(report).collect();
    }
    let max_backoff = config.daemon.max_backoff;
    let due: HashMap<&FeedSource, DateTime<Utc>> = grouped(&config.feeds)
        .iter()
        .map(|group| {
            let at = group_due_at(group, &known, max_backoff, now);
            (&group[0].source, at)
        })
        .collect();
    config
        .feeds
        .iter()
        .map(|feed| {
            // Each state is taken, not copied: 100,000 copies cost the status page.
            let state = known.remove(&feed.id).unwrap_or_default();
            FeedReport {
                id: feed.id.clone(),
                next_poll: state.last_attempt.and(due.get(&feed.source).copied()),
                state,
                items_known: items.get(&feed.id).copied().unwrap_or(0),
                source: Some(feed.source.to_string()),
                new_item_times: Vec::new(),
            }
        })
        .collect()
}

/// The reports of `shown` (configured feeds), their states found through `state_of`,
/// each with its next poll as the scheduler computes it for its group. Only the groups
/// of the feeds shown are looked at, however many feeds the config has.
pub fn reports_of<'s>(
    config: &Config,
    shown: &[&Feed],
    state_of: impl Fn(&FeedId) -> Option<(&'s FeedState, u64)>,
    now: DateTime<Utc>,
) -> Vec<FeedReport> {
    let sources: HashSet<&FeedSource> = shown.iter().map(|f| &f.source).collect();
    let mut groups: HashMap<&FeedSource, Vec<&Feed>> = HashMap::new();
    let mut known: HashMap<FeedId, FeedState> = HashMap::new();
    for feed in config.feeds.iter().filter(|f| sources.contains(&f.source)) {
        groups.entry(&feed.source).or_default().push(feed);
        if let Some((state, _)) = state_of(&feed.id) {
            known.insert(feed.id.clone(), state.clone());
        }
    }
    let max_backoff = config.daemon.max_backoff;
    shown
        .iter()
        .map(|feed| {
            let (state, items_known) = state_of(&feed.id)
                .map(|(state, items)| (state.clone(), items))
                .unwrap_or_default();
            let due = groups
                .get(&feed.source)
                .map(|group| group_due_at(group, &known, max_backoff, now));
            FeedReport {
                id: feed.id.clone(),
                next_poll: state.last_attempt.and(due),
                state,
                items_known,
                source: Some(feed.source.to_string()),
                new_item_times: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `status` showed a grouped feed's next poll by its own interval,
    /// while the scheduler polls the group as often as its most eager entry asks.
    #[test]
    fn status_shows_the_next_poll_of_a_feeds_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml = "[daemon]\nstate_dir = \"state\"\n\n\
                    [[feeds]]\nname = \"slow\"\nurl = \"file:f.xml\"\ninterval = \"1h\"\n\n\
                    [[feeds]]\nname = \"eager\"\nurl = \"file:f.xml\"\ninterval = \"10m\"\n\n\
                    [[feeds]]\nname = \"new\"\nurl = \"file:n.xml\"\n";
        let config =
            Config::from_toml(&dir.path().join("n.toml"), toml, &HashMap::new()).expect("config");
        let at = DateTime::from_timestamp(1_000_000, 0).expect("time");
        let polled = FeedState {
            last_attempt: Some(at),
            ..FeedState::default()
        };
        let stored = vec![
            (FeedId("slow".into()), polled.clone(), 3),
            (FeedId("eager".into()), polled, 3),
        ];
        let reports = feed_reports(&config, stored, Scope::Configured, at);
        let next: Vec<(&str, Option<DateTime<Utc>>)> = reports
            .iter()
            .map(|r| (r.id.0.as_str(), r.next_poll))
            .collect();
        let ten_minutes_on = Some(at + chrono::Duration::minutes(10));
        assert_eq!(
            next,
            [
                ("slow", ten_minutes_on),
                ("eager", ten_minutes_on),
                ("new", None)
            ]
        );
    }
}
