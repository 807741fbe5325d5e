//! `type = "webhook"`: an HTTP request to `url` per message, in newshound's own JSON
//! (signed when a key is set), a chat service's shape (Slack, Discord, ntfy), or a
//! body of the user's own.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Key, Kind, Outgoing, Settings};
use crate::model::{RawHeaderValue, Secret};
use crate::model::{Alert, Priority};
use crate::notify::message::{
    self, Post as Message, Room, listed_votes, markdown_escape, markdown_link, markdown_list,
    votes,
};
use crate::notify::{DeliveryError, Post};
use crate::render::safe_link;
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
            webhook_request(&self.url, self.format, out.alerts, out.kind, out.channel);
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

/// Where a webhook POST goes and its JSON body, in the channel's format: one alert,
/// or for a summary (several alerts folded into one message) a list of them.
pub fn webhook_request(
    url: &url::Url,
    format: WebhookFormat,
    alerts: &[Alert],
    kind: &crate::render::MessageKind,
    channel: &str,
) -> (url::Url, serde_json::Result<String>) {
    let post = message::post(alerts, kind, channel);
    let (to, body) = match format {
        // Serialized straight from the alert, its fields in their declared order.
        WebhookFormat::Json => return (url.clone(), message::json_body(&post)),
        WebhookFormat::Slack => (url.clone(), slack_body(&post)),
        WebhookFormat::Discord => (url.clone(), discord_body(&post)),
        WebhookFormat::Ntfy => ntfy_request(url, post),
    };
    (to, serde_json::to_string(&body))
}

fn slack_body(post: &Message) -> serde_json::Value {
    let linked = |a: &Alert| match safe_link(a.link.as_deref()) {
        Some(link) => format!("<{}|{}>", slack_escape(&link), slack_escape(&a.title)),
        None => slack_escape(&a.title),
    };
    let link = |url: &str, label: &str| format!("<{}|{label}>", slack_escape(url));
    let heading = slack_escape(&post.heading);
    let text = match post.alert {
        Some(a) => format!(
            "*{heading}*: {}\n{}\n_{}_{}{}",
            linked(a),
            a.snippet.marked_escaped("*", "*", slack_escape),
            slack_escape(&a.feed.0),
            a.also_line()
                .map(|l| format!("\n{}", slack_escape(&l)))
                .unwrap_or_default(),
            votes(a, link, slack_escape)
                .iter()
                .map(|line| format!("\n{line}"))
                .collect::<String>()
        ),
        None => format!(
            "*{heading}*\n{}",
            post.list(Room::Unlimited, "\n", |a, votes| format!(
                "• {} _{}_{}",
                linked(a),
                slack_escape(&a.feed.0),
                match votes {
                    true => listed_votes(a, link, slack_escape),
                    false => String::new(),
                }
            ))
        ),
    };
    serde_json::json!({ "text": text })
}

/// What an embed's description holds, at most (Discord's limit).
const DISCORD_CHARS: usize = 4096;

/// What an ntfy message holds, at most (the server's default `message-size-limit`).
const NTFY_BYTES: usize = 4096;

fn discord_body(post: &Message) -> serde_json::Value {
    let embed = match post.alert {
        Some(a) => {
            let votes = votes(a, markdown_link, markdown_escape);
            let description = [a.snippet.marked_escaped("**", "**", markdown_escape)]
                .into_iter()
                .chain(votes)
                .collect::<Vec<_>>()
                .join("\n");
            let mut embed = serde_json::json!({
                "title": a.title.chars().take(256).collect::<String>(),
                "description": description.chars().take(DISCORD_CHARS).collect::<String>(),
                "footer": { "text": format!("{} · {} · {}", post.heading, a.feed, a.terms.join(", ")) },
            });
            if let Some(link) = safe_link(a.link.as_deref()) {
                embed["url"] = serde_json::Value::String(link);
            }
            if let Some(feeds) = a.also_feeds() {
                embed["fields"] = serde_json::json!([
                    { "name": "Also reported by", "value": markdown_escape(&feeds) }
                ]);
            }
            embed
        }
        None => serde_json::json!({
            "description": post.list(Room::Chars(DISCORD_CHARS), "\n", |a, votes| {
                let line = match safe_link(a.link.as_deref()) {
                    Some(link) => format!("• [{}]({link}) · {}", markdown_escape(&a.title), markdown_escape(&a.feed.0)),
                    None => format!("• {} · {}", markdown_escape(&a.title), markdown_escape(&a.feed.0)),
                };
                match votes {
                    true => line + &listed_votes(a, markdown_link, markdown_escape),
                    false => line,
                }
            }),
        }),
    };
    serde_json::json!({ "content": post.heading, "embeds": [embed] })
}

/// ntfy's JSON publishing goes to the server's root and names the topic: the URL's
/// last segment is the topic, what comes before it the root (`/` for a server of its
/// own, `/ntfy/` behind a reverse proxy at a sub-path).
fn ntfy_request(url: &url::Url, post: Message) -> (url::Url, serde_json::Value) {
    let path = url.path().trim_end_matches('/');
    let (base, topic) = path.rsplit_once('/').unwrap_or(("", path));
    let topic = topic.to_owned();
    let mut root = url.clone();
    root.set_path(&format!("{base}/"));
    let message = match post.alert {
        Some(a) => {
            let mut message = a.snippet.marked_escaped("**", "**", markdown_escape);
            if let Some(also) = a.also_line() {
                message.push_str(&format!("\n\n{}", markdown_escape(&also)));
            }
            for line in votes(a, markdown_link, markdown_escape) {
                message.push_str(&format!("\n{line}"));
            }
            message
        }
        None => markdown_list(&post, Room::Bytes(NTFY_BYTES)),
    };
    let mut body = serde_json::json!({
        "topic": topic,
        "title": post.title(),
        "message": message,
        "markdown": true,
        "tags": ["newspaper"],
    });
    if let Some(link) = post.link() {
        body["click"] = serde_json::Value::String(link);
    }
    match Priority::of(post.alerts) {
        Priority::Low => body["priority"] = 2.into(),
        Priority::Normal => {}
        Priority::High => body["priority"] = 4.into(),
    }
    (root, body)
}

/// Slack mrkdwn: `&`, `<` and `>` are markup and must be escaped in text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
