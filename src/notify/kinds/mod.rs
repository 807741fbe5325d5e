//! The kinds of channel, one module each: its table in the config, how that is checked,
//! how `check` describes it, what a reload says changed, and how it sends a message.
//! `kinds!` at the bottom lists them: a new kind is a new file here and one line
//! there.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use lettre::Message;
use lettre::message::Mailbox;
use serde::de::DeserializeOwned;

use super::message::{self, ServiceRequest};
use super::{DeliveryError, Notifier, Post};
use crate::model::{Alert, RawHeaderValue, Secret};
use crate::render::{MessageKind, Templates};

/// Emails (and Maildir files) on their way at once per channel unless
/// `max_in_flight` says: a relay takes several sessions well.
const EMAILS_IN_FLIGHT: usize = 8;
/// Requests (and programs run) on their way at once per channel unless
/// `max_in_flight` says: chat APIs limit how fast one hook may post.
const POSTS_IN_FLIGHT: usize = 4;

/// A key inside a channel's table, for errors: `to`, then `1` for `to[1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Name(&'a str),
    Index(usize),
}

/// What checking a channel's table asks of the config around it: errors that say
/// where, the environment, files beside the config.
pub trait Settings {
    type Error;

    /// `message` about `key`, a path inside the channel's table (empty: the table).
    fn invalid(&self, key: &[Key<'_>], message: String) -> Self::Error;

    /// An environment variable's value.
    fn env(&self, var: &str) -> Option<&str>;

    /// Whether the config has an `[smtp]` section to send email through.
    fn has_smtp(&self) -> bool;

    /// A path as written, relative to the config's folder.
    fn path(&self, written: &Path) -> PathBuf;

    /// A secret from a file (one trailing newline dropped) or an environment
    /// variable, each given as its key and value; at most one of them may be set.
    fn secret(
        &self,
        file: (&str, Option<&Path>),
        env: (&str, Option<&str>),
    ) -> Result<Option<Secret>, Self::Error>;

    /// A value as written, or read from where it says (`{ env = … }`, `{ file = … }`).
    fn value(&self, key: &str, raw: &RawHeaderValue) -> Result<String, Self::Error>;

    /// The table `headers`: HTTP headers, each value as [`Settings::value`] reads it.
    fn headers(
        &self,
        raw: &BTreeMap<String, RawHeaderValue>,
    ) -> Result<Vec<(String, String)>, Self::Error>;

    /// A service's token, from `<name>_file` or `<name>_env` (one of them).
    fn token(
        &self,
        name: &str,
        file: Option<&Path>,
        env: Option<&str>,
    ) -> Result<Secret, Self::Error> {
        let (file_key, env_key) = (format!("{name}_file"), format!("{name}_env"));
        self.secret((&file_key, file), (&env_key, env))?
            .ok_or_else(|| {
                self.invalid(
                    &[Key::Name(&env_key)],
                    format!("set {env_key} or {file_key}: the token stays out of the config"),
                )
            })
    }

    /// An http(s) address at `key` as written, else `default`.
    fn address(
        &self,
        key: &str,
        written: Option<&str>,
        default: &str,
    ) -> Result<url::Url, Self::Error> {
        let text = written.unwrap_or(default);
        url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                self.invalid(&[Key::Name(key)], format!("{text:?} is not an http(s) URL"))
            })
    }
}

/// One message on its way: the alerts (one, unless `kind` gathers several), the
/// channel's name and templates, and the notifier's connections.
pub struct Outgoing<'a> {
    pub channel: &'a str,
    pub alerts: &'a [Alert],
    pub kind: &'a MessageKind,
    pub templates: &'a Templates,
    pub notifier: &'a Notifier,
}

impl Outgoing<'_> {
    /// The message as email, from the channel's templates.
    fn email(&self, from: &Mailbox, to: &[Mailbox]) -> Result<Message, DeliveryError> {
        message::email(
            self.alerts,
            self.kind,
            self.channel,
            self.templates,
            from,
            to,
        )
        .map_err(|e| DeliveryError::fatal(format!("cannot build message: {e}")))
    }

    /// Its webhook id, the same on every retry.
    fn webhook_id(&self) -> String {
        message::webhook_id(self.alerts, self.channel)
    }

    /// The message before a service gives it its shape.
    fn post(&self) -> message::Post<'_> {
        message::post(self.alerts, self.kind, self.channel)
    }

    /// Sends a chat or push service's request (`label` names the service in errors).
    async fn send_request(
        &self,
        label: &str,
        built: Result<ServiceRequest, String>,
    ) -> Result<String, DeliveryError> {
        let ServiceRequest {
            method,
            url,
            shown,
            headers,
            body,
        } = built.map_err(|e| DeliveryError::fatal(format!("cannot build the request: {e}")))?;
        let request = Post {
            label,
            url: &shown,
            target: url,
            method,
            headers: &headers,
            secret: None,
            id: self.webhook_id(),
            body,
        };
        self.notifier.post_webhook(request).await
    }

    /// The message in newshound's own JSON.
    fn json(&self) -> Result<String, DeliveryError> {
        message::json_message(self.alerts, self.kind, self.channel)
            .map_err(|e| DeliveryError::fatal(format!("cannot encode alert: {e}")))
    }
}

/// A kind of channel.
pub trait Kind: Sized + PartialEq {
    /// Its `type` in the config.
    const NAME: &'static str;
    /// Messages on their way at the same time unless `max_in_flight` says otherwise.
    const IN_FLIGHT: usize = POSTS_IN_FLIGHT;
    /// Whether it takes `digest`, `max_per_minute` and `max_in_flight` (every kind
    /// takes `quiet_hours`).
    const PACED: bool = true;
    /// Whether it takes `templates` (the email's subject, text and HTML).
    const TEMPLATED: bool = false;

    /// Its own keys as written (the pacing keys and `templates` are taken out first).
    type Raw: DeserializeOwned;

    fn check<S: Settings>(raw: Self::Raw, settings: &S) -> Result<Self, S::Error>;

    /// Where it sends, without secrets (for `check`).
    fn describe(&self) -> String;

    /// What a reload says when its own settings changed.
    const CHANGED: &'static str = "service settings changed";

    /// What a reload changed in it, for the log; empty when nothing did.
    fn changes(&self, new: &Self) -> Vec<&'static str> {
        if self == new {
            Vec::new()
        } else {
            vec![Self::CHANGED]
        }
    }

    /// Sends one message; says what the receiver answered.
    fn send(
        &self,
        out: &Outgoing<'_>,
    ) -> impl Future<Output = Result<String, DeliveryError>> + Send;
}

/// Which of the shared keys a kind takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takes {
    pub pacing: bool,
    pub templates: bool,
}

/// Which of the shared keys `K` takes.
fn takes<K: Kind>() -> Takes {
    Takes {
        pacing: K::PACED,
        templates: K::TEMPLATED,
    }
}

/// The pacing keys of a paced kind; every kind takes `quiet_hours`.
pub const PACING: [&str; 3] = ["digest", "max_per_minute", "max_in_flight"];

impl Takes {
    /// The shared keys, in the order the guide lists them.
    pub fn keys(self) -> Vec<&'static str> {
        let pacing = if self.pacing { &PACING[..] } else { &[] };
        let templates = if self.templates {
            &["templates"][..]
        } else {
            &[]
        };
        let feedback = if self.pacing { &["feedback"][..] } else { &[] };
        [pacing, &["quiet_hours"], feedback, templates].concat()
    }
}

/// A kind's own keys could not be read: serde's message, and for a key it does not
/// know, the shared keys too (which serde, reading only the kind's own, cannot list).
fn unreadable(error: &toml::de::Error, takes: Takes) -> String {
    let message = error.message().trim();
    if !message.starts_with("unknown field") {
        return message.to_owned();
    }
    let shared: Vec<String> = takes.keys().iter().map(|k| format!("`{k}`")).collect();
    format!(
        "{message}; or one every such channel takes: {}",
        shared.join(", ")
    )
}

/// Declares the kinds: their modules, the [`Transport`] enum with one variant each,
/// and the dispatch from a `type` or a variant to the kind's own code.
macro_rules! kinds {
    ($($(#[$attr:meta])* $module:ident :: $kind:ident,)+) => {
        $($(#[$attr])* pub mod $module;)+
        $($(#[$attr])* pub use $module::$kind;)+

        /// Where a channel's messages go, and how: one of the kinds.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Transport {
            $($(#[$attr])* $kind($kind),)+
        }

        /// Every kind's `type`, in the order they are listed.
        pub const NAMES: &[&str] = &[$($(#[$attr])* <$kind as Kind>::NAME,)+];

        impl Transport {
            /// Which shared keys the kind called `name` takes; `None` when there is
            /// no such kind.
            pub fn takes(name: &str) -> Option<Takes> {
                $($(#[$attr])* if name == <$kind as Kind>::NAME {
                    return Some(takes::<$kind>());
                })+
                None
            }

            /// Checks the table of a channel of the kind called `name` (a name
            /// [`Transport::takes`] knows), its shared keys already taken out.
            pub fn check<S: Settings>(
                name: &str,
                table: toml::Table,
                settings: &S,
            ) -> Result<Transport, S::Error> {
                $($(#[$attr])* if name == <$kind as Kind>::NAME {
                    let raw = toml::Value::Table(table)
                        .try_into()
                        .map_err(|e| settings.invalid(&[], unreadable(&e, takes::<$kind>())))?;
                    return Ok(Transport::$kind(<$kind as Kind>::check(raw, settings)?));
                })+
                Err(settings.invalid(&[Key::Name("type")], format!("no channel type {name:?}")))
            }

            /// The kind's `type`.
            pub fn name(&self) -> &'static str {
                match self {
                    $($(#[$attr])* Transport::$kind(_) => <$kind as Kind>::NAME,)+
                }
            }

            /// Messages on their way at once unless `max_in_flight` says otherwise.
            pub fn in_flight(&self) -> usize {
                match self {
                    $($(#[$attr])* Transport::$kind(_) => <$kind as Kind>::IN_FLIGHT,)+
                }
            }

            /// Where it sends, without secrets.
            pub fn describe(&self) -> String {
                match self {
                    $($(#[$attr])* Transport::$kind(k) => k.describe(),)+
                }
            }

            /// What a reload changed, for the log.
            pub fn changes(&self, new: &Transport) -> Vec<&'static str> {
                match (self, new) {
                    $($(#[$attr])* (Transport::$kind(old), Transport::$kind(new)) => old.changes(new),)+
                    _ => vec!["type changed"],
                }
            }

            pub(super) async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
                match self {
                    $($(#[$attr])* Transport::$kind(k) => k.send(out).await,)+
                }
            }
        }
    };
}

kinds! {
    email::Email,
    webhook::Webhook,
    maildir::Maildir,
    atom::Atom,
    exec::Exec,
    telegram::Telegram,
    matrix::Matrix,
    gotify::Gotify,
    pushover::Pushover,
    apprise::Apprise,
    #[cfg(test)]
    lines::Lines,
}
