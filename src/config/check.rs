//! Checking a raw config into a [`Config`]: defaults, limits, and every error with
//! its file, line and key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::raw::{RawConfig, RawDaemon, RawFeed, RawStore};
use super::*;
use crate::rules::{FilterSpec, Filters};

pub(super) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10 * 60);
pub(super) const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// 16 MiB: far above any real feed, low enough that a runaway body cannot hurt.
pub(super) const DEFAULT_MAX_FEED_BYTES: u64 = 16 * 1024 * 1024;
pub(super) const DEFAULT_MAX_CONCURRENT_FETCHES: usize = 32;
/// Two at a time is what browsers' old per-host limit taught sites to expect.
pub(super) const DEFAULT_MAX_FETCHES_PER_HOST: usize = 2;
/// A mail relay down over a long weekend still gets every alert afterwards.
pub(super) const DEFAULT_DELIVERY_LIFETIME: Duration = Duration::from_secs(5 * 24 * 60 * 60);
pub(super) const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Chosen on the labelled set (`cargo bench --bench copies`): between the least
/// similar copy (0.44) and the most similar decoy (0.28), every copy found and no
/// other story merged.
pub(super) const DEFAULT_COPY_THRESHOLD: f32 = 0.35;
/// A season: an item that left its feed is not coming back.
pub(super) const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// A month of sent alerts to replay or look back on.
pub(super) const DEFAULT_KEEP_SENT: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Dead letters and held alerts wait for someone to look at them longer.
pub(super) const DEFAULT_KEEP_DEAD: Duration = Duration::from_secs(90 * 24 * 60 * 60);
pub(super) const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a channel may have on its way at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// Quiet for ten of its usual gaps: a weekend or a holiday does not trip it.
pub(super) const DEFAULT_STALE_FACTOR: u32 = 10;
/// A busy news feed rarely adds 50 items between two polls; a re-keyed one does.
pub(super) const DEFAULT_FLOOD_THRESHOLD: usize = 50;
/// No feed is polled more often than this: `1ns` is a typo, not a wish.
pub(super) const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// A feed on the web is polled at most this often: a typo of `5ms` for `5m` must not
/// hammer a publisher. Local files may be read as often as `MIN_INTERVAL`.
pub(super) const MIN_WEB_INTERVAL: Duration = Duration::from_secs(30);
/// Five failures at the default 10-minute interval: most outages are over by then.
pub(super) const DEFAULT_BROKEN_AFTER_FAILURES: u32 = 5;
pub(super) const DEFAULT_BROKEN_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Polite to publishers, yet an alert is at most an hour late.
pub(super) const DEFAULT_MAX_PUBLISHER_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// A feed that keeps failing is still tried at least once a day.
pub(super) const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);

pub(super) struct Checker<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) env: &'a HashMap<String, String>,
    /// The files `include` added, and where their entries sit.
    pub(super) included: &'a Included,
}

impl Checker<'_> {
    /// An error about `key`, placed in the file (main or included) that holds it.
    pub(super) fn invalid(&self, key: KeyPath, message: impl Into<String>) -> ConfigError {
        let (file, origin, key) = self.origin_of(key);
        ConfigError::Invalid(Box::new(Invalid {
            file,
            origin,
            key,
            message: message.into(),
        }))
    }

    pub(super) fn invalid_at(
        &self,
        origin: Origin,
        key: KeyPath,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid(Box::new(Invalid {
            file: self.file.to_owned(),
            origin,
            key,
            message: message.into(),
        }))
    }

    /// A count under `[daemon]`: `default` when absent, an error when zero.
    pub(super) fn at_least_one<T: Copy + PartialEq + From<u8>>(
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

    /// A `[daemon]` duration that must be more than zero, or its default.
    fn positive(
        &self,
        value: Option<Duration>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.positive_at(KeyPath::default().key("daemon").key(key), value, default)
    }

    /// The duration at `key`, which must be more than zero, or its default.
    pub(super) fn positive_at(
        &self,
        key: KeyPath,
        value: Option<Duration>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            Some(v) if v.is_zero() => Err(self.invalid(key, "must be more than 0s")),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    }

    /// A `[daemon]` fraction, when it is set: more than 0 and at most 1.
    fn fraction(&self, value: Option<f32>, key: &str) -> Result<Option<f32>, ConfigError> {
        match value {
            Some(v) if !(v > 0.0 && v <= 1.0) => Err(self.invalid(
                KeyPath::default().key("daemon").key(key),
                format!("{v} is not a fraction: it must be more than 0 and at most 1"),
            )),
            v => Ok(v),
        }
    }

    /// `daemon.listen`: an address and port.
    fn listen(&self, text: Option<String>) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        text.map(|text| {
            text.parse().map_err(|_| {
                self.invalid(
                    KeyPath::default().key("daemon").key("listen"),
                    format!("{text:?} is not an address and port, like \"127.0.0.1:9185\""),
                )
            })
        })
        .transpose()
    }

    /// `daemon.public_url`: an http(s) URL.
    fn public_url(&self, text: Option<String>) -> Result<Option<url::Url>, ConfigError> {
        text.map(|text| {
            url::Url::parse(text.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or_else(|| {
                    self.invalid(
                        KeyPath::default().key("daemon").key("public_url"),
                        format!(
                            "{text:?} is not an http(s) URL, like \"https://newshound.example.org\""
                        ),
                    )
                })
        })
        .transpose()
    }

    /// The file as `T`, with serde's errors placed in it.
    pub(super) fn parse_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
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

    /// The `NEWSHOUND__…` variables of the environment: the settings it overrides.
    pub(super) fn overrides(&self) -> config::Map<String, String> {
        self.env
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The file with the environment's `overrides` merged in.
    pub(super) fn merge_env(
        &self,
        overrides: config::Map<String, String>,
    ) -> Result<RawConfig, ConfigError> {
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

    pub(super) fn check(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let base = self.file.parent().unwrap_or(Path::new("."));
        let daemon = self.check_daemon(raw.daemon, base)?;
        let smtp = raw.smtp.map(|s| self.check_smtp(s, base)).transpose()?;
        let store = raw.store.map(|s| self.check_store(s, base)).transpose()?;
        let feeds = self.check_feeds(&raw.feeds, &daemon, base)?;
        let channels = self.check_channels(raw.channels, smtp.is_some(), base)?;

        if let Some(channel) = &daemon.health_channel
            && !channels.contains_key(channel)
        {
            return Err(self.invalid(
                KeyPath::default().key("daemon").key("health_channel"),
                format!("unknown channel {channel:?}; define it as [channels.{channel}]"),
            ));
        }

        if let Some((name, _)) = channels.iter().find(|(_, c)| c.feedback)
            && (daemon.listen.is_none() || daemon.public_url.is_none())
        {
            return Err(self.invalid(
                KeyPath::default()
                    .key("channels")
                    .key(name.clone())
                    .key("feedback"),
                "feedback links need daemon.listen (where newshound answers them) and \
                 daemon.public_url (the address people reach it at); set both",
            ));
        }
        let (specs, routes) = self.check_rules(&raw.rules, &feeds, &channels)?;
        let filter_specs = self.check_filters(&raw.filters, &raw.feeds, &feeds)?;
        let topics = specs
            .iter()
            .chain(filter_specs.iter().map(|(f, _)| &f.rule));
        let semantic = if daemon.merge_rewrites || topics.into_iter().any(|s| s.topic.is_some()) {
            Some(self.load_model(raw.semantic.unwrap_or_default(), base)?)
        } else {
            None
        };
        let compiled = match &semantic {
            Some(model) => RuleSet::compile_with(&specs, &raw.lists, model.clone()),
            None => RuleSet::compile(&specs, &raw.lists),
        };
        let rules = compiled.map_err(|e| {
            let rule = KeyPath::default().key("rules").index(e.rule);
            let key = match e.error {
                RuleError::EmptyKeyword { index } => rule.key("keywords").index(index),
                RuleError::NoKeywords => rule.key("keywords"),
                RuleError::NoFields => rule.key("fields"),
                RuleError::Query { .. } => rule.key("query"),
                RuleError::Automaton(_) | RuleError::NoModel => rule,
                RuleError::EmptyAbout => rule.key("about"),
            };
            self.invalid(key, e.error.to_string())
        })?;

        let (filter_specs, filter_keys): (Vec<FilterSpec>, Vec<KeyPath>) =
            filter_specs.into_iter().unzip();
        let embedder = semantic
            .clone()
            .map(|m| m as Arc<dyn crate::rules::Embedder>);
        let filters = Filters::compile(&filter_specs, &raw.lists, embedder)
            .map_err(|e| self.invalid(filter_keys[e.rule].clone(), e.error.to_string()))?;

        Ok(Config {
            file: self.file.to_owned(),
            included: self.included.files(),
            include: raw
                .include
                .iter()
                .map(|pattern| super::Include::new(base, pattern))
                .collect(),
            filters,
            filter_specs,
            daemon,
            smtp,
            store,
            feeds,
            channels,
            rules,
            rule_specs: specs,
            semantic,
            lists: raw.lists,
            routes,
            fingerprint: std::sync::OnceLock::new(),
        })
    }

    /// `[store]`: a PostgreSQL URL, and its password in the URL or beside it.
    fn check_store(&self, raw: RawStore, base: &Path) -> Result<SharedStore, ConfigError> {
        let key = || KeyPath::default().key("store");
        let url = url::Url::parse(&raw.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "postgres" | "postgresql") && u.has_host())
            .ok_or_else(|| {
                self.invalid(
                    key().key("url"),
                    "not a PostgreSQL URL; write it as \"postgres://user@host:5432/database\"",
                )
            })?;
        let password = self.read_secret(
            key(),
            ("password_file", raw.password_file.as_deref()),
            ("password_env", raw.password_env.as_deref()),
            base,
        )?;
        if password.is_some() && url.password().is_some() {
            return Err(self.invalid(
                key().key("url"),
                "the URL holds a password and so does password_file or password_env; keep one",
            ));
        }
        Ok(SharedStore {
            url: raw.url,
            password,
        })
    }

    /// The `[daemon]` table, with defaults for what it leaves out.
    fn check_daemon(&self, d: RawDaemon, base: &Path) -> Result<Daemon, ConfigError> {
        let poll_interval =
            self.positive(d.poll_interval, "poll_interval", DEFAULT_POLL_INTERVAL)?;
        if poll_interval < MIN_INTERVAL {
            return Err(self.invalid(
                KeyPath::default().key("daemon").key("poll_interval"),
                format!(
                    "{} is under the {} minimum",
                    humantime::format_duration(poll_interval),
                    humantime::format_duration(MIN_INTERVAL)
                ),
            ));
        }
        let dedupe_window = d.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW);
        let keep_sent = self.positive(d.keep_sent, "keep_sent", DEFAULT_KEEP_SENT)?;
        if keep_sent < dedupe_window {
            return Err(self.invalid(
                KeyPath::default().key("daemon").key("keep_sent"),
                format!(
                    "{} is shorter than dedupe_window ({}): a later copy of a story is merged \
                     into the alert sent for it, so that alert must be kept at least as long",
                    humantime::format_duration(keep_sent),
                    humantime::format_duration(dedupe_window)
                ),
            ));
        }
        Ok(Daemon {
            state_dir: match (d.state_dir, self.env.get("STATE_DIRECTORY")) {
                (Some(dir), _) => base.join(dir),
                // systemd's StateDirectory= may list several folders, colon-separated.
                (None, Some(systemd)) => {
                    PathBuf::from(systemd.split(':').next().unwrap_or(systemd))
                }
                (None, None) => base.join("state"),
            },
            poll_interval,
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
            fetch_timeout: self.positive(
                d.fetch_timeout,
                "fetch_timeout",
                DEFAULT_FETCH_TIMEOUT,
            )?,
            max_backoff: self.positive(d.max_backoff, "max_backoff", DEFAULT_MAX_BACKOFF)?,
            max_publisher_interval: self.positive(
                d.max_publisher_interval,
                "max_publisher_interval",
                DEFAULT_MAX_PUBLISHER_INTERVAL,
            )?,
            max_age: d
                .max_age
                .map(|age| self.positive(Some(age), "max_age", age))
                .transpose()?,
            request: self.daemon_request(d.user_agent, &d.headers, d.proxy, base)?,
            health_channel: d.health_channel,
            watch_config: d.watch_config.unwrap_or(true),
            backfill_new_rules: d.backfill_new_rules.unwrap_or(false),
            listen: self.listen(d.listen)?,
            public_url: self.public_url(d.public_url)?,
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
            broken_after: self.positive(d.broken_after, "broken_after", DEFAULT_BROKEN_AFTER)?,
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
            delivery_lifetime: self.positive(
                d.delivery_lifetime,
                "delivery_lifetime",
                DEFAULT_DELIVERY_LIFETIME,
            )?,
            dedupe_window,
            copy_threshold: self
                .fraction(d.copy_threshold, "copy_threshold")?
                .unwrap_or(DEFAULT_COPY_THRESHOLD),
            merge_rewrites: d.merge_rewrites.unwrap_or(false),
            rewrite_threshold: self.fraction(d.rewrite_threshold, "rewrite_threshold")?,
            forget_after: self.positive(d.forget_after, "forget_after", DEFAULT_FORGET_AFTER)?,
            keep_sent,
            keep_dead: self.positive(d.keep_dead, "keep_dead", DEFAULT_KEEP_DEAD)?,
            instance: d
                .instance
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty()),
        })
    }

    /// The `[[feeds]]`: unique names, sources, and intervals within the minimums.
    fn check_feeds(
        &self,
        raw: &[RawFeed],
        daemon: &Daemon,
        base: &Path,
    ) -> Result<Vec<Feed>, ConfigError> {
        let mut feeds = Vec::with_capacity(raw.len());
        let mut feed_names: HashMap<&str, usize> = HashMap::new();
        for (i, f) in raw.iter().enumerate() {
            let key = || KeyPath::default().key("feeds").index(i);
            let name = f.name.trim();
            if name.is_empty() {
                return Err(self.invalid(key().key("name"), "a feed needs a non-empty name"));
            }
            if let Some(first) = feed_names.insert(name, i) {
                return Err(self.invalid(
                    key().key("name"),
                    format!(
                        "duplicate feed name {name:?} (also {}); names must be unique",
                        self.place(&KeyPath::default().key("feeds").index(first).key("name"))
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
            let max_age = match f.max_age {
                Some(age) if age.is_zero() => {
                    return Err(self.invalid(key().key("max_age"), "must be more than 0s"));
                }
                age => age.or(daemon.max_age),
            };
            let request = self.feed_request(key(), f, &source, &daemon.request, base)?;
            feeds.push(Feed {
                id: FeedId(name.to_owned()),
                source,
                interval,
                max_age,
                fetch_article: f.fetch_article,
                request,
            });
        }
        Ok(feeds)
    }
}
