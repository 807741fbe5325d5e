//! `type = "pushover"`: Pushover's messages API, with an application's token, to a
//! user or group key.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use super::{Key, Kind, Outgoing, Settings};
use crate::model::{Priority, Secret};
use crate::notify::DeliveryError;
use crate::notify::message::{ServiceRequest, cut, html, joined};

const API: &str = "https://api.pushover.net";
/// Pushover's limits: title, message and URL.
const TITLE_CHARS: usize = 250;
const MESSAGE_CHARS: usize = 1024;
const URL_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushover {
    pub api_url: url::Url,
    pub token: Secret,
    pub user: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    user: String,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    api_url: Option<String>,
}

impl Kind for Pushover {
    const NAME: &'static str = "pushover";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Pushover, S::Error> {
        let token = settings.token("token", raw.token_file.as_deref(), raw.token_env.as_deref())?;
        if raw.user.trim().is_empty() {
            return Err(settings.invalid(&[Key::Name("user")], "give the user or group key".into()));
        }
        let api_url = settings.address("api_url", raw.api_url.as_deref(), API)?;
        Ok(Pushover {
            api_url,
            token,
            user: raw.user,
        })
    }

    fn describe(&self) -> String {
        format!("pushover via {}", self.api_url)
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        out.send_request(Self::NAME, self.request(out)).await
    }
}

impl Pushover {
    fn request(&self, out: &Outgoing<'_>) -> Result<ServiceRequest, String> {
        let post = out.post();
        let mut body = json!({
            "token": self.token.expose(),
            "user": self.user,
            "title": cut(&post.title(), TITLE_CHARS),
            "message": html(&post, "\n", MESSAGE_CHARS),
            "html": 1,
            "priority": match Priority::of(out.alerts) {
                Priority::Low => -1,
                Priority::Normal => 0,
                Priority::High => 1,
            },
        });
        if let Some(link) = post.link().filter(|l| l.chars().count() <= URL_CHARS) {
            body["url"] = json!(link);
            body["url_title"] = json!("Open the story");
        }
        Ok(ServiceRequest::post(
            joined(&self.api_url, "/1/messages.json")?,
            &self.api_url,
            body,
        ))
    }
}
