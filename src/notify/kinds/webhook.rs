//! `type = "webhook"`: an HTTP request to `url` per message, in newshound's own JSON
//! (signed when a key is set), a chat service's shape (Slack, Discord, ntfy), or a
//! body of the user's own.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Key, Kind, Outgoing, Settings};
use crate::model::{RawHeaderValue, Secret};
use crate::notify::{DeliveryError, Post, message};
use crate::render::{BodyTemplate, MessageView};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: url::Url,
    /// The Standard Webhooks signing key (`whsec_…`), if payloads are signed.
    pub secret: Option<Secret>,
    pub format: WebhookFormat,
    /// `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// Sent with every request; values may be tokens.
    pub headers: Vec<(String, Secret)>,
    /// The body, when the channel writes its own (else the format's).
    pub body: Option<BodyTemplate>,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// newshound's own object (DESIGN.md), signable.
    #[default]
    Json,
    /// A Slack incoming webhook message.
    Slack,
    /// A Discord webhook message with an embed.
    Discord,
    /// An ntfy publish (the URL names the topic).
    Ntfy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    url: String,
    /// Environment variable holding the `whsec_…` signing key (Standard Webhooks).
    secret_env: Option<String>,
    format: Option<WebhookFormat>,
    /// `POST` (the default), `PUT` or `PATCH`.
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, RawHeaderValue>,
    /// A minijinja template of the body, instead of the format's.
    body: Option<String>,
}

impl Kind for Webhook {
    const NAME: &'static str = "webhook";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Webhook, S::Error> {
        let invalid = |key: &str, message: String| settings.invalid(&[Key::Name(key)], message);
        let headers = settings.headers(&raw.headers)?;
        if raw.body.is_some() && raw.format.is_some_and(|f| f != WebhookFormat::Json) {
            return Err(invalid(
                "body",
                "a body of your own replaces the format's; leave format out".into(),
            ));
        }
        let method = raw
            .method
            .unwrap_or_else(|| "POST".into())
            .to_ascii_uppercase();
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            return Err(invalid(
                "method",
                format!("{method:?} does not carry a body; use POST, PUT or PATCH"),
            ));
        }
        let body = raw
            .body
            .map(|source| {
                BodyTemplate::new(source)
                    .map_err(|e| invalid("body", format!("template error: {}", e.message)))
            })
            .transpose()?;
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name, Secret::new(value)))
            .collect();
        let format = raw.format.unwrap_or_default();
        if raw.secret_env.is_some() && format != WebhookFormat::Json {
            return Err(invalid(
                "secret_env",
                "only format = \"json\" is signed; slack, discord and ntfy check their own URLs"
                    .into(),
            ));
        }
        let secret = raw
            .secret_env
            .map(|var| {
                let value = settings.env(&var).ok_or_else(|| {
                    invalid(
                        "secret_env",
                        format!("environment variable {var} is not set"),
                    )
                })?;
                let secret = Secret::new(value.to_owned());
                if secret.webhook_key().is_none() {
                    return Err(invalid(
                        "secret_env",
                        format!("{var} is not a signing key: expected whsec_ and base64"),
                    ));
                }
                Ok(secret)
            })
            .transpose()?;
        let url = url::Url::parse(&raw.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid("url", format!("{:?} is not an http(s) URL", raw.url)))?;
        Ok(Webhook {
            url,
            secret,
            format,
            method,
            headers,
            body,
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} {} ({}{})",
            self.method,
            self.url,
            match self.body {
                Some(_) => "own body".to_owned(),
                None => format!("{:?}", self.format).to_lowercase(),
            },
            if self.secret.is_some() { ", signed" } else { "" }
        )
    }

    fn changes(&self, new: &Webhook) -> Vec<&'static str> {
        [
            (self.url != new.url, "url changed"),
            (self.format != new.format, "format changed"),
            (self.secret != new.secret, "signing key changed"),
            (self.method != new.method, "method changed"),
            (self.headers != new.headers, "headers changed"),
            (self.body != new.body, "body changed"),
        ]
        .into_iter()
        .filter_map(|(changed, what)| changed.then_some(what))
        .collect()
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let (target, formatted) =
            message::webhook_request(&self.url, self.format, out.alerts, out.kind, out.channel);
        let body = match &self.body {
            Some(template) => template
                .render(&MessageView::new(out.kind, out.channel, out.alerts))
                .map_err(|e| DeliveryError::fatal(format!("cannot render the body: {e}"))),
            None => {
                formatted.map_err(|e| DeliveryError::fatal(format!("cannot encode alert: {e}")))
            }
        }?;
        let request = Post {
            label: "webhook",
            url: &self.url,
            target,
            method: &self.method,
            headers: &self.headers,
            secret: self.secret.as_ref(),
            id: out.webhook_id(),
            body,
        };
        out.notifier.post_webhook(request).await
    }
}
