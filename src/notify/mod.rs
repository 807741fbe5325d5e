//! Delivering alerts: email over SMTP, Maildir files, webhook POSTs, the chat and push
//! services, a command's input and an Atom feed file. Each failure says whether another
//! try could succeed, so the dispatcher knows to retry or give up.

pub mod kinds;
pub mod message;
mod smtp;

use std::time::Duration;

use lettre::message::Mailbox;

use crate::http::error_chain;
use crate::model::{Alert, Secret};
use crate::render::{MessageKind, Templates};
use kinds::Outgoing;
pub use kinds::Transport;
pub use kinds::webhook::WebhookFormat;
pub use smtp::{Security, Smtp};

/// A webhook receiver gets this long to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a delivery failed, and whether trying again later could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub message: String,
    /// How long the receiver asked us to wait (`Retry-After` on 429/503).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    fn retry(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: true,
            message: message.into(),
            retry_after: None,
        }
    }

    fn fatal(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: false,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// One webhook request, ready to send.
struct Post<'a> {
    /// What is posted to (`webhook`, `telegram`, …) and where, for errors (which show
    /// only its origin).
    label: &'a str,
    url: &'a url::Url,
    target: url::Url,
    method: &'a str,
    headers: &'a [(String, Secret)],
    secret: Option<&'a Secret>,
    id: String,
    body: String,
}

/// Could not set up a channel's transport (bad certificate, bad address).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

/// Everything needed to deliver to any configured channel.
pub struct Notifier {
    smtp: Option<(smtp::Relay, Mailbox)>,
    /// Who Maildir messages are from: the SMTP sender when there is one.
    local_from: Mailbox,
    http: reqwest::Client,
}

impl Notifier {
    /// Sets up the connections: to the relay `smtp` (email channels), and one HTTP
    /// client for every request.
    pub fn new(smtp: Option<&Smtp>) -> Result<Notifier, SetupError> {
        let smtp = smtp
            .map(|smtp| {
                let from = smtp
                    .from
                    .parse::<Mailbox>()
                    .map_err(|e| SetupError(format!("smtp.from: {e}")))?;
                Ok((smtp::Relay::new(smtp)?, from))
            })
            .transpose()?;
        let local_from = match &smtp {
            Some((_, from)) => from.clone(),
            None => "newshound <newshound@localhost>"
                .parse()
                .map_err(|e| SetupError(format!("default sender: {e}")))?,
        };
        let http = reqwest::Client::builder()
            .user_agent(crate::http::USER_AGENT)
            .timeout(WEBHOOK_TIMEOUT)
            // reqwest's defaults, relied upon: connections kept alive per host, and
            // no Nagle delay on small POSTs.
            .tcp_nodelay(true)
            // A receiver that moved must be updated in the config; following a redirect
            // would turn the POST into a GET or send alerts somewhere unexpected.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Notifier {
            smtp,
            local_from,
            http,
        })
    }

    /// Closes the SMTP connections that have been idle too long to be worth keeping.
    pub async fn close_idle(&self) {
        if let Some((relay, _)) = &self.smtp {
            relay.close_idle().await;
        }
    }

    /// Delivers `alerts` through the channel `name` (its `transport` and
    /// `templates`): one alert, or several folded into one message as `kind` says. On
    /// success, says what the receiver answered (`250 …`, `204 No Content`, the file
    /// written).
    pub async fn deliver(
        &self,
        name: &str,
        transport: &Transport,
        templates: &Templates,
        alerts: &[Alert],
        kind: &MessageKind,
    ) -> Result<String, DeliveryError> {
        let out = Outgoing {
            channel: name,
            alerts,
            kind,
            templates,
            notifier: self,
        };
        transport.send(&out).await
    }

    /// Sends a webhook request to its `target` (the channel's `url`, or where its
    /// format sends).
    async fn post_webhook(&self, post: Post<'_>) -> Result<String, DeliveryError> {
        let Post {
            label,
            url,
            target,
            method,
            headers,
            secret,
            id,
            body,
        } = post;
        let timestamp = chrono::Utc::now().timestamp();
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
        // The channel's own headers over ours: they may say another Content-Type.
        let mut fields = reqwest::header::HeaderMap::new();
        fields.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes());
            let value = reqwest::header::HeaderValue::from_str(value.expose());
            if let (Ok(name), Ok(value)) = (name, value) {
                fields.insert(name, value);
            }
        }
        let mut request = self
            .http
            .request(method, target)
            .headers(fields)
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = secret.and_then(|s| s.webhook_key()) {
            request = request.header(
                "webhook-signature",
                message::sign(&key, &id, timestamp, &body),
            );
        }
        // Without the URL's path, which may hold a secret (a Slack or Discord hook's,
        // an apprise key); the channel's name says which receiver it is.
        let url = origin_of(url);
        let response = request.body(body).send().await.map_err(|e| {
            DeliveryError::retry(format!("{label} {url}: {}", error_chain(&e.without_url())))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(status.to_string());
        }
        let retry_after = crate::http::retry_after_of(&response);
        let answer = answer_of(response).await;
        let mut message = format!("{label} {url} answered {status}");
        if !answer.text.is_empty() {
            message.push_str(&format!(": {}", answer.text));
        }
        // 408 and 429 say "later"; 5xx is the receiver's own trouble, and apprise's
        // 424 a service behind it failing. Other 4xx mean the request itself is wrong
        // and will stay wrong.
        if status.is_server_error() || matches!(status.as_u16(), 408 | 424 | 429) {
            Err(DeliveryError {
                retry_after: retry_after.or(answer.retry_after),
                ..DeliveryError::retry(message)
            })
        } else {
            Err(DeliveryError::fatal(message))
        }
    }
}

/// A receiver's address for errors: its origin, and `/…` for the rest.
fn origin_of(url: &url::Url) -> String {
    let origin = url.origin().ascii_serialization();
    if url.path() == "/" && url.query().is_none() {
        origin
    } else {
        format!("{origin}/…")
    }
}

/// What a receiver said with a failure: the start of its body, and how long it
/// asked us to wait where a service says so in the body (Telegram's
/// `parameters.retry_after`, Matrix's `retry_after_ms`).
struct Answer {
    text: String,
    retry_after: Option<Duration>,
}

/// Of an answer's body, this much is read, and a fifth of it quoted in the error.
const ANSWER_BYTES: usize = 4096;

async fn answer_of(mut response: reqwest::Response) -> Answer {
    let mut body = Vec::new();
    while body.len() < ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = crate::model::collapse_whitespace(&String::from_utf8_lossy(&body));
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let retry_after = json.as_ref().and_then(|json| {
        let seconds = json["parameters"]["retry_after"].as_u64();
        let millis = json["retry_after_ms"].as_u64();
        seconds
            .map(Duration::from_secs)
            .or(millis.map(Duration::from_millis))
    });
    let cut = crate::model::floor_char_boundary(&text, ANSWER_BYTES / 5);
    Answer {
        text: text[..cut].to_owned(),
        retry_after,
    }
}

#[cfg(test)]
mod tests;
