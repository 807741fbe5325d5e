//! `type = "telegram"`: a bot's `sendMessage` to a chat, in the HTML Telegram reads.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Key, Kind, Outgoing, Settings};
use crate::model::{Priority, Secret};
use crate::notify::DeliveryError;
use crate::notify::message::{ServiceRequest, html, joined};

const API: &str = "https://api.telegram.org";
/// Telegram refuses a message over 4,096 characters; some room for the entities.
const CHARS: usize = 4000;

/// A Telegram bot: `sendMessage` to `chat_id` (a number, or `@channelname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telegram {
    pub api_url: url::Url,
    pub token: Secret,
    pub chat_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    chat_id: ChatId,
    api_url: Option<String>,
}

/// A Telegram chat: its number or `@channelname`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatId {
    Number(i64),
    Name(String),
}

impl Kind for Telegram {
    const NAME: &'static str = "telegram";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Telegram, S::Error> {
        let token = settings.token("token", raw.token_file.as_deref(), raw.token_env.as_deref())?;
        let chat_id = match raw.chat_id {
            ChatId::Number(n) => n.to_string(),
            ChatId::Name(name) if !name.trim().is_empty() => name,
            ChatId::Name(_) => {
                return Err(settings.invalid(
                    &[Key::Name("chat_id")],
                    "give the chat's number or the channel's @name".into(),
                ));
            }
        };
        let api_url = settings.address("api_url", raw.api_url.as_deref(), API)?;
        Ok(Telegram {
            api_url,
            token,
            chat_id,
        })
    }

    fn describe(&self) -> String {
        format!("telegram chat {} via {}", self.chat_id, self.api_url)
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        out.send_request(Self::NAME, self.request(out)).await
    }
}

impl Telegram {
    fn request(&self, out: &Outgoing<'_>) -> Result<ServiceRequest, String> {
        let url = joined(&self.api_url, &format!("/bot{}/sendMessage", self.token.expose()))?;
        let chat: Value = self
            .chat_id
            .parse::<i64>()
            .map_or_else(|_| json!(self.chat_id), |n| json!(n));
        let mut body = json!({
            "chat_id": chat,
            "text": html(&out.post(), "\n", CHARS),
            "parse_mode": "HTML",
            "link_preview_options": { "is_disabled": true },
        });
        // Telegram has no priorities, but silent messages.
        if Priority::of(out.alerts) == Priority::Low {
            body["disable_notification"] = json!(true);
        }
        Ok(ServiceRequest::post(url, &self.api_url, body))
    }
}
