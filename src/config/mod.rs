//! The config file: TOML with `NEWSHOUND__…` environment overrides, read through the
//! `config` crate, then checked into a [`Config`] whose rules are already compiled.
//!
//! Every error names the file, the line, and the key path (see [`ConfigError`]).
//!
//! This file holds the checked types and loading; `raw` the file's shape as serde reads
//! it; `check` turning it into a [`Config`], with `channels` (the keys every kind
//! shares; each kind checks its own in `notify::kinds`), `rules` (with topic rules'
//! model) and `smtp` for those sections and `secrets` for passwords and tokens read
//! from a file or the environment; `error` the errors; `diff` what changed between two configs ([`ConfigDiff`]);
//! `opml` import and export.

mod channels;
mod check;
mod diff;
mod error;
mod include;
pub mod opml;
mod quiet;
mod raw;
mod requests;
mod rules;
mod secrets;
mod smtp;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::model::Secret;
pub use crate::render::Templates;
use check::Checker;
pub use check::MAX_IN_FLIGHT;
use include::Included;

/// For each rule name, the channels its matches go to.
pub type Routes = BTreeMap<String, Vec<String>>;
pub use crate::notify::kinds;
pub use crate::notify::{Security, Smtp, Transport, WebhookFormat};
pub use diff::{Changes, ConfigDiff};
pub use error::{ConfigError, Invalid, KeyPath, Origin};
pub use include::Include;
pub use quiet::QuietHours;
pub use raw::{Accents, FirstPoll};

use crate::model::{FeedId, FeedSource, Gist, Item, RequestOptions};
use crate::rules::{Condition, FieldSet, RuleError, RuleSet, RuleSpec, topic_text};

/// Prefix of environment variables that override config keys (`NEWSHOUND__SMTP__HOST`).
pub const ENV_PREFIX: &str = "NEWSHOUND";

/// A checked, ready-to-use configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// The files its `include` patterns matched, in the order they were read.
    pub included: Vec<PathBuf>,
    /// Its `include` patterns.
    pub include: Vec<Include>,
    pub daemon: Daemon,
    pub smtp: Option<Smtp>,
    /// `[store]`: a PostgreSQL database shared by several instances; `None` for the
    /// embedded SQLite file in `daemon.state_dir`.
    pub store: Option<SharedStore>,
    pub feeds: Vec<Feed>,
    pub channels: BTreeMap<String, Channel>,
    pub rules: RuleSet,
    /// The rules as written, in order (what `rules` was compiled from).
    pub rule_specs: Vec<RuleSpec>,
    /// What is dropped before the rules see it: `[[filters]]` and each feed's `drop`
    /// and `keep`.
    pub filters: crate::rules::Filters,
    /// The filters as written, in order (what `filters` was compiled from).
    pub filter_specs: Vec<crate::rules::FilterSpec>,
    /// The `[lists]` the rules' queries use.
    pub lists: crate::rules::Lists,
    pub routes: Routes,
    /// The model topic rules use; loaded only when some rule has `about`.
    pub semantic: Option<std::sync::Arc<crate::semantic::Model>>,
    /// [`Config::fingerprint`], once worked out.
    fingerprint: std::sync::OnceLock<String>,
}

/// The shortest interval a feed at `source` may be polled at: 30 s on the web, so as
/// not to hammer a publisher; less for a local file.
pub fn min_interval(source: &FeedSource) -> Duration {
    match source {
        FeedSource::Http(_) => check::MIN_WEB_INTERVAL,
        _ => check::MIN_INTERVAL,
    }
}

impl Config {
    /// How close in meaning a rewrite must be to the story it retells: `None` when
    /// rewrites are not merged; otherwise `daemon.rewrite_threshold`, or the default
    /// of the `[semantic]` model (loaded whenever `merge_rewrites` is on).
    pub fn rewrite_threshold(&self) -> Option<f32> {
        if !self.daemon.merge_rewrites {
            return None;
        }
        let model = self.semantic.as_ref()?;
        Some(
            self.daemon
                .rewrite_threshold
                .unwrap_or(model.info().default_rewrite_threshold),
        )
    }

    /// The gist of `item` that finds its rewrites, when they are merged: the model's
    /// embedding of its text, with the names and numbers it gives.
    pub fn gist(&self, item: &Item) -> Option<Gist> {
        self.rewrite_threshold()?;
        let model = self.semantic.as_ref()?;
        let text = topic_text(item, FieldSet::DEFAULT);
        Gist::new(&model.embed(&text), &item.story_texts(), item.published)
    }
}

/// The semantic model, as topic rules see it.
impl crate::rules::Embedder for crate::semantic::Model {
    fn embed(&self, text: &str) -> Vec<f32> {
        crate::semantic::Model::embed(self, text)
    }

    fn default_min_score(&self) -> f32 {
        self.info().default_min_score
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    pub state_dir: PathBuf,
    pub poll_interval: Duration,
    pub first_poll: FirstPoll,
    pub max_concurrent_fetches: usize,
    /// Feeds of one host fetched at the same time, at most.
    pub max_fetches_per_host: usize,
    /// Whole-request bound for one feed fetch.
    pub fetch_timeout: Duration,
    /// Cap on a feed body after decompression.
    pub max_feed_bytes: u64,
    /// Delivery tries before an alert becomes a dead letter (unlimited by default:
    /// the lifetime decides).
    pub delivery_attempts: u32,
    /// How long an alert is retried before it becomes a dead letter.
    pub delivery_lifetime: Duration,
    /// The same story from another feed (or re-posted) this soon after its first
    /// alert is folded into that alert; zero turns it off.
    pub dedupe_window: Duration,
    /// An item is a copy of a story already alerted when the sketches of their texts
    /// agree on at least this fraction of their hashes (about the share of word
    /// triples the two texts have in common).
    pub copy_threshold: f32,
    /// `merge_rewrites`: the same story told in other words is merged too, with the
    /// `[semantic]` model (see [`Config::rewrite_threshold`]).
    pub merge_rewrites: bool,
    /// `rewrite_threshold` as written; the model's default when `None`.
    pub rewrite_threshold: Option<f32>,
    /// This instance's name among those sharing a `[store]` database; `None` for the
    /// host name and process id.
    pub instance: Option<String>,
    /// The longest a failing feed waits between polls.
    pub max_backoff: Duration,
    /// A publisher's `<ttl>` or `max-age` lengthens a feed's interval up to this.
    pub max_publisher_interval: Duration,
    /// Items dated longer ago than this are recorded but not alerted (each feed may
    /// set its own); `None`: no limit.
    pub max_age: Option<Duration>,
    /// How feeds are asked for over HTTP, unless a feed says otherwise.
    pub request: RequestOptions,
    /// A feed with nothing new for this many times its usual gap is stale.
    pub stale_factor: u32,
    /// More new items than this in one poll of a known feed are held as a flood.
    pub flood_threshold: usize,
    /// Only the first this many items of a document are read; the rest are dropped.
    pub max_items_per_feed: usize,
    /// Where "feed broken" and "feed recovered" notices go, if anywhere.
    pub health_channel: Option<String>,
    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub listen: Option<std::net::SocketAddr>,
    /// The address people reach `listen` at (behind a proxy, say): where feedback
    /// links point.
    pub public_url: Option<url::Url>,
    /// Reload when the config file changes (besides on SIGHUP).
    pub watch_config: bool,
    /// A rule added by a reload is tried on the items of the last 24 hours.
    pub backfill_new_rules: bool,
    /// A seen item absent from its feed this long is forgotten (an item still in its
    /// feed never is).
    pub forget_after: Duration,
    /// Sent alerts are kept this long, for `replay --since` and the status page; at
    /// least `dedupe_window`, since a later copy of a story is merged into them.
    pub keep_sent: Duration,
    /// Dead letters and held alerts are kept this long, for `replay`.
    pub keep_dead: Duration,
    /// A feed is broken after this many failed polls in a row…
    pub broken_after_failures: u32,
    /// …or after failing for this long.
    pub broken_after: Duration,
}

/// A PostgreSQL database holding the state of one or more instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStore {
    /// `postgres://user@host:port/db`, as written.
    pub url: String,
    /// From `password_file` or `password_env`, when the URL holds none.
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub id: FeedId,
    pub source: FeedSource,
    pub interval: Duration,
    /// Items dated longer ago than this are recorded as seen but never alerted
    /// (republished or re-keyed old items stay quiet); undated items count as new.
    pub max_age: Option<Duration>,
    /// Fetch each new item's link and match its readable text as the field `article`.
    pub fetch_article: bool,
    /// How it is asked for over HTTP (the daemon's defaults with its own options).
    pub request: RequestOptions,
}

/// Where alerts go and how they are gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub transport: Transport,
    /// Gather alerts into one message per period instead of one each.
    pub digest: Option<Digest>,
    /// Send nothing in this daily window; what it held goes as one message after.
    pub quiet_hours: Option<QuietHours>,
    /// At most this many messages a minute; the excess is folded into one summary.
    pub max_per_minute: Option<u32>,
    /// At most this many messages on their way at the same time.
    pub max_in_flight: usize,
    /// Each alert carries "more like this" and "not this" links for its rules.
    pub feedback: bool,
    /// How email and Maildir messages look.
    pub templates: Templates,
}

impl Channel {
    /// Its `type`.
    pub fn kind(&self) -> &'static str {
        self.transport.name()
    }
}

/// When a digest channel sends what it gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// At every multiple of this period, counted in local time from midnight
    /// (`"1h"`: on the hour; `"30m"`: on the hour and half past).
    Every(Duration),
    /// Once a day at this local time (`"daily 08:00"`).
    Daily(chrono::NaiveTime),
}

impl Digest {
    fn parse(text: &str) -> Result<Digest, String> {
        let text = text.trim();
        if let Some(time) = text.strip_prefix("daily") {
            let time = time.trim();
            return chrono::NaiveTime::parse_from_str(time, "%H:%M")
                .map(Digest::Daily)
                .map_err(|_| {
                    format!(
                        "{time:?} is not a time of day; write it as HH:MM, like \"daily 08:00\""
                    )
                });
        }
        match humantime::parse_duration(text) {
            Ok(period) if period >= Duration::from_secs(60) => Ok(Digest::Every(period)),
            Ok(_) => Err(format!(
                "{text:?} is too short for a digest; use at least \"1m\""
            )),
            Err(_) => Err(format!(
                "{text:?} is not a digest period; use a duration like \"1h\" or a time like \"daily 08:00\""
            )),
        }
    }

    /// When the period holding `t` ends, in the system's local time zone: the moment
    /// its digest goes out.
    pub fn period_end(&self, t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        self.period_end_in(t, &chrono::Local)
    }

    pub fn period_end_in<Tz: chrono::TimeZone>(
        &self,
        t: chrono::DateTime<chrono::Utc>,
        zone: &Tz,
    ) -> chrono::DateTime<chrono::Utc> {
        use chrono::{Days, Utc};
        let local = t.with_timezone(zone);
        let midnight = local.date_naive().and_time(chrono::NaiveTime::MIN);
        let since_midnight = (local.naive_local() - midnight).num_seconds().max(0) as u64;
        let (day, offset) = match *self {
            Digest::Every(period) => {
                let period = period.as_secs().max(1);
                let next = (since_midnight / period + 1) * period;
                (midnight.date(), Duration::from_secs(next))
            }
            Digest::Daily(at) => {
                let at_secs = (at - chrono::NaiveTime::MIN).num_seconds() as u64;
                if since_midnight < at_secs {
                    (midnight.date(), Duration::from_secs(at_secs))
                } else {
                    let tomorrow = midnight.date() + Days::new(1);
                    (tomorrow, Duration::from_secs(at_secs))
                }
            }
        };
        let naive = day.and_time(chrono::NaiveTime::MIN)
            + chrono::Duration::from_std(offset).unwrap_or(chrono::Duration::MAX);
        // A local time skipped by a DST change is taken an hour later.
        let hour = chrono::Duration::hours(1);
        zone.from_local_datetime(&naive)
            .earliest()
            .or_else(|| zone.from_local_datetime(&(naive + hour)).earliest())
            .map_or(t + hour, |d| d.with_timezone(&Utc))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Every(period) => write!(f, "every {}", humantime::format_duration(*period)),
            Digest::Daily(at) => write!(f, "daily at {}", at.format("%H:%M")),
        }
    }
}

/// Under this, a retention setting is for tests, not for a service: `check` says so.
const SHORT_RETENTION: Duration = Duration::from_secs(60 * 60);

impl Config {
    /// The `priority` of the rule named `rule` (normal for an unknown name).
    pub fn priority_of(&self, rule: &str) -> crate::model::Priority {
        self.rule_specs
            .iter()
            .find(|r| r.name == rule)
            .map(|r| r.priority)
            .unwrap_or_default()
    }

    /// What is valid but probably not meant: each a line for `check` and the log.
    pub fn warnings(&self) -> Vec<String> {
        let d = &self.daemon;
        [
            (
                "forget_after",
                d.forget_after,
                "an item that leaves its feed and comes back is alerted again",
            ),
            (
                "keep_sent",
                d.keep_sent,
                "sent alerts leave `replay --since` and the status page",
            ),
            (
                "keep_dead",
                d.keep_dead,
                "dead letters and held alerts are deleted before anyone replays them",
            ),
        ]
        .into_iter()
        .filter(|(_, kept, _)| *kept < SHORT_RETENTION)
        .map(|(key, kept, what)| {
            format!(
                "daemon.{key} is {}: after so short a time {what}; meant for tests, not a service",
                humantime::format_duration(kept)
            )
        })
        .chain(
            (d.rewrite_threshold.is_some() && !d.merge_rewrites).then(|| {
                "daemon.rewrite_threshold is set but merge_rewrites is off, so rewrites are \
                 not merged; add merge_rewrites = true"
                    .to_owned()
            }),
        )
        .chain(
            self.channels
                .iter()
                .filter(|(_, c)| c.digest.is_some() && c.max_per_minute.is_some())
                .map(|(name, _)| {
                    format!(
                        "channels.{name}.max_per_minute does nothing beside digest, which \
                         already sends one message per period; remove one of them"
                    )
                }),
        )
        .chain(
            self.channels
                .iter()
                .filter_map(|(name, c)| match &c.transport {
                    Transport::Exec(exec) if !exec.program_found() => Some(format!(
                        "channels.{name}.command: {} is not a program newshound can run (yet): \
                 deliveries to the channel fail until it is",
                        exec.command[0]
                    )),
                    _ => None,
                }),
        )
        .collect()
    }

    /// Reads `file`, applies the `NEWSHOUND__…` overrides found in `env`, and checks
    /// the result. `env` is also where `password_env` is looked up.
    pub fn load(file: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Unreadable {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        Config::from_toml(file, &text, env)
    }

    /// What `file` would give with every setting at its default, but for the state
    /// directory, read leniently (`daemon.state_dir` if the file has one that parses):
    /// enough to find the state of a daemon whose config file is now broken.
    pub fn defaults_for(file: &Path, env: &HashMap<String, String>) -> Config {
        let state_dir = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|table| {
                let dir = table.get("daemon")?.get("state_dir")?.as_str()?;
                Some(format!("state_dir = {}\n", toml::Value::from(dir)))
            })
            .unwrap_or_default();
        let text = format!("[daemon]\n{state_dir}");
        // Of the environment, only what places the state.
        let env: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| *k == "STATE_DIRECTORY" || *k == "NEWSHOUND__DAEMON__STATE_DIR")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Config::from_toml(file, &text, &env).unwrap_or_else(|_| {
            Config::from_toml(file, "", &HashMap::new()).expect("an empty config is valid")
        })
    }

    /// Like [`Config::load`], from text already read.
    pub fn from_toml(
        file: &Path,
        text: &str,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let alone = Included::default();
        let checker = Checker {
            file,
            text,
            env,
            included: &alone,
        };
        // The file alone first: serde errors then carry a position in the file. Only
        // when the environment overrides something is it read again, merged (with
        // 100,000 feeds, reading the file twice took half of `check`).
        let parsed = checker.parse_as()?;
        let overrides = checker.overrides();
        let mut raw = match overrides.is_empty() {
            true => parsed,
            false => checker.merge_env(overrides)?,
        };
        let included = checker.read_includes(&mut raw)?;
        Checker {
            included: &included,
            ..checker
        }
        .check(raw)
    }
}

#[cfg(test)]
mod tests;
