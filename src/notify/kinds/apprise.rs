//! `type = "apprise"`: an apprise-api `/notify` endpoint (stateful with a key in its
//! path, or stateless given `urls`), optionally only its services tagged `tag`.

use serde::Deserialize;
use serde_json::json;

use super::{Kind, Outgoing, Settings};
use crate::model::{RawHeaderValue, Secret};
use crate::notify::DeliveryError;
use crate::notify::message::{ServiceRequest, markdown};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apprise {
    pub url: url::Url,
    pub urls: Option<Secret>,
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    url: String,
    /// Apprise URLs to notify (the stateless endpoint), which may hold tokens.
    urls: Option<RawHeaderValue>,
    tag: Option<String>,
}

impl Kind for Apprise {
    const NAME: &'static str = "apprise";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Apprise, S::Error> {
        let url = settings.address("url", Some(&raw.url), "")?;
        let urls = raw
            .urls
            .map(|u| settings.value("urls", &u).map(Secret::new))
            .transpose()?;
        Ok(Apprise {
            url,
            urls,
            tag: raw.tag,
        })
    }

    fn describe(&self) -> String {
        match &self.tag {
            Some(tag) => format!("apprise {} (tag {tag})", self.url),
            None => format!("apprise {}", self.url),
        }
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let post = out.post();
        let mut body = json!({
            "title": post.title(),
            "body": markdown(&post),
            "format": "markdown",
            "type": "info",
        });
        if let Some(urls) = &self.urls {
            body["urls"] = json!(urls.expose());
        }
        if let Some(tag) = &self.tag {
            body["tag"] = json!(tag);
        }
        let request = ServiceRequest::post(self.url.clone(), &self.url, body);
        out.send_request(Self::NAME, Ok(request)).await
    }
}
