//! Checking `[channels.*]`: the keys every kind shares (how alerts are gathered and
//! paced, the email templates) here, the kind's own by its module in
//! `notify::kinds`, through [`Settings`] (errors that say where, secrets read from
//! files or the environment).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::check::{Checker, MAX_IN_FLIGHT};
use super::raw::{RawChannel, RawHeaderValue, RawPacing, RawTemplates};
use super::{Channel, ConfigError, Digest, KeyPath, QuietHours, Secret, Templates, Transport};
use crate::notify::kinds::{self, Key, Settings};

impl Checker<'_> {
    /// The channels, each checked; `has_smtp` says whether email channels can send.
    pub(super) fn check_channels(
        &self,
        raw: BTreeMap<String, RawChannel>,
        has_smtp: bool,
        base: &Path,
    ) -> Result<BTreeMap<String, Channel>, ConfigError> {
        raw.into_iter()
            .map(|(name, table)| {
                let settings = ChannelSettings {
                    checker: self,
                    key: KeyPath::default().key("channels").key(name.clone()),
                    base,
                    has_smtp,
                };
                Ok((name, settings.channel(table)?))
            })
            .collect()
    }
}

/// Where a channel's table is checked: the checker, the table's key, the config's
/// folder.
struct ChannelSettings<'a> {
    checker: &'a Checker<'a>,
    key: KeyPath,
    base: &'a Path,
    has_smtp: bool,
}

impl ChannelSettings<'_> {
    /// One `[channels.<name>]` table.
    fn channel(&self, mut table: RawChannel) -> Result<Channel, ConfigError> {
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            Some(other) => {
                return Err(self.at(
                    &["type"],
                    format!("expected a string, found {}", other.type_str()),
                ));
            }
            None => return Err(self.at(&[], "missing field `type`".into())),
        };
        let Some(takes) = Transport::takes(&kind) else {
            let expected: Vec<String> = kinds::NAMES.iter().map(|n| format!("`{n}`")).collect();
            return Err(self.at(
                &["type"],
                format!(
                    "unknown variant `{kind}`, expected one of {}",
                    expected.join(", ")
                ),
            ));
        };
        let shared = takes.keys();
        let pacing: RawPacing = self.take(&mut table, |key| {
            key != "templates" && shared.contains(&key)
        })?;
        let templates = match takes.templates {
            true => table.remove("templates"),
            false => None,
        };
        let transport = Transport::check(&kind, table, self)?;
        let templates = templates
            .map(|t| t.try_into::<RawTemplates>())
            .transpose()
            .map_err(|e| self.at(&[], e.message().to_owned()))?;
        self.paced(transport, pacing, templates.unwrap_or_default())
    }

    /// The keys of `table` that `wanted` names, taken out and read as a `T`.
    fn take<T: serde::de::DeserializeOwned>(
        &self,
        table: &mut RawChannel,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<T, ConfigError> {
        let keys: Vec<String> = table.keys().filter(|k| wanted(k)).cloned().collect();
        let taken: RawChannel = keys
            .into_iter()
            .filter_map(|k| table.remove(&k).map(|value| (k, value)))
            .collect();
        toml::Value::Table(taken)
            .try_into()
            .map_err(|e| self.at(&[], e.message().to_owned()))
    }

    /// The channel, its pacing and templates checked.
    fn paced(
        &self,
        transport: Transport,
        pacing: RawPacing,
        templates: RawTemplates,
    ) -> Result<Channel, ConfigError> {
        let quiet_hours = pacing
            .quiet_hours
            .map(|q| QuietHours::parse(&q).map_err(|m| self.at(&["quiet_hours"], m)))
            .transpose()?;
        let digest = pacing
            .digest
            .map(|d| Digest::parse(&d).map_err(|m| self.at(&["digest"], m)))
            .transpose()?;
        if pacing.max_per_minute == Some(0) {
            return Err(self.at(
                &["max_per_minute"],
                "must be at least 1; leave it out for no limit".into(),
            ));
        }
        let max_in_flight = pacing.max_in_flight.unwrap_or(transport.in_flight());
        if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
            return Err(self.at(
                &["max_in_flight"],
                format!("must be from 1 to {MAX_IN_FLIGHT}"),
            ));
        }
        let RawTemplates {
            subject,
            text,
            html,
        } = templates;
        let templates = Templates::new(subject, text, html).map_err(|e| {
            self.at(
                &["templates", e.which],
                format!("template error: {}", e.message),
            )
        })?;
        Ok(Channel {
            transport,
            digest,
            quiet_hours,
            max_per_minute: pacing.max_per_minute,
            feedback: pacing.feedback.unwrap_or(false),
            max_in_flight,
            templates,
        })
    }

    /// An error at `keys` inside the table.
    fn at(&self, keys: &[&str], message: String) -> ConfigError {
        let key = keys.iter().fold(self.key.clone(), |k, name| k.key(*name));
        self.checker.invalid(key, message)
    }

    /// `keys` inside the table, as the config's key path.
    fn key_of(&self, keys: &[Key<'_>]) -> KeyPath {
        keys.iter().fold(self.key.clone(), |k, part| match part {
            Key::Name(name) => k.key(*name),
            Key::Index(i) => k.index(*i),
        })
    }
}

impl Settings for ChannelSettings<'_> {
    type Error = ConfigError;

    fn invalid(&self, key: &[Key<'_>], message: String) -> ConfigError {
        self.checker.invalid(self.key_of(key), message)
    }

    fn env(&self, var: &str) -> Option<&str> {
        self.checker.env.get(var).map(String::as_str)
    }

    fn has_smtp(&self) -> bool {
        self.has_smtp
    }

    fn path(&self, written: &Path) -> PathBuf {
        self.base.join(written)
    }

    fn secret(
        &self,
        file: (&str, Option<&Path>),
        env: (&str, Option<&str>),
    ) -> Result<Option<Secret>, ConfigError> {
        self.checker
            .read_secret(self.key.clone(), file, env, self.base)
    }

    fn value(&self, key: &str, raw: &RawHeaderValue) -> Result<String, ConfigError> {
        self.checker
            .value_of(self.key.clone().key(key), raw, self.base)
    }

    fn headers(
        &self,
        raw: &BTreeMap<String, RawHeaderValue>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        self.checker.headers(self.key.clone(), raw, self.base)
    }
}
