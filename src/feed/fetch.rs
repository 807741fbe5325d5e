//! Getting a feed's bytes: HTTP(S) with conditional GET, or a file from disk. Bodies are
//! counted while they stream in (after decompression) and cut at a cap.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use tokio::io::AsyncReadExt;

use crate::config::FeedSource;

/// Identifies newshound to the servers it polls.
pub const USER_AGENT: &str = concat!("newshound/", env!("CARGO_PKG_VERSION"));

/// Servers that redirect more often than this are treated as broken.
const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP cache validators from the last successful fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a fetch brought back.
#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed since the validators were issued.
    NotModified,
    Body {
        bytes: Vec<u8>,
        /// The `charset` parameter of `Content-Type`, if any.
        charset: Option<String>,
        validators: Validators,
    },
}

/// Why a fetch failed; [`FetchError::kind`] gives a stable short name for logs and status.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("server answered {status}{}", .retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    HttpStatus {
        status: StatusCode,
        /// What `Retry-After` asked for, on 429 and 503.
        retry_after: Option<Duration>,
    },
    #[error("body is larger than the {limit}-byte cap (daemon.max_feed_bytes)")]
    TooLarge { limit: u64 },
    #[error("no complete answer within {0:?} (daemon.fetch_timeout)")]
    Timeout(Duration),
    #[error("{0}")]
    Network(String),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl FetchError {
    /// How long the server asked us to wait before the next request, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::HttpStatus { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Timeout(_) => "timeout",
            FetchError::Network(_) => "network",
            FetchError::File { .. } => "file",
        }
    }
}

/// A shared HTTP client with the limits every fetch obeys.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_bytes: u64,
}

impl Fetcher {
    pub fn new(timeout: Duration, max_bytes: u64) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|e| FetchError::Network(error_chain(&e)))?;
        Ok(Fetcher {
            client,
            timeout,
            max_bytes,
        })
    }

    pub async fn fetch(
        &self,
        source: &FeedSource,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        match source {
            FeedSource::Http(url) => self.fetch_http(url.clone(), validators).await,
            FeedSource::File(path) => {
                let read = async {
                    let file = tokio::fs::File::open(path).await?;
                    let mut bytes = Vec::new();
                    // One byte past the cap tells "exactly at the cap" from "over it".
                    file.take(self.max_bytes + 1)
                        .read_to_end(&mut bytes)
                        .await?;
                    Ok(bytes)
                };
                let bytes = read.await.map_err(|source| FetchError::File {
                    path: path.display().to_string(),
                    source,
                })?;
                if bytes.len() as u64 > self.max_bytes {
                    return Err(FetchError::TooLarge {
                        limit: self.max_bytes,
                    });
                }
                Ok(Fetched::Body {
                    bytes,
                    charset: None,
                    validators: Validators::default(),
                })
            }
        }
    }

    async fn fetch_http(
        &self,
        url: url::Url,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        let mut request = self.client.get(url);
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, modified);
        }
        let response = request.send().await.map_err(|e| self.request_error(&e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            let retry_after = matches!(status.as_u16(), 429 | 503)
                .then(|| response.headers().get(reqwest::header::RETRY_AFTER))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
            return Err(FetchError::HttpStatus {
                status,
                retry_after,
            });
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let charset = header(CONTENT_TYPE).and_then(|ct| charset_of(&ct));
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(FetchError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.request_error(&e))?;
            if (bytes.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body {
            bytes,
            charset,
            validators,
        })
    }

    fn request_error(&self, e: &reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else {
            FetchError::Network(error_chain(e))
        }
    }
}

/// `a: b: c` from an error and its sources, since reqwest hides the cause in them.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3), relative to `now`.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = std::time::SystemTime::from(at.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `charset` parameter of a `Content-Type` value.
fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_as_seconds_or_a_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn reads_the_charset_parameter() {
        assert_eq!(
            charset_of("text/xml; charset=\"Windows-1251\""),
            Some("windows-1251".into())
        );
        assert_eq!(charset_of("application/rss+xml"), None);
    }
}
