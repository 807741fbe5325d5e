//! `type = "gotify"`: a Gotify server's `/message`, with an application's token.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use super::{Kind, Outgoing, Settings};
use crate::model::{Priority, Secret};
use crate::notify::DeliveryError;
use crate::notify::message::{ServiceRequest, joined, markdown};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gotify {
    pub url: url::Url,
    pub token: Secret,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    url: String,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
}

impl Kind for Gotify {
    const NAME: &'static str = "gotify";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Gotify, S::Error> {
        let token = settings.token("token", raw.token_file.as_deref(), raw.token_env.as_deref())?;
        let url = settings.address("url", Some(&raw.url), "")?;
        Ok(Gotify { url, token })
    }

    fn describe(&self) -> String {
        format!("gotify {}", self.url)
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        out.send_request(Self::NAME, self.request(out)).await
    }
}

impl Gotify {
    fn request(&self, out: &Outgoing<'_>) -> Result<ServiceRequest, String> {
        let post = out.post();
        let mut body = json!({
            "title": post.title(),
            "message": markdown(&post),
            "priority": match Priority::of(out.alerts) {
                Priority::Low => 2,
                Priority::Normal => 5,
                Priority::High => 8,
            },
            "extras": { "client::display": { "contentType": "text/markdown" } },
        });
        if let Some(link) = post.link() {
            body["extras"]["client::notification"] = json!({ "click": { "url": link } });
        }
        Ok(ServiceRequest {
            headers: vec![("X-Gotify-Key".into(), self.token.clone())],
            ..ServiceRequest::post(joined(&self.url, "/message")?, &self.url, body)
        })
    }
}
