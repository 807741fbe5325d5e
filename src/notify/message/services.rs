//! Requests to chat and push services in their own APIs, as each documents them:
//! Telegram's `sendMessage`, a Matrix room message, Gotify's `/message`, Pushover's
//! messages API and apprise-api's `/notify`. One alert, or a digest or summary as one
//! message listing its alerts; the rules' priority in the service's own terms.

use serde_json::{Value, json};

use super::{Post, markdown_escape, post, safe_link};
use crate::config::{Secret, Service};
use crate::model::{Alert, Priority};
use crate::render::MessageKind;

/// Telegram refuses a message over 4,096 characters; some room for the entities.
const TELEGRAM_CHARS: usize = 4000;
/// Pushover's limits: title, message and URL.
const PUSHOVER_TITLE_CHARS: usize = 250;
const PUSHOVER_MESSAGE_CHARS: usize = 1024;
const PUSHOVER_URL_CHARS: usize = 512;

/// A service's request, ready to send.
#[derive(Debug)]
pub struct ServiceRequest {
    pub method: &'static str,
    pub url: url::Url,
    /// The address to name in errors and logs: without the token some services
    /// carry in the URL.
    pub shown: url::Url,
    pub headers: Vec<(String, Secret)>,
    pub body: String,
}

/// The request that delivers `alerts` (one, unless `kind` gathers several) through
/// `service`; `id` is the message's webhook id (Matrix's transaction id).
pub fn service_request(
    service: &Service,
    alerts: &[Alert],
    kind: &MessageKind,
    channel: &str,
    id: &str,
) -> Result<ServiceRequest, String> {
    let post = post(alerts, kind, channel);
    let priority = Priority::of(alerts);
    let joined = |base: &url::Url, path: &str| {
        let text = format!("{}{path}", base.as_str().trim_end_matches('/'));
        url::Url::parse(&text).map_err(|e| format!("{text}: {e}"))
    };
    let request = |url: url::Url, shown: &url::Url, body: Value| ServiceRequest {
        method: "POST",
        url,
        shown: shown.clone(),
        headers: Vec::new(),
        body: body.to_string(),
    };
    Ok(match service {
        Service::Telegram {
            api_url,
            token,
            chat_id,
        } => {
            let url = joined(api_url, &format!("/bot{}/sendMessage", token.expose()))?;
            let chat: Value = chat_id
                .parse::<i64>()
                .map_or_else(|_| json!(chat_id), |n| json!(n));
            let mut body = json!({
                "chat_id": chat,
                "text": html(&post, "\n", TELEGRAM_CHARS),
                "parse_mode": "HTML",
                "link_preview_options": { "is_disabled": true },
            });
            // Telegram has no priorities, but silent messages.
            if priority == Priority::Low {
                body["disable_notification"] = json!(true);
            }
            request(url, api_url, body)
        }
        Service::Matrix {
            homeserver,
            room_id,
            access_token,
        } => {
            let path = format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
                encoded(room_id),
                encoded(id)
            );
            let body = json!({
                "msgtype": "m.text",
                "body": plain(&post),
                "format": "org.matrix.custom.html",
                "formatted_body": html(&post, "<br>", usize::MAX),
            });
            ServiceRequest {
                method: "PUT",
                headers: vec![(
                    "Authorization".into(),
                    Secret::new(format!("Bearer {}", access_token.expose())),
                )],
                ..request(joined(homeserver, &path)?, homeserver, body)
            }
        }
        Service::Gotify { url, token } => {
            let mut body = json!({
                "title": post.title(),
                "message": markdown(&post),
                "priority": match priority {
                    Priority::Low => 2,
                    Priority::Normal => 5,
                    Priority::High => 8,
                },
                "extras": { "client::display": { "contentType": "text/markdown" } },
            });
            if let Some(link) = post.link() {
                body["extras"]["client::notification"] = json!({ "click": { "url": link } });
            }
            ServiceRequest {
                headers: vec![("X-Gotify-Key".into(), token.clone())],
                ..request(joined(url, "/message")?, url, body)
            }
        }
        Service::Pushover {
            api_url,
            token,
            user,
        } => {
            let mut body = json!({
                "token": token.expose(),
                "user": user,
                "title": cut(&post.title(), PUSHOVER_TITLE_CHARS),
                "message": html(&post, "\n", PUSHOVER_MESSAGE_CHARS),
                "html": 1,
                "priority": match priority {
                    Priority::Low => -1,
                    Priority::Normal => 0,
                    Priority::High => 1,
                },
            });
            if let Some(link) = post
                .link()
                .filter(|l| l.chars().count() <= PUSHOVER_URL_CHARS)
            {
                body["url"] = json!(link);
                body["url_title"] = json!("Open the story");
            }
            request(joined(api_url, "/1/messages.json")?, api_url, body)
        }
        Service::Apprise { url, urls, tag } => {
            let mut body = json!({
                "title": post.title(),
                "body": markdown(&post),
                "format": "markdown",
                "type": "info",
            });
            if let Some(urls) = urls {
                body["urls"] = json!(urls.expose());
            }
            if let Some(tag) = tag {
                body["tag"] = json!(tag);
            }
            request(url.clone(), url, body)
        }
    })
}

/// Markdown (Gotify's, Apprise's): the snippet with hits in bold and the link, or the
/// list of alerts.
fn markdown(post: &Post) -> String {
    match post.alert {
        Some(a) => {
            let mut text = a.snippet.marked_escaped("**", "**", markdown_escape);
            if let Some(link) = post.link() {
                text.push_str(&format!("\n\n[{}]({link})", markdown_escape(&a.title)));
            }
            text.push_str(&format!("\n\n_{}_", markdown_escape(&a.feed.0)));
            text
        }
        None => super::markdown_list(post),
    }
}

/// Plain text (Matrix's fallback body).
fn plain(post: &Post) -> String {
    match post.alert {
        Some(a) => {
            let link = a.link.as_deref().unwrap_or_default();
            format!("{}\n{}\n{}\n{link}", post.heading, a.title, a.snippet.text)
        }
        None => format!(
            "{}\n{}",
            post.heading,
            post.list(|a| format!(
                "- {} ({}) {}",
                a.title,
                a.feed,
                a.link.as_deref().unwrap_or_default()
            ))
        ),
    }
}

/// HTML as Telegram, Matrix and Pushover read it (`b`, `i`, `a href`), lines joined
/// by `break_`, at most about `max_chars` characters: a list stops at the alert that
/// would pass them, and says how many more there are.
fn html(post: &Post, break_: &str, max_chars: usize) -> String {
    let text = |s: &str| html_escape::encode_text(s).into_owned();
    let linked = |a: &Alert| match safe_link(a.link.as_deref()) {
        Some(link) => format!(
            "<a href=\"{}\">{}</a>",
            html_escape::encode_double_quoted_attribute(&link),
            text(&a.title)
        ),
        None => text(&a.title),
    };
    let heading = format!("<b>{}</b>", text(&post.heading));
    match post.alert {
        Some(a) => {
            let mut lines = vec![
                heading,
                linked(a),
                a.snippet.marked_escaped("<b>", "</b>", |piece| text(piece)),
                format!("<i>{}</i>", text(&a.feed.0)),
            ];
            if a.only_in_article() {
                lines.push("<i>found only in the full article at the link</i>".into());
            }
            let message = lines.join(break_);
            if message.chars().count() <= max_chars {
                message
            } else {
                // A snippet too long for the service: the title and link still go.
                [lines[0].as_str(), lines[1].as_str()].join(break_)
            }
        }
        None => {
            let mut message = heading;
            for (i, a) in post.alerts.iter().enumerate() {
                let line = format!("• {} <i>{}</i>", linked(a), text(&a.feed.0));
                let more = format!("… and {} more", post.alerts.len() - i);
                let room = message.chars().count() + line.chars().count() + more.len() + 16;
                if room > max_chars {
                    message.push_str(break_);
                    message.push_str(&more);
                    break;
                }
                message.push_str(break_);
                message.push_str(&line);
            }
            message
        }
    }
}

/// `text` cut to at most `max` characters, with "…".
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text` percent-encoded as one path segment (a Matrix room id: `!abc:example.org`).
fn encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
