//! What chat and push services read: a message's text as Markdown, plain text or the
//! HTML they accept, and the request that carries it. Each service's kind (in
//! `notify::kinds`) builds its own request from these.

use serde_json::Value;

use super::{Post, Room, listed_votes, markdown_escape, markdown_link, safe_link, votes};
use crate::model::{Alert, Secret};

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

impl ServiceRequest {
    /// A POST of `body` to `url`, shown in errors as `shown`.
    pub fn post(url: url::Url, shown: &url::Url, body: Value) -> ServiceRequest {
        ServiceRequest {
            method: "POST",
            url,
            shown: shown.clone(),
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
}

/// `path` under the service's address `base`.
pub fn joined(base: &url::Url, path: &str) -> Result<url::Url, String> {
    let text = format!("{}{path}", base.as_str().trim_end_matches('/'));
    url::Url::parse(&text).map_err(|e| format!("{text}: {e}"))
}

/// Markdown (Gotify's, Apprise's): the snippet with hits in bold and the link, or the
/// list of alerts.
pub fn markdown(post: &Post) -> String {
    match post.alert {
        Some(a) => {
            let mut text = a.snippet.marked_escaped("**", "**", markdown_escape);
            if let Some(link) = post.link() {
                text.push_str(&format!("\n\n[{}]({link})", markdown_escape(&a.title)));
            }
            text.push_str(&format!("\n\n_{}_", markdown_escape(&a.feed.0)));
            if let Some(also) = a.also_line() {
                text.push_str(&format!("\n{}", markdown_escape(&also)));
            }
            for line in votes(a, markdown_link, markdown_escape) {
                text.push_str(&format!("\n{line}"));
            }
            text
        }
        None => super::markdown_list(post, Room::Unlimited),
    }
}

/// Plain text (Matrix's fallback body).
pub fn plain(post: &Post) -> String {
    match post.alert {
        Some(a) => {
            let link = a.link.as_deref().unwrap_or_default();
            let also = a.also_line().map(|l| format!("\n{l}")).unwrap_or_default();
            let feedback: String = votes(a, plain_link, str::to_owned)
                .iter()
                .map(|line| format!("\n{line}"))
                .collect();
            format!(
                "{}\n{}\n{}\n{link}{also}{feedback}",
                post.heading, a.title, a.snippet.text
            )
        }
        None => format!(
            "{}\n{}",
            post.heading,
            post.list(Room::Unlimited, "\n", |a, votes| format!(
                "- {} ({}) {}{}",
                a.title,
                a.feed,
                a.link.as_deref().unwrap_or_default(),
                match votes {
                    true => listed_votes(a, plain_link, str::to_owned),
                    false => String::new(),
                }
            ))
        ),
    }
}

/// HTML as Telegram, Matrix and Pushover read it (`b`, `i`, `a href`), lines joined
/// by `break_`, at most about `max_chars` characters: a list stops at the alert that
/// would pass them, and says how many more there are.
pub fn html(post: &Post, break_: &str, max_chars: usize) -> String {
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
            if let Some(also) = a.also_line() {
                lines.push(format!("<i>{}</i>", text(&also)));
            }
            let feedback = votes(a, html_link, text);
            let fits = |message: &String| message.chars().count() <= max_chars;
            // Too long for the service: the snippet goes first, then the feedback
            // links; the title and link always go.
            let whole = [&lines[..], &feedback[..]].concat().join(break_);
            let short = [&lines[..2], &feedback[..]].concat().join(break_);
            [whole, short]
                .into_iter()
                .find(fits)
                .unwrap_or_else(|| lines[..2].join(break_))
        }
        None => {
            let room = Room::Chars(max_chars).after(&format!("{heading}{break_}"));
            let list = post.list(room, break_, |a, votes| {
                let line = format!("• {} <i>{}</i>", linked(a), text(&a.feed.0));
                match votes {
                    true => line + &listed_votes(a, html_link, text),
                    false => line,
                }
            });
            format!("{heading}{break_}{list}")
        }
    }
}

/// A link in plain text: its label, then the address.
fn plain_link(url: &str, label: &str) -> String {
    format!("{label}: {url}")
}

/// A link in the HTML chat and push services read.
fn html_link(url: &str, label: &str) -> String {
    let url = html_escape::encode_double_quoted_attribute(url);
    format!("<a href=\"{url}\">{label}</a>")
}

/// `text` cut to at most `max` characters, with "…".
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text` percent-encoded as one path segment (a Matrix room id: `!abc:example.org`).
pub fn encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
