//! Checking `[channels.*]`: where alerts go, how they are gathered, how fast.

use std::collections::BTreeMap;
use std::path::Path;

use super::check::{
    Checker, DEFAULT_EMAILS_IN_FLIGHT, DEFAULT_EXEC_TIMEOUT, DEFAULT_POSTS_IN_FLIGHT, MAX_IN_FLIGHT,
};
use super::raw::{RawChannel, RawTemplates};
use super::services::Pacing;
use super::{
    Channel, ConfigError, Digest, KeyPath, QuietHours, Secret, Templates, Transport, WebhookFormat,
    webhook_key,
};

impl Checker<'_> {
    /// The channels, each checked; `has_smtp` says whether email channels can send.
    pub(super) fn check_channels(
        &self,
        raw: BTreeMap<String, RawChannel>,
        has_smtp: bool,
        base: &Path,
    ) -> Result<BTreeMap<String, Channel>, ConfigError> {
        raw.into_iter()
            .map(|(name, c)| {
                let channel = self.check_channel(&name, c, has_smtp, base)?;
                Ok((name, channel))
            })
            .collect()
    }

    /// One `[channels.<name>]` table.
    fn check_channel(
        &self,
        name: &str,
        c: RawChannel,
        has_smtp: bool,
        base: &Path,
    ) -> Result<Channel, ConfigError> {
        let key = || KeyPath::default().key("channels").key(name);
        let (transport, digest, max_per_minute, max_in_flight, templates, quiet_hours) = match c {
            RawChannel::Email {
                to,
                digest,
                max_per_minute,
                max_in_flight,
                quiet_hours,
                templates,
            } => {
                if !has_smtp {
                    return Err(self.invalid(key(), "an email channel needs an [smtp] section"));
                }
                self.check_recipients(key().key("to"), &to)?;
                let in_flight = max_in_flight.unwrap_or(DEFAULT_EMAILS_IN_FLIGHT);
                let transport = Transport::Email { to };
                (
                    transport,
                    digest,
                    max_per_minute,
                    in_flight,
                    templates,
                    quiet_hours,
                )
            }
            RawChannel::Webhook {
                url,
                secret_env,
                format,
                method,
                headers,
                body,
                digest,
                max_per_minute,
                max_in_flight,
                quiet_hours,
            } => {
                let shape = RequestShape {
                    method,
                    headers: self.headers(key(), &headers, base)?,
                    body,
                };
                let transport = self.check_webhook(key(), &url, secret_env, format, shape)?;
                let in_flight = max_in_flight.unwrap_or(DEFAULT_POSTS_IN_FLIGHT);
                (
                    transport,
                    digest,
                    max_per_minute,
                    in_flight,
                    None,
                    quiet_hours,
                )
            }
            RawChannel::Maildir {
                path,
                digest,
                max_per_minute,
                max_in_flight,
                quiet_hours,
                templates,
            } => {
                let transport = Transport::Maildir {
                    path: base.join(path),
                };
                let in_flight = max_in_flight.unwrap_or(DEFAULT_EMAILS_IN_FLIGHT);
                (
                    transport,
                    digest,
                    max_per_minute,
                    in_flight,
                    templates,
                    quiet_hours,
                )
            }
            RawChannel::Atom {
                path,
                entries,
                quiet_hours,
            } => {
                let entries = entries.unwrap_or(DEFAULT_ATOM_ENTRIES);
                if !(1..=MAX_ATOM_ENTRIES).contains(&entries) {
                    return Err(self.invalid(
                        key().key("entries"),
                        format!("must be from 1 to {MAX_ATOM_ENTRIES}"),
                    ));
                }
                let transport = Transport::Atom {
                    path: base.join(path),
                    entries,
                };
                // One writer at a time: each delivery rewrites the whole file.
                (transport, None, None, 1, None, quiet_hours)
            }
            RawChannel::Telegram(raw) => paced(self.telegram(key(), raw, base)?),
            RawChannel::Matrix(raw) => paced(self.matrix(key(), raw, base)?),
            RawChannel::Gotify(raw) => paced(self.gotify(key(), raw, base)?),
            RawChannel::Pushover(raw) => paced(self.pushover(key(), raw, base)?),
            RawChannel::Apprise(raw) => paced(self.apprise(key(), raw, base)?),
            RawChannel::Exec {
                command,
                timeout,
                digest,
                max_per_minute,
                max_in_flight,
                quiet_hours,
            } => {
                if command
                    .first()
                    .is_none_or(|program| program.trim().is_empty())
                {
                    return Err(self.invalid(
                        key().key("command"),
                        "name the program to run, like [\"/usr/local/bin/notify\", \"--urgent\"]",
                    ));
                }
                let timeout = match timeout {
                    Some(t) if t.is_zero() => {
                        return Err(self.invalid(key().key("timeout"), "must be more than 0s"));
                    }
                    t => t.unwrap_or(DEFAULT_EXEC_TIMEOUT),
                };
                let transport = Transport::Exec { command, timeout };
                let in_flight = max_in_flight.unwrap_or(DEFAULT_POSTS_IN_FLIGHT);
                (
                    transport,
                    digest,
                    max_per_minute,
                    in_flight,
                    None,
                    quiet_hours,
                )
            }
        };
        let quiet_hours = quiet_hours
            .map(|q| QuietHours::parse(&q).map_err(|m| self.invalid(key().key("quiet_hours"), m)))
            .transpose()?;
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
        Ok(Channel {
            transport,
            digest,
            quiet_hours,
            max_per_minute,
            max_in_flight,
            templates,
        })
    }

    /// An email channel's `to`: at least one address, each one valid.
    fn check_recipients(&self, key: KeyPath, to: &[String]) -> Result<(), ConfigError> {
        if to.is_empty() {
            return Err(self.invalid(key, "list at least one recipient"));
        }
        for (i, addr) in to.iter().enumerate() {
            addr.parse::<lettre::message::Mailbox>().map_err(|e| {
                self.invalid(
                    key.clone().index(i),
                    format!("{addr:?} is not an email address: {e}"),
                )
            })?;
        }
        Ok(())
    }

    /// A webhook channel's URL, format and signing key (read from the environment).
    fn check_webhook(
        &self,
        key: KeyPath,
        url: &str,
        secret_env: Option<String>,
        format: Option<WebhookFormat>,
        shape: RequestShape,
    ) -> Result<Transport, ConfigError> {
        let key = || key.clone();
        if shape.body.is_some() && format.is_some_and(|f| f != WebhookFormat::Json) {
            return Err(self.invalid(
                key().key("body"),
                "a body of your own replaces the format's; leave format out",
            ));
        }
        let method = shape
            .method
            .unwrap_or_else(|| "POST".into())
            .to_ascii_uppercase();
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            return Err(self.invalid(
                key().key("method"),
                format!("{method:?} does not carry a body; use POST, PUT or PATCH"),
            ));
        }
        let body = shape
            .body
            .map(|source| {
                crate::render::BodyTemplate::new(source).map_err(|e| {
                    self.invalid(key().key("body"), format!("template error: {}", e.message))
                })
            })
            .transpose()?;
        let headers = shape
            .headers
            .into_iter()
            .map(|(name, value)| (name, Secret(value)))
            .collect();
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
                        format!("{var} is not a signing key: expected whsec_ and base64"),
                    ));
                }
                Ok(Secret(value.clone()))
            })
            .transpose()?;
        let parsed = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                self.invalid(key().key("url"), format!("{url:?} is not an http(s) URL"))
            })?;
        Ok(Transport::Webhook {
            url: parsed,
            secret,
            format,
            method,
            headers,
            body,
        })
    }
}

/// A service channel's parts, as the other channels give theirs.
fn paced(
    (transport, pacing): (Transport, Pacing),
) -> (
    Transport,
    Option<String>,
    Option<u32>,
    usize,
    Option<RawTemplates>,
    Option<String>,
) {
    (
        transport,
        pacing.digest,
        pacing.max_per_minute,
        pacing.max_in_flight,
        None,
        pacing.quiet_hours,
    )
}

/// An atom channel's feed holds this many entries unless it says otherwise.
const DEFAULT_ATOM_ENTRIES: usize = 50;
const MAX_ATOM_ENTRIES: usize = 10_000;

/// How a webhook's requests look beyond the URL and format, as written.
struct RequestShape {
    method: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<String>,
}
