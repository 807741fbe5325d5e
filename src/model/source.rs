//! Where a feed comes from, and what its server said to ask next time.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a feed is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FeedSource {
    Http(url::Url),
    /// `file:PATH` or `file://PATH`; a relative path is relative to the config file.
    File(PathBuf),
}

impl fmt::Display for FeedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedSource::Http(url) => write!(f, "{url}"),
            FeedSource::File(path) => write!(f, "file://{}", path.display()),
        }
    }
}

impl FeedSource {
    /// The feed's web address; `None` for a file.
    pub fn url(&self) -> Option<&url::Url> {
        match self {
            FeedSource::Http(url) => Some(url),
            FeedSource::File(_) => None,
        }
    }

    /// Parses a feed URL as written in the config; `base` resolves relative file paths.
    pub fn parse(url: &str, base: &Path) -> Result<FeedSource, String> {
        if let Some(path) = url
            .strip_prefix("file://")
            .or_else(|| url.strip_prefix("file:"))
        {
            if path.is_empty() {
                return Err("a file: URL needs a path, like \"file://feeds/news.xml\"".into());
            }
            return Ok(FeedSource::File(base.join(path)));
        }
        let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        match parsed.scheme() {
            "http" | "https" => Ok(FeedSource::Http(parsed)),
            other => Err(format!(
                "unsupported scheme {other:?} in {url:?}; use http, https or file"
            )),
        }
    }
}

/// HTTP cache validators from the last successful fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// How a feed is asked for over HTTP, beyond its URL: the feed's own options, or the
/// daemon's defaults. Header values and the password are secrets: `Debug` hides them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Instead of newshound's own User-Agent.
    pub user_agent: Option<String>,
    /// Sent to the feed's own host only, not to another after a redirect.
    pub headers: Vec<(String, String)>,
    /// HTTP basic auth (user, password); to the feed's own host only.
    pub basic_auth: Option<(String, String)>,
    /// `http://…`, `https://…` or `socks5://…`; without one, the environment's
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` apply.
    pub proxy: Option<String>,
}

impl fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("RequestOptions")
            .field("user_agent", &self.user_agent)
            .field("headers", &headers)
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(user, _)| user),
            )
            .field("proxy", &self.proxy)
            .finish()
    }
}
