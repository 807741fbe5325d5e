//! What every kind builds its message from: an RFC 5322 message (text + HTML, from the
//! channel's templates), ids and signatures, newshound's own JSON, and a message
//! before a kind gives it its shape ([`Post`]).

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use crate::model::{Alert, Priority, StoryKeys, collapse_whitespace, hex};
use crate::render::Templates;
use crate::render::{MessageKind, MessageView, safe_link};

mod services;

pub use services::{ServiceRequest, cut, encoded, html, joined, markdown, plain};

/// Builds the email for `alerts` (one, unless `kind` gathers several) from the
/// channel's templates. The same alerts on the same channel always give the same
/// Message-ID, so a redelivery is recognisable as the same message.
pub fn email(
    alerts: &[Alert],
    kind: &MessageKind,
    channel: &str,
    templates: &Templates,
    from: &Mailbox,
    to: &[Mailbox],
) -> Result<Message, String> {
    let first = alerts.first().ok_or("no alerts to send")?;
    let rendered = templates
        .render(&MessageView::new(kind, channel, alerts))
        .map_err(|e| format!("template {}: {e}", e.which))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(header_safe(&rendered.subject))
        .message_id(Some(message_id(alerts, channel)))
        .date_now();
    builder = match kind {
        MessageKind::Alert => {
            // Every alert about one story replies to the same root, so mail clients
            // thread follow-ups together.
            let story = story_id(first);
            builder
                .in_reply_to(story.clone())
                .references(story)
                .header(ListId::new(
                    "rule",
                    first.rules.first().map_or("newshound", String::as_str),
                ))
        }
        MessageKind::Digest { .. } | MessageKind::Summary { .. } => {
            builder.header(ListId::new("channel", channel))
        }
    };
    for rcpt in to {
        builder = builder.to(rcpt.clone());
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html),
                ),
        )
        .map_err(|e| e.to_string())
}

/// One line of text: control characters (CR, LF, tabs…) become spaces, so feed text
/// can never start a new header.
fn header_safe(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    collapse_whitespace(&flat)
}

/// `<hash@newshound>` from the alerts' feeds and item keys and the channel.
pub fn message_id(alerts: &[Alert], channel: &str) -> String {
    format!("<{}@newshound>", alerts_hash(alerts, channel))
}

/// `<story-hash@newshound>`: one id per story, from its canonical link (or, without
/// one, its normalised title), shared by every alert about it.
pub fn story_id(alert: &Alert) -> String {
    let keys = StoryKeys::of(alert.link.as_deref(), &alert.title);
    let basis = keys
        .link
        .map(|l| format!("link:{l}"))
        .or(keys.title.map(|t| format!("title:{t}")))
        .unwrap_or_else(|| format!("item:{}:{}", alert.feed, alert.key.0));
    let mut hasher = Sha256::new();
    hasher.update(basis.as_bytes());
    format!("<story-{}@newshound>", &hex(&hasher.finalize())[..32])
}

/// `List-Id: <name.newshound>` (RFC 2919), one per rule (one per channel for
/// digests and summaries), so mail clients can filter.
#[derive(Debug, Clone)]
struct ListId(String);

impl ListId {
    fn new(what: &str, name: &str) -> ListId {
        // A list id is a dot-atom: keep letters, digits and hyphens.
        let label: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let label = label.trim_matches('-');
        match what {
            "rule" => ListId(format!("newshound rule {name} <{label}.newshound>")),
            _ => ListId(format!(
                "newshound {what} {name} <{label}.{what}.newshound>"
            )),
        }
    }
}

impl lettre::message::header::Header for ListId {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Id")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListId(s.to_owned()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), header_safe(&self.0))
    }
}

/// `msg_<hash>`: the webhook's id, like the Message-ID the same on every retry.
pub fn webhook_id(alerts: &[Alert], channel: &str) -> String {
    format!("msg_{}", alerts_hash(alerts, channel))
}

/// One alert hashes as it always has (feed, key, channel), so ids of alerts queued
/// before an upgrade stay the same; several hash as a list.
fn alerts_hash(alerts: &[Alert], channel: &str) -> String {
    let mut hasher = Sha256::new();
    if alerts.len() > 1 {
        hasher.update(b"batch\0");
    }
    for alert in alerts {
        for part in [&alert.feed.0, &alert.key.0] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
    }
    hasher.update(channel.as_bytes());
    hasher.update([0]);
    hex(&hasher.finalize())[..32].to_owned()
}

/// The Standard Webhooks signature header value: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{signature}")
}

/// The webhook `json` body: the object DESIGN.md describes, fields in its order.
#[derive(Debug, serde::Serialize)]
pub struct WebhookBody<'a> {
    pub feed: &'a str,
    pub key: &'a str,
    pub title: &'a str,
    pub link: Option<&'a str>,
    pub published: Option<String>,
    pub rules: &'a [String],
    pub terms: &'a [String],
    pub snippet: &'a str,
    /// Present (and true) when the rules matched only in the article at the link.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub only_in_article: bool,
    /// Present when the rules' priority is not normal: `low` or `high`.
    #[serde(skip_serializing_if = "Priority::is_normal")]
    pub priority: Priority,
    /// Present when a topic rule matched: its score (the best, if several did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Present when other feeds carried the same story: each one's feed, title and
    /// link.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub also: &'a [crate::model::Source],
    /// Present on a channel with `feedback = true`: per rule, its "more like this"
    /// and "not this" links.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub feedback: &'a [crate::model::Feedback],
}

pub fn webhook_body(alert: &Alert) -> WebhookBody<'_> {
    WebhookBody {
        feed: &alert.feed.0,
        key: &alert.key.0,
        title: &alert.title,
        link: alert.link.as_deref(),
        published: alert.published.map(crate::model::rfc3339),
        rules: &alert.rules,
        terms: &alert.terms,
        snippet: &alert.snippet.text,
        only_in_article: alert.only_in_article(),
        priority: alert.priority,
        score: alert.score(),
        also: &alert.also_in,
        feedback: &alert.feedback,
    }
}

/// Alerts listed one by one in a summary webhook message, at most; the rest are
/// counted. (The `json` format always lists them all.)
const LISTED: usize = 25;

/// One webhook message before it takes a format's shape.
pub struct Post<'a> {
    pub alerts: &'a [Alert],
    /// The alert, when the message is about one.
    pub alert: Option<&'a Alert>,
    pub heading: String,
    pub kind: &'a MessageKind,
    pub channel: &'a str,
}

impl Post<'_> {
    /// The message's title: the heading, and the alert's title when it is one.
    pub fn title(&self) -> String {
        match self.alert {
            Some(a) => format!("{}: {}", self.heading, a.title),
            None => self.heading.clone(),
        }
    }

    /// The story's link, when the message is one alert with a web link.
    pub fn link(&self) -> Option<String> {
        self.alert.and_then(|a| safe_link(a.link.as_deref()))
    }

    /// For a list: a line per alert (title linked, feed named), at most `LISTED`
    /// and as many as `room` takes, then how many more, joined by `sep`. Each line
    /// carries its alert's feedback links (`line(alert, true)`) when every listed
    /// line fits with them; otherwise none does (`line(alert, false)`): the alerts
    /// go before the links.
    pub fn list(&self, room: Room, sep: &str, line: impl Fn(&Alert, bool) -> String) -> String {
        let (with_links, every) = self.fill(room, sep, |a| line(a, true));
        match every {
            true => with_links,
            false => self.fill(room, sep, |a| line(a, false)).0,
        }
    }

    /// The lines of [`Post::list`] that fit in `room`, and whether every alert up to
    /// `LISTED` did.
    fn fill(&self, room: Room, sep: &str, line: impl Fn(&Alert) -> String) -> (String, bool) {
        let more = |n: usize| format!("{sep}… and {n} more");
        let (mut text, mut used, mut listed) = (String::new(), 0, 0);
        for (i, alert) in self.alerts.iter().take(LISTED).enumerate() {
            let this = match i {
                0 => line(alert),
                _ => format!("{sep}{}", line(alert)),
            };
            // Room is kept for saying how many more there are after this one.
            let rest = self.alerts.len() - i - 1;
            let tail = if rest > 0 {
                room.measure(&more(rest))
            } else {
                0
            };
            let size = room.measure(&this);
            if used + size + tail > room.max() {
                break;
            }
            text.push_str(&this);
            used += size;
            listed = i + 1;
        }
        if listed < self.alerts.len() {
            if listed > 0 {
                text.push_str(sep);
            }
            text.push_str(&format!("… and {} more", self.alerts.len() - listed));
        }
        (text, listed == self.alerts.len().min(LISTED))
    }
}

/// How much text a service takes in one message.
#[derive(Debug, Clone, Copy)]
pub enum Room {
    Unlimited,
    Chars(usize),
    Bytes(usize),
}

impl Room {
    fn measure(self, text: &str) -> usize {
        match self {
            Room::Unlimited => 0,
            Room::Chars(_) => text.chars().count(),
            Room::Bytes(_) => text.len(),
        }
    }

    fn max(self) -> usize {
        match self {
            Room::Unlimited => usize::MAX,
            Room::Chars(max) | Room::Bytes(max) => max,
        }
    }

    /// What is left of it after `text`.
    pub fn after(self, text: &str) -> Room {
        match self {
            Room::Unlimited => Room::Unlimited,
            Room::Chars(max) => Room::Chars(max.saturating_sub(self.measure(text))),
            Room::Bytes(max) => Room::Bytes(max.saturating_sub(self.measure(text))),
        }
    }
}

/// One message (an alert, or a digest or summary of several) before its shape.
pub fn post<'a>(alerts: &'a [Alert], kind: &'a MessageKind, channel: &'a str) -> Post<'a> {
    let (alert, heading) = match (alerts, kind) {
        ([alert], MessageKind::Alert) => (
            Some(alert),
            format!("[newshound] {}", alert.rules.join(", ")),
        ),
        (_, MessageKind::Digest { period }) => (
            None,
            format!("[newshound] {} alerts ({period})", alerts.len()),
        ),
        (_, _) => (
            None,
            format!("[newshound] {} more alerts on {channel}", alerts.len()),
        ),
    };
    Post {
        alerts,
        alert,
        heading,
        kind,
        channel,
    }
}

/// The message in newshound's own JSON (the `json` webhook format), for the `exec`
/// channel's stdin.
pub fn json_message(
    alerts: &[Alert],
    kind: &MessageKind,
    channel: &str,
) -> serde_json::Result<String> {
    json_body(&post(alerts, kind, channel))
}

/// Our own format: the alert, or the kind of list and every alert in it.
pub fn json_body(post: &Post) -> serde_json::Result<String> {
    match post.alert {
        Some(alert) => serde_json::to_string(&webhook_body(alert)),
        None => serde_json::to_string(&serde_json::json!({
            "kind": if matches!(post.kind, MessageKind::Digest { .. }) { "digest" } else { "summary" },
            "channel": post.channel,
            "count": post.alerts.len(),
            "alerts": post.alerts.iter().map(webhook_body).collect::<Vec<_>>(),
        })),
    }
}

/// A Markdown list of a message's alerts within `room`: each title linked, its feed
/// named, then its feedback links.
pub fn markdown_list(post: &Post, room: Room) -> String {
    post.list(room, "\n", |a, votes| {
        let line = match safe_link(a.link.as_deref()) {
            Some(link) => format!(
                "- [{}]({link}) ({})",
                markdown_escape(&a.title),
                markdown_escape(&a.feed.0)
            ),
            None => format!(
                "- {} ({})",
                markdown_escape(&a.title),
                markdown_escape(&a.feed.0)
            ),
        };
        match votes {
            true => line + &listed_votes(a, markdown_link, markdown_escape),
            false => line,
        }
    })
}

/// A Markdown link.
pub fn markdown_link(url: &str, label: &str) -> String {
    format!("[{label}]({url})")
}

/// An alert's feedback links (on a channel with `feedback = true`), a line per rule:
/// "More like this · Not this", after the rule's name when the alert has several.
/// `link(url, label)` writes a link in the service's markup, `escape` its text.
pub fn votes(
    a: &Alert,
    link: impl Fn(&str, &str) -> String,
    escape: impl Fn(&str) -> String,
) -> Vec<String> {
    a.feedback
        .iter()
        .map(|f| {
            let rule = match a.feedback.len() {
                1 => String::new(),
                _ => escape(&format!("{}: ", f.rule)),
            };
            format!(
                "{rule}{} · {}",
                link(&f.more, "More like this"),
                link(&f.not, "Not this")
            )
        })
        .collect()
}

/// [`votes`] on an alert's line of a list: each after " · ".
pub fn listed_votes(
    a: &Alert,
    link: impl Fn(&str, &str) -> String,
    escape: impl Fn(&str) -> String,
) -> String {
    votes(a, link, escape)
        .iter()
        .map(|v| format!(" · {v}"))
        .collect()
}

/// Markdown (Discord's, ntfy's): markup characters are backslash-escaped.
pub fn markdown_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if "\\*_~`|>[]()".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}
