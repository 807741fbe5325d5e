//! Checking how feeds are asked for over HTTP: a User-Agent, extra headers (values
//! from the file, an environment variable or a file of their own), basic auth and a
//! proxy, once under `[daemon]` and per feed.

use std::collections::BTreeMap;
use std::path::Path;

use super::check::Checker;
use super::raw::{RawFeed, RawHeaderValue};
use super::{ConfigError, KeyPath};
use crate::model::{FeedSource, RequestOptions};

impl Checker<'_> {
    /// The daemon's defaults for every feed.
    pub(super) fn daemon_request(
        &self,
        user_agent: Option<String>,
        headers: &BTreeMap<String, RawHeaderValue>,
        proxy: Option<String>,
        base: &Path,
    ) -> Result<RequestOptions, ConfigError> {
        let key = KeyPath::default().key("daemon");
        Ok(RequestOptions {
            user_agent,
            headers: self.headers(key.clone(), headers, base)?,
            basic_auth: None,
            proxy: proxy.map(|p| self.proxy(key.key("proxy"), p)).transpose()?,
        })
    }

    /// A feed's own options over the daemon's `defaults`: its user agent and proxy if
    /// it names them, its headers added to the daemon's (its own win), its basic auth.
    pub(super) fn feed_request(
        &self,
        key: KeyPath,
        raw: &RawFeed,
        source: &FeedSource,
        defaults: &RequestOptions,
        base: &Path,
    ) -> Result<RequestOptions, ConfigError> {
        if let FeedSource::Http(url) = source
            && (!url.username().is_empty() || url.password().is_some())
        {
            return Err(self.invalid(
                key.key("url"),
                "credentials in the URL are not used; write username = \"…\" and password_file or password_env in the feed instead",
            ));
        }
        let basic_auth = self
            .credentials(
                key.clone(),
                raw.username.clone(),
                (raw.password_file.as_deref(), raw.password_env.as_deref()),
                base,
            )?
            .map(|(user, password)| (user, password.expose().to_owned()));
        let mut headers = defaults.headers.clone();
        for (name, value) in self.headers(key.clone(), &raw.headers, base)? {
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
            headers.push((name, value));
        }
        Ok(RequestOptions {
            user_agent: raw.user_agent.clone().or(defaults.user_agent.clone()),
            headers,
            basic_auth,
            proxy: match &raw.proxy {
                Some(proxy) => Some(self.proxy(key.key("proxy"), proxy.clone())?),
                None => defaults.proxy.clone(),
            },
        })
    }

    /// A value as written, or read from `{ env = "VAR" }` or `{ file = "path" }`.
    pub(super) fn value_of(
        &self,
        key: KeyPath,
        value: &RawHeaderValue,
        base: &Path,
    ) -> Result<String, ConfigError> {
        match value {
            RawHeaderValue::Text(text) => Ok(text.clone()),
            RawHeaderValue::From { env, file } => Ok(self
                .read_secret(
                    key.clone(),
                    ("file", file.as_deref()),
                    ("env", env.as_deref()),
                    base,
                )?
                .ok_or_else(|| {
                    self.invalid(
                        key,
                        "give the value, or { env = \"VAR\" } or { file = \"path\" }",
                    )
                })?
                .expose()
                .to_owned()),
        }
    }

    /// `headers = { Name = "value" | { env = "VAR" } | { file = "path" } }`.
    pub(super) fn headers(
        &self,
        table: KeyPath,
        raw: &BTreeMap<String, RawHeaderValue>,
        base: &Path,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let mut headers = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            let key = table.clone().key("headers").key(name.clone());
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(self.invalid(key, format!("{name:?} is not a header name")));
            }
            let value = self.value_of(key.clone(), value, base)?;
            if reqwest::header::HeaderValue::from_str(&value).is_err() {
                return Err(self.invalid(key, "the value holds characters a header cannot carry"));
            }
            headers.push((name.clone(), value));
        }
        Ok(headers)
    }

    /// A proxy URL: `http://`, `https://`, `socks5://` or `socks5h://`.
    fn proxy(&self, key: KeyPath, proxy: String) -> Result<String, ConfigError> {
        let ok = url::Url::parse(&proxy).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h") && u.has_host()
        });
        if !ok {
            return Err(self.invalid(
                key,
                format!("{proxy:?} is not a proxy URL; write it as \"http://host:3128\" or \"socks5://host:1080\""),
            ));
        }
        Ok(proxy)
    }
}
