//! Where a feed comes from, and what its server said to ask next time.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a feed is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
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
