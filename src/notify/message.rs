//! Rendering an alert as an RFC 5322 message (text + HTML) and as webhook JSON.

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use crate::config::WebhookFormat;
use crate::model::{Alert, StoryKeys, hex};

/// Builds the email for `alert`; the same alert and channel always give the same
/// Message-ID, so a redelivery is recognisable as the same message.
pub fn email(
    alert: &Alert,
    channel: &str,
    from: &Mailbox,
    to: &[Mailbox],
) -> Result<Message, lettre::error::Error> {
    let story = story_id(alert);
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject(alert))
        .message_id(Some(message_id(alert, channel)))
        // Every alert about one story (same link, or same title without one) replies
        // to the same root, so mail clients thread follow-ups together.
        .in_reply_to(story.clone())
        .references(story)
        .header(ListId::for_rule(
            alert.rules.first().map_or("newshound", String::as_str),
        ))
        .date_now();
    for rcpt in to {
        builder = builder.to(rcpt.clone());
    }
    builder.multipart(
        MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text_body(alert)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html_body(alert)),
            ),
    )
}

/// `[newshound] <rules>: <title>`, with anything that could end a header line removed.
pub fn subject(alert: &Alert) -> String {
    let title = if alert.title.trim().is_empty() {
        "(untitled item)"
    } else {
        &alert.title
    };
    header_safe(&format!("[newshound] {}: {title}", alert.rules.join(", ")))
}

/// One line of text: control characters (CR, LF, tabs…) become spaces, so feed text
/// can never start a new header.
fn header_safe(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `<hash@newshound>` from the feed, the item key and the channel.
pub fn message_id(alert: &Alert, channel: &str) -> String {
    format!("<{}@newshound>", alert_hash(alert, channel))
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

/// `List-Id: <rule.newshound>` (RFC 2919), so mail clients can filter by rule.
#[derive(Debug, Clone)]
struct ListId(String);

impl ListId {
    fn for_rule(rule: &str) -> ListId {
        // A list id is a dot-atom: keep letters, digits and hyphens.
        let label: String = rule
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        ListId(format!(
            "newshound rule {rule} <{}.newshound>",
            label.trim_matches('-')
        ))
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
pub fn webhook_id(alert: &Alert, channel: &str) -> String {
    format!("msg_{}", alert_hash(alert, channel))
}

fn alert_hash(alert: &Alert, channel: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [&alert.feed.0, &alert.key.0, channel] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
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

fn published(alert: &Alert) -> String {
    alert.published.map_or_else(
        || "unknown".into(),
        |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

pub(crate) fn text_body(alert: &Alert) -> String {
    let snippet = alert.snippet.marked("*", "*");
    format!(
        "{title}\n\n{snippet}\n\nFeed:    {feed}\nDate:    {date}\nLink:    {link}\nMatched: {terms}\n\n-- \nYou got this because newshound rule {rules} matched.\n",
        title = alert.title,
        feed = alert.feed,
        date = published(alert),
        link = alert.link.as_deref().unwrap_or("(none)"),
        terms = alert.terms.join(", "),
        rules = alert.rules.join(", "),
    )
}

pub(crate) fn html_body(alert: &Alert) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    let snippet: String = alert
        .snippet
        .segments()
        .into_iter()
        .map(|(piece, hit)| {
            if hit {
                format!("<mark>{}</mark>", text(piece))
            } else {
                text(piece).into_owned()
            }
        })
        .collect();
    let title = text(&alert.title);
    let heading = match alert.link.as_deref().filter(|l| is_safe_link(l)) {
        Some(link) => format!("<a href=\"{}\">{title}</a>", attr(link)),
        None => title.into_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html><body>\n<h2>{heading}</h2>\n<p>{snippet}</p>\n\
         <p><small>{feed} · {date}</small></p>\n<p>Matched: <b>{terms}</b></p>\n\
         <hr><p><small>You got this because newshound rule {rules} matched.</small></p>\n</body></html>\n",
        feed = text(&alert.feed.0),
        date = published(alert),
        terms = text(&alert.terms.join(", ")),
        rules = text(&alert.rules.join(", ")),
    )
}

/// Only web links become clickable; `javascript:` and friends stay text.
fn is_safe_link(link: &str) -> bool {
    url::Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
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
    }
}

/// Where a webhook POST goes and its JSON body, in the channel's format.
pub fn webhook_request(
    url: &url::Url,
    format: WebhookFormat,
    alert: &Alert,
) -> (url::Url, serde_json::Result<String>) {
    let heading = format!("[newshound] {}", alert.rules.join(", "));
    match format {
        WebhookFormat::Json => (url.clone(), serde_json::to_string(&webhook_body(alert))),
        WebhookFormat::Slack => {
            // Slack mrkdwn: &, < and > are markup and must be escaped in text.
            let esc = |t: &str| {
                t.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let title = match alert.link.as_deref().filter(|l| is_safe_link(l)) {
                Some(link) => format!("<{}|{}>", esc(link), esc(&alert.title)),
                None => esc(&alert.title),
            };
            let snippet = marked_with(&alert.snippet, esc, "*");
            let text = format!(
                "*{}*: {title}\n{snippet}\n_{}_",
                esc(&heading),
                esc(&alert.feed.0)
            );
            (
                url.clone(),
                serde_json::to_string(&serde_json::json!({ "text": text })),
            )
        }
        WebhookFormat::Discord => {
            let esc = |t: &str| {
                t.chars().fold(String::new(), |mut out, c| {
                    if "\\*_~`|>[]()".contains(c) {
                        out.push('\\');
                    }
                    out.push(c);
                    out
                })
            };
            let mut embed = serde_json::json!({
                "title": alert.title.chars().take(256).collect::<String>(),
                "description": marked_with(&alert.snippet, esc, "**"),
                "footer": { "text": format!("{heading} · {} · {}", alert.feed, alert.terms.join(", ")) },
            });
            if let Some(link) = alert.link.as_deref().filter(|l| is_safe_link(l)) {
                embed["url"] = serde_json::Value::String(link.to_owned());
            }
            let body = serde_json::json!({ "content": heading, "embeds": [embed] });
            (url.clone(), serde_json::to_string(&body))
        }
        WebhookFormat::Ntfy => {
            // ntfy's JSON publishing goes to the server root and names the topic.
            let topic = url.path().trim_matches('/').to_owned();
            let mut root = url.clone();
            root.set_path("/");
            let mut body = serde_json::json!({
                "topic": topic,
                "title": format!("{heading}: {}", alert.title),
                "message": marked_with(&alert.snippet, |t: &str| t.to_owned(), "**"),
                "markdown": true,
                "tags": ["newspaper"],
            });
            if let Some(link) = alert.link.as_deref().filter(|l| is_safe_link(l)) {
                body["click"] = serde_json::Value::String(link.to_owned());
            }
            (root, serde_json::to_string(&body))
        }
    }
}

/// The snippet with each piece escaped by `esc` and each hit wrapped in `mark`.
fn marked_with(
    snippet: &crate::model::Snippet,
    esc: impl Fn(&str) -> String,
    mark: &str,
) -> String {
    snippet
        .segments()
        .into_iter()
        .map(|(piece, hit)| {
            if hit {
                format!("{mark}{}{mark}", esc(piece))
            } else {
                esc(piece)
            }
        })
        .collect()
}
