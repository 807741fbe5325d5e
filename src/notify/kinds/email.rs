//! `type = "email"`: a message through the `[smtp]` relay to `to`.

use lettre::message::Mailbox;
use serde::Deserialize;

use super::{EMAILS_IN_FLIGHT, Key, Kind, Outgoing, Settings};
use crate::notify::DeliveryError;

/// The recipients, `to`: its table as written, each address checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub to: Vec<String>,
}

impl Kind for Email {
    const NAME: &'static str = "email";
    const IN_FLIGHT: usize = EMAILS_IN_FLIGHT;
    const TEMPLATED: bool = true;
    const CHANGED: &'static str = "recipients changed";
    type Raw = Self;

    fn check<S: Settings>(raw: Email, settings: &S) -> Result<Email, S::Error> {
        if !settings.has_smtp() {
            return Err(settings.invalid(&[], "an email channel needs an [smtp] section".into()));
        }
        if raw.to.is_empty() {
            return Err(settings.invalid(&[Key::Name("to")], "list at least one recipient".into()));
        }
        for (i, addr) in raw.to.iter().enumerate() {
            addr.parse::<Mailbox>().map_err(|e| {
                settings.invalid(
                    &[Key::Name("to"), Key::Index(i)],
                    format!("{addr:?} is not an email address: {e}"),
                )
            })?;
        }
        Ok(Email { to: raw.to })
    }

    fn describe(&self) -> String {
        self.to.join(", ")
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let Some((relay, from)) = &out.notifier.smtp else {
            return Err(DeliveryError::fatal("no [smtp] section for an email channel"));
        };
        let to = self
            .to
            .iter()
            .map(|a| a.parse::<Mailbox>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DeliveryError::fatal(format!("bad recipient: {e}")))?;
        relay.send(out.email(from, &to)?).await
    }
}
