//! The config file exactly as written: serde structs, checked later into `Config`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::model::Field;
pub use crate::model::RawHeaderValue;
use crate::notify::Security;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// More files (glob patterns, relative to this one) holding feeds, rules,
    /// filters, lists and channels.
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub daemon: RawDaemon,
    pub smtp: Option<RawSmtp>,
    pub store: Option<RawStore>,
    #[serde(default)]
    pub feeds: Vec<RawFeed>,
    #[serde(default)]
    pub channels: BTreeMap<String, RawChannel>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Named term lists, used in queries as `@name`.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// What is dropped before any rule sees it.
    #[serde(default)]
    pub filters: Vec<RawFilter>,
    pub semantic: Option<RawSemantic>,
}

/// `[semantic]`: the model topic rules use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSemantic {
    /// `"builtin"` or a model directory.
    pub model: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub state_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<Duration>,
    pub first_poll: Option<FirstPoll>,
    pub max_concurrent_fetches: Option<usize>,
    pub max_fetches_per_host: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub fetch_timeout: Option<Duration>,
    pub max_feed_bytes: Option<u64>,
    pub delivery_attempts: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub delivery_lifetime: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub dedupe_window: Option<Duration>,
    pub copy_threshold: Option<f32>,
    pub merge_rewrites: Option<bool>,
    pub rewrite_threshold: Option<f32>,
    #[serde(default, with = "humantime_serde")]
    pub forget_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub keep_sent: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub keep_dead: Option<Duration>,
    pub instance: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub max_backoff: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub max_publisher_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// How feeds are asked for over HTTP, unless a feed says otherwise.
    pub user_agent: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, RawHeaderValue>,
    pub proxy: Option<String>,
    pub health_channel: Option<String>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub watch_config: Option<bool>,
    pub backfill_new_rules: Option<bool>,
    pub flood_threshold: Option<usize>,
    pub max_items_per_feed: Option<usize>,
    pub stale_factor: Option<u32>,
    pub broken_after_failures: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub broken_after: Option<Duration>,
}

/// What to do with the items a feed already holds the first time it is polled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirstPoll {
    /// Record them as seen without alerting (so adding a feed does not flood you).
    #[default]
    MarkSeen,
    /// Alert on every matching item, old or new.
    Alert,
}

impl std::fmt::Display for FirstPoll {
    /// As the config file spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FirstPoll::MarkSeen => "mark-seen",
            FirstPoll::Alert => "alert",
        })
    }
}

/// `[store]`: the state on a PostgreSQL database instead of the embedded SQLite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: String,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: String,
    pub port: Option<u16>,
    pub security: Option<Security>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub from: String,
    /// Extra root certificate (PEM) to trust, for relays with a private CA.
    pub ca_file: Option<PathBuf>,
    /// The SHA-256 fingerprint of the relay's own certificate, trusted instead of any
    /// authority (a self-signed relay).
    pub tls_fingerprint: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    pub name: String,
    pub url: String,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub max_age: Option<Duration>,
    #[serde(default)]
    pub fetch_article: bool,
    pub user_agent: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, RawHeaderValue>,
    pub proxy: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// Items matching this query are dropped before the rules see them.
    pub drop: Option<String>,
    /// Only items matching this query go on to the rules.
    pub keep: Option<String>,
}

/// A `[[filters]]` entry: what it matches (words, a topic, or both, as a rule would)
/// is recorded as seen and never matched by a rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    pub name: Option<String>,
    pub drop: Option<String>,
    pub feeds: Option<Vec<String>>,
    pub about: Option<String>,
    pub like: Option<Vec<String>>,
    pub unlike: Option<Vec<String>>,
    pub min_score: Option<f64>,
}

/// A `[channels.<name>]` table: its `type`, the keys every kind shares (pacing,
/// `templates`) and the kind's own, told apart when it is checked.
pub type RawChannel = toml::Table;

/// The pacing keys, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPacing {
    pub digest: Option<String>,
    pub max_per_minute: Option<u32>,
    pub max_in_flight: Option<usize>,
    pub quiet_hours: Option<String>,
    pub feedback: Option<bool>,
}

/// Per-channel overrides of the email templates (minijinja source text).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    pub keywords: Option<Vec<String>>,
    pub query: Option<String>,
    pub feeds: Option<Vec<String>>,
    pub fields: Option<Vec<Field>>,
    pub channels: Vec<String>,
    pub case_sensitive: Option<bool>,
    pub accents: Option<Accents>,
    pub priority: Option<crate::model::Priority>,
    pub about: Option<String>,
    pub like: Option<Vec<String>>,
    pub unlike: Option<Vec<String>>,
    pub min_score: Option<f64>,
}

/// Whether a rule's terms match regardless of accents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accents {
    /// `Lavrov` matches `Lavróv`.
    #[default]
    Fold,
    /// Accents must be as written.
    Strict,
}
