//! The config file: TOML with `NEWSHOUND__…` environment overrides, read through the
//! `config` crate, then checked into a [`Config`] whose rules are already compiled.
//!
//! Every error names the file, the line, and the key path (see [`ConfigError`]).

mod diff;
mod error;
pub mod opml;
mod raw;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::render::Templates;
pub use error::{ConfigError, Invalid, KeyPath, Origin};
pub use raw::{Accents, FirstPoll, Security, WebhookFormat};
use raw::{RawChannel, RawConfig, RawSmtp, RawTemplates};

use crate::model::{FeedId, FeedSource};
use crate::rules::{Condition, FieldSet, RuleError, RuleSet, RuleSpec};

/// Prefix of environment variables that override config keys (`NEWSHOUND__SMTP__HOST`).
pub const ENV_PREFIX: &str = "NEWSHOUND";

/// A checked, ready-to-use configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    pub daemon: Daemon,
    pub smtp: Option<Smtp>,
    pub feeds: Vec<Feed>,
    pub channels: BTreeMap<String, Channel>,
    pub rules: RuleSet,
    /// The rules as written, in order (what `rules` was compiled from).
    pub rule_specs: Vec<RuleSpec>,
    /// The `[lists]` the rules' queries use.
    pub lists: crate::rules::Lists,
    /// For each rule name, the channels its matches go to.
    pub routes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The longest a failing feed waits between polls.
    pub max_backoff: Duration,
    /// A publisher's `<ttl>` or `max-age` lengthens a feed's interval up to this.
    pub max_publisher_interval: Duration,
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
    /// Reload when the config file changes (besides on SIGHUP).
    pub watch_config: bool,
    /// A rule added by a reload is tried on the items of the last 24 hours.
    pub backfill_new_rules: bool,
    /// A feed is broken after this many failed polls in a row…
    pub broken_after_failures: u32,
    /// …or after failing for this long.
    pub broken_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, Secret)>,
    pub from: String,
    /// PEM of an extra root certificate to trust.
    pub ca_pem: Option<Vec<u8>>,
    /// The SHA-256 digest of the one certificate the relay may present (trusted
    /// instead of any authority).
    pub pinned: Option<[u8; 32]>,
    pub timeout: Duration,
}

/// A string that is never printed: `Debug` and `Display` show `********`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret made in a test.
    #[cfg(test)]
    pub fn for_tests(value: &str) -> Secret {
        Secret(value.to_owned())
    }

    /// The key bytes of a Standard Webhooks secret (`whsec_` + base64).
    pub fn webhook_key(&self) -> Option<Vec<u8>> {
        webhook_key(&self.0)
    }
}

fn webhook_key(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let encoded = secret.trim().strip_prefix("whsec_")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub id: FeedId,
    pub source: FeedSource,
    pub interval: Duration,
}

/// Where alerts go and how they are gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub transport: Transport,
    /// Gather alerts into one message per period instead of one each (email, Maildir).
    pub digest: Option<Digest>,
    /// At most this many messages a minute; the excess is folded into one summary.
    pub max_per_minute: Option<u32>,
    /// At most this many messages on their way at the same time.
    pub max_in_flight: usize,
    /// How email and Maildir messages look.
    pub templates: Templates,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Email {
        to: Vec<String>,
    },
    Webhook {
        url: url::Url,
        /// The Standard Webhooks signing key (`whsec_…`), if payloads are signed.
        secret: Option<Secret>,
        format: WebhookFormat,
    },
    Maildir {
        path: PathBuf,
    },
}

impl Channel {
    pub fn kind(&self) -> &'static str {
        match self.transport {
            Transport::Email { .. } => "email",
            Transport::Webhook { .. } => "webhook",
            Transport::Maildir { .. } => "maildir",
        }
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

impl Config {
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
        let checker = Checker { file, text, env };
        // The file alone first: serde errors then carry a position in the file.
        checker.parse_file()?;
        let raw = checker.merge_env()?;
        checker.check(raw)
    }
}

const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10 * 60);
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// 16 MiB: far above any real feed, low enough that a runaway body cannot hurt.
const DEFAULT_MAX_FEED_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_MAX_CONCURRENT_FETCHES: usize = 32;
/// Two at a time is what browsers' old per-host limit taught sites to expect.
const DEFAULT_MAX_FETCHES_PER_HOST: usize = 2;
/// A mail relay down over a long weekend still gets every alert afterwards.
const DEFAULT_DELIVERY_LIFETIME: Duration = Duration::from_secs(5 * 24 * 60 * 60);
const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Emails (and Maildir files) on their way at once per channel unless
/// `max_in_flight` says: a relay takes several sessions well.
const DEFAULT_EMAILS_IN_FLIGHT: usize = 8;
/// Webhook POSTs on their way at once per channel unless `max_in_flight` says: chat
/// APIs limit how fast one hook may post.
const DEFAULT_POSTS_IN_FLIGHT: usize = 4;
/// The most a channel may have on its way at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// Quiet for ten of its usual gaps: a weekend or a holiday does not trip it.
const DEFAULT_STALE_FACTOR: u32 = 10;
/// A busy news feed rarely adds 50 items between two polls; a re-keyed one does.
const DEFAULT_FLOOD_THRESHOLD: usize = 50;
/// No feed is polled more often than this: `1ns` is a typo, not a wish.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// A feed on the web is polled at most this often: a typo of `5ms` for `5m` must not
/// hammer a publisher. Local files may be read as often as `MIN_INTERVAL`.
const MIN_WEB_INTERVAL: Duration = Duration::from_secs(30);
/// Five failures at the default 10-minute interval: most outages are over by then.
const DEFAULT_BROKEN_AFTER_FAILURES: u32 = 5;
const DEFAULT_BROKEN_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Polite to publishers, yet an alert is at most an hour late.
const DEFAULT_MAX_PUBLISHER_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// A feed that keeps failing is still tried at least once a day.
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    env: &'a HashMap<String, String>,
}

impl Checker<'_> {
    fn invalid(&self, key: KeyPath, message: impl Into<String>) -> ConfigError {
        let origin = match key.line_in(self.text) {
            Some(line) => Origin::Line(line),
            None => Origin::Environment,
        };
        self.invalid_at(origin, key, message)
    }

    fn invalid_at(&self, origin: Origin, key: KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid(Box::new(Invalid {
            file: self.file.to_owned(),
            origin,
            key,
            message: message.into(),
        }))
    }

    /// A count under `[daemon]`: `default` when absent, an error when zero.
    fn at_least_one<T: Copy + PartialEq + From<u8>>(
        &self,
        value: Option<T>,
        key: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        match value {
            Some(n) if n == T::from(0) => Err(self.invalid(
                KeyPath::default().key("daemon").key(key),
                "must be at least 1",
            )),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    }

    fn parse_file(&self) -> Result<RawConfig, ConfigError> {
        let deserializer = toml::de::Deserializer::parse(self.text)
            .map_err(|e| self.toml_error(KeyPath::default(), &e))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = KeyPath::from_serde(e.path());
            self.toml_error(key, e.inner())
        })
    }

    fn toml_error(&self, key: KeyPath, e: &toml::de::Error) -> ConfigError {
        let origin = match e.span() {
            Some(span) => Origin::Line(error::line_of(self.text, span.start)),
            None => key.line_in(self.text).map_or(Origin::File, Origin::Line),
        };
        self.invalid_at(origin, key, e.message().trim().to_owned())
    }

    fn merge_env(&self) -> Result<RawConfig, ConfigError> {
        let overrides: config::Map<String, String> = self
            .env
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let merged = config::Config::builder()
            .add_source(config::File::from_str(self.text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(overrides)),
            )
            .build()
            .and_then(|c| c.try_deserialize::<RawConfig>());
        merged.map_err(|e| self.invalid_at(Origin::Environment, KeyPath::default(), e.to_string()))
    }

    fn check(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let base = self.file.parent().unwrap_or(Path::new("."));
        let d = raw.daemon;
        let daemon_key = || KeyPath::default().key("daemon");
        let positive = |value: Option<Duration>, key: &str, default: Duration| match value {
            Some(v) if v.is_zero() => {
                Err(self.invalid(daemon_key().key(key), "must be more than 0s"))
            }
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let daemon = Daemon {
            state_dir: match (d.state_dir, self.env.get("STATE_DIRECTORY")) {
                (Some(dir), _) => base.join(dir),
                // systemd's StateDirectory= may list several folders, colon-separated.
                (None, Some(systemd)) => {
                    PathBuf::from(systemd.split(':').next().unwrap_or(systemd))
                }
                (None, None) => base.join("state"),
            },
            poll_interval: match positive(d.poll_interval, "poll_interval", DEFAULT_POLL_INTERVAL)?
            {
                short if short < MIN_INTERVAL => {
                    return Err(self.invalid(
                        KeyPath::default().key("daemon").key("poll_interval"),
                        format!(
                            "{} is under the {} minimum",
                            humantime::format_duration(short),
                            humantime::format_duration(MIN_INTERVAL)
                        ),
                    ));
                }
                interval => interval,
            },
            first_poll: d.first_poll.unwrap_or_default(),
            max_concurrent_fetches: self.at_least_one(
                d.max_concurrent_fetches,
                "max_concurrent_fetches",
                DEFAULT_MAX_CONCURRENT_FETCHES,
            )?,
            max_fetches_per_host: self.at_least_one(
                d.max_fetches_per_host,
                "max_fetches_per_host",
                DEFAULT_MAX_FETCHES_PER_HOST,
            )?,
            fetch_timeout: positive(d.fetch_timeout, "fetch_timeout", DEFAULT_FETCH_TIMEOUT)?,
            max_backoff: positive(d.max_backoff, "max_backoff", DEFAULT_MAX_BACKOFF)?,
            max_publisher_interval: positive(
                d.max_publisher_interval,
                "max_publisher_interval",
                DEFAULT_MAX_PUBLISHER_INTERVAL,
            )?,
            health_channel: d.health_channel,
            watch_config: d.watch_config.unwrap_or(true),
            backfill_new_rules: d.backfill_new_rules.unwrap_or(false),
            listen: d
                .listen
                .map(|text| {
                    text.parse().map_err(|_| {
                        self.invalid(
                            daemon_key().key("listen"),
                            format!("{text:?} is not an address and port, like \"127.0.0.1:9185\""),
                        )
                    })
                })
                .transpose()?,
            flood_threshold: d.flood_threshold.unwrap_or(DEFAULT_FLOOD_THRESHOLD),
            max_items_per_feed: self.at_least_one(
                d.max_items_per_feed,
                "max_items_per_feed",
                crate::model::DEFAULT_MAX_ITEMS_PER_FEED,
            )?,
            stale_factor: self.at_least_one(
                d.stale_factor,
                "stale_factor",
                DEFAULT_STALE_FACTOR,
            )?,
            broken_after_failures: self.at_least_one(
                d.broken_after_failures,
                "broken_after_failures",
                DEFAULT_BROKEN_AFTER_FAILURES,
            )?,
            broken_after: positive(d.broken_after, "broken_after", DEFAULT_BROKEN_AFTER)?,
            max_feed_bytes: self.at_least_one(
                d.max_feed_bytes,
                "max_feed_bytes",
                DEFAULT_MAX_FEED_BYTES,
            )?,
            delivery_attempts: self.at_least_one(
                d.delivery_attempts,
                "delivery_attempts",
                u32::MAX,
            )?,
            delivery_lifetime: positive(
                d.delivery_lifetime,
                "delivery_lifetime",
                DEFAULT_DELIVERY_LIFETIME,
            )?,
            dedupe_window: d.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW),
        };
        let smtp = raw.smtp.map(|s| self.check_smtp(s, base)).transpose()?;

        let mut feeds = Vec::with_capacity(raw.feeds.len());
        let mut feed_names: HashMap<&str, usize> = HashMap::new();
        for (i, f) in raw.feeds.iter().enumerate() {
            let key = || KeyPath::default().key("feeds").index(i);
            let name = f.name.trim();
            if name.is_empty() {
                return Err(self.invalid(key().key("name"), "a feed needs a non-empty name"));
            }
            if let Some(first) = feed_names.insert(name, i) {
                return Err(self.invalid(
                    key().key("name"),
                    format!(
                        "duplicate feed name {name:?} (also feeds[{first}]); names must be unique"
                    ),
                ));
            }
            let source = FeedSource::parse(f.url.trim(), base)
                .map_err(|m| self.invalid(key().key("url"), m))?;
            let interval = match f.interval {
                Some(v) if v.is_zero() => {
                    return Err(self.invalid(key().key("interval"), "must be more than 0s"));
                }
                // A web feed gets the web's minimum, with a hint, below.
                Some(v) if v < MIN_INTERVAL && !matches!(source, FeedSource::Http(_)) => {
                    return Err(self.invalid(
                        key().key("interval"),
                        format!(
                            "{} is under the {} minimum",
                            humantime::format_duration(v),
                            humantime::format_duration(MIN_INTERVAL)
                        ),
                    ));
                }
                v => v.unwrap_or(daemon.poll_interval),
            };
            if matches!(source, FeedSource::Http(_)) && interval < MIN_WEB_INTERVAL {
                let too_short = format!(
                    "{} is under the {} minimum for a feed on the web",
                    humantime::format_duration(interval),
                    humantime::format_duration(MIN_WEB_INTERVAL)
                );
                let hint = "did you mean minutes, like \"5m\"?";
                return Err(match f.interval {
                    Some(_) => self.invalid(key().key("interval"), format!("{too_short}; {hint}")),
                    None => self.invalid(
                        KeyPath::default().key("daemon").key("poll_interval"),
                        format!(
                            "{too_short} ({}, {name}, has no interval of its own); {hint}",
                            key()
                        ),
                    ),
                });
            }
            feeds.push(Feed {
                id: FeedId(name.to_owned()),
                source,
                interval,
            });
        }

        let mut channels = BTreeMap::new();
        for (name, c) in raw.channels {
            let key = || KeyPath::default().key("channels").key(name.clone());
            let (transport, digest, max_per_minute, max_in_flight, templates) = match c {
                RawChannel::Email {
                    to,
                    digest,
                    max_per_minute,
                    max_in_flight,
                    templates,
                } => {
                    if smtp.is_none() {
                        return Err(self.invalid(key(), "an email channel needs an [smtp] section"));
                    }
                    if to.is_empty() {
                        return Err(self.invalid(key().key("to"), "list at least one recipient"));
                    }
                    for (i, addr) in to.iter().enumerate() {
                        addr.parse::<lettre::message::Mailbox>().map_err(|e| {
                            self.invalid(
                                key().key("to").index(i),
                                format!("{addr:?} is not an email address: {e}"),
                            )
                        })?;
                    }
                    let in_flight = max_in_flight.unwrap_or(DEFAULT_EMAILS_IN_FLIGHT);
                    let transport = Transport::Email { to };
                    (transport, digest, max_per_minute, in_flight, templates)
                }
                RawChannel::Webhook {
                    url,
                    secret_env,
                    format,
                    max_per_minute,
                    max_in_flight,
                } => {
                    let format = format.unwrap_or_default();
                    if secret_env.is_some() && format != WebhookFormat::Json {
                        return Err(self.invalid(
                            key().key("secret_env"),
                            "only format = \"json\" is signed; slack, discord and ntfy check their own URLs",
                        ));
                    }
                    let secret = secret_env
                        .map(|var| {
                            let value = self.env.get(&var).ok_or_else(|| {
                                self.invalid(
                                    key().key("secret_env"),
                                    format!("environment variable {var} is not set"),
                                )
                            })?;
                            if webhook_key(value).is_none() {
                                return Err(self.invalid(
                                    key().key("secret_env"),
                                    format!(
                                        "{var} is not a signing key: expected whsec_ and base64"
                                    ),
                                ));
                            }
                            Ok(Secret(value.clone()))
                        })
                        .transpose()?;
                    let parsed = url::Url::parse(&url)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .ok_or_else(|| {
                            self.invalid(key().key("url"), format!("{url:?} is not an http(s) URL"))
                        })?;
                    let transport = Transport::Webhook {
                        url: parsed,
                        secret,
                        format,
                    };
                    let in_flight = max_in_flight.unwrap_or(DEFAULT_POSTS_IN_FLIGHT);
                    (transport, None, max_per_minute, in_flight, None)
                }
                RawChannel::Maildir {
                    path,
                    digest,
                    max_per_minute,
                    max_in_flight,
                    templates,
                } => {
                    let transport = Transport::Maildir {
                        path: base.join(path),
                    };
                    let in_flight = max_in_flight.unwrap_or(DEFAULT_EMAILS_IN_FLIGHT);
                    (transport, digest, max_per_minute, in_flight, templates)
                }
            };
            let digest = digest
                .map(|d| Digest::parse(&d).map_err(|m| self.invalid(key().key("digest"), m)))
                .transpose()?;
            if max_per_minute == Some(0) {
                return Err(self.invalid(
                    key().key("max_per_minute"),
                    "must be at least 1; leave it out for no limit",
                ));
            }
            if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
                return Err(self.invalid(
                    key().key("max_in_flight"),
                    format!("must be from 1 to {MAX_IN_FLIGHT}"),
                ));
            }
            let RawTemplates {
                subject,
                text,
                html,
            } = templates.unwrap_or_default();
            let templates = Templates::new(subject, text, html).map_err(|e| {
                self.invalid(
                    key().key("templates").key(e.which),
                    format!("template error: {}", e.message),
                )
            })?;
            let channel = Channel {
                transport,
                digest,
                max_per_minute,
                max_in_flight,
                templates,
            };
            channels.insert(name, channel);
        }

        if let Some(channel) = &daemon.health_channel
            && !channels.contains_key(channel)
        {
            return Err(self.invalid(
                daemon_key().key("health_channel"),
                format!("unknown channel {channel:?}; define it as [channels.{channel}]"),
            ));
        }

        let mut specs = Vec::with_capacity(raw.rules.len());
        let mut routes = BTreeMap::new();
        for (i, r) in raw.rules.iter().enumerate() {
            let key = || KeyPath::default().key("rules").index(i);
            let name = r.name.trim();
            if name.is_empty() {
                return Err(self.invalid(key().key("name"), "a rule needs a non-empty name"));
            }
            if routes.contains_key(name) {
                return Err(self.invalid(
                    key().key("name"),
                    format!("duplicate rule name {name:?}; names must be unique"),
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
                    if !feed_names.contains_key(feed.as_str()) {
                        return Err(self.invalid(
                            key().key("feeds").index(f),
                            format!(
                                "unknown feed {feed:?}; it must be the name of a [[feeds]] entry"
                            ),
                        ));
                    }
                }
            }
            let condition = match (&r.keywords, &r.query) {
                (Some(keywords), None) => Condition::Keywords(keywords.clone()),
                (None, Some(query)) => Condition::Query(query.clone()),
                (Some(_), Some(_)) => {
                    return Err(self.invalid(
                        key().key("query"),
                        "a rule has `keywords` or `query`, not both",
                    ));
                }
                (None, None) => {
                    return Err(self.invalid(
                        key(),
                        "a rule needs `keywords = [...]` or `query = \"...\"`",
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
            });
        }
        let rules = RuleSet::compile(&specs, &raw.lists).map_err(|e| {
            let rule = KeyPath::default().key("rules").index(e.rule);
            let key = match e.error {
                RuleError::EmptyKeyword { index } => rule.key("keywords").index(index),
                RuleError::NoKeywords => rule.key("keywords"),
                RuleError::NoFields => rule.key("fields"),
                RuleError::Query { .. } => rule.key("query"),
                RuleError::Automaton(_) => rule,
            };
            self.invalid(key, e.error.to_string())
        })?;

        Ok(Config {
            file: self.file.to_owned(),
            daemon,
            smtp,
            feeds,
            channels,
            rules,
            rule_specs: specs,
            lists: raw.lists,
            routes,
        })
    }

    fn check_smtp(&self, s: RawSmtp, base: &Path) -> Result<Smtp, ConfigError> {
        let key = || KeyPath::default().key("smtp");
        let security = s.security.unwrap_or_default();
        if security == Security::None && !is_loopback(&s.host) {
            return Err(self.invalid(
                key().key("security"),
                format!("\"none\" would send mail and password in clear to {:?}; it is only allowed for localhost — use \"starttls\" or \"tls\"", s.host),
            ));
        }
        let password = match (&s.password_file, &s.password_env) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    key().key("password_env"),
                    "set password_file or password_env, not both",
                ));
            }
            (Some(path), None) => {
                let path = base.join(path);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.invalid(
                        key().key("password_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Some(Secret(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
            (None, Some(var)) => {
                let value = self.env.get(var).ok_or_else(|| {
                    self.invalid(
                        key().key("password_env"),
                        format!("environment variable {var} is not set"),
                    )
                })?;
                Some(Secret(value.clone()))
            }
            (None, None) => None,
        };
        let credentials = match (s.username, password) {
            (Some(user), Some(pass)) => Some((user, pass)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.invalid(
                    key().key("username"),
                    "a username needs password_file or password_env",
                ));
            }
            (None, Some(_)) => {
                return Err(self.invalid(key(), "a password is set but no username"));
            }
        };
        s.from.parse::<lettre::message::Mailbox>().map_err(|e| {
            self.invalid(
                key().key("from"),
                format!("{:?} is not an email address: {e}", s.from),
            )
        })?;
        let ca_pem = s
            .ca_file
            .map(|p| {
                let path = base.join(p);
                let pem = std::fs::read(&path).map_err(|e| {
                    self.invalid(
                        key().key("ca_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                // TLS setup would accept a file without certificates and trust nothing.
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(self.invalid(
                        key().key("ca_file"),
                        format!(
                            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                            path.display()
                        ),
                    ));
                }
                Ok(pem)
            })
            .transpose()?;
        let pinned = s
            .tls_fingerprint
            .map(|text| {
                if security == Security::None {
                    return Err(self.invalid(
                        key().key("tls_fingerprint"),
                        "a certificate fingerprint needs security = \"starttls\" or \"tls\"",
                    ));
                }
                if ca_pem.is_some() {
                    return Err(self.invalid(
                        key().key("tls_fingerprint"),
                        "set either ca_file (trust an authority) or tls_fingerprint (trust one certificate), not both",
                    ));
                }
                parse_fingerprint(&text).ok_or_else(|| {
                    self.invalid(
                        key().key("tls_fingerprint"),
                        format!(
                            "{text:?} is not a SHA-256 fingerprint: 64 hex digits, colons allowed, as \
                             `openssl x509 -in cert.pem -noout -fingerprint -sha256` prints it"
                        ),
                    )
                })
            })
            .transpose()?;
        let port = s.port.unwrap_or(match security {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        Ok(Smtp {
            host: s.host,
            port,
            security,
            credentials,
            from: s.from,
            ca_pem,
            pinned,
            timeout: s.timeout.unwrap_or(DEFAULT_SMTP_TIMEOUT),
        })
    }
}

/// A SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it
/// (`sha256 Fingerprint=AB:CD:…`), or as bare hex, with or without `SHA256:`.
fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let hex = text.rsplit(['=', ' ']).next().unwrap_or(text);
    let hex = hex
        .strip_prefix("SHA256:")
        .or_else(|| hex.strip_prefix("sha256:"))
        .unwrap_or(hex);
    let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(digits.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
