//! Why a fetch failed, told from what reqwest and the resolver say.

use std::time::Duration;

use reqwest::StatusCode;

use super::resolve::Refused;
use crate::http::error_chain;

/// Why a fetch failed; [`FetchError::kind`] gives a stable short name for logs and status.
#[derive(Debug, Clone, thiserror::Error)]
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
    #[error("redirect refused: {0}")]
    Redirect(String),
    /// An internal address a public feed pointed at: by a redirect, or (an item's
    /// link) directly.
    #[error(
        "{} to an internal address refused: {url} (a public feed may not point newshound at local services)",
        if *.redirected { "redirect" } else { "link" }
    )]
    BlockedAddress { url: url::Url, redirected: bool },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
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
            FetchError::Redirect(_) => "redirect",
            FetchError::BlockedAddress { .. } => "blocked_address",
            FetchError::File { .. } => "file",
        }
    }

    /// The failure of a request to `url` (reached by a redirect, or not): a name the
    /// resolver refused, the fetch's `timeout`, or the network's error chain.
    pub(super) fn of_request(
        e: &reqwest::Error,
        url: &url::Url,
        redirected: bool,
        timeout: Duration,
    ) -> FetchError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(error) = cause {
            if error.downcast_ref::<Refused>().is_some() {
                return FetchError::BlockedAddress {
                    url: url.clone(),
                    redirected,
                };
            }
            cause = error.source();
        }
        if e.is_timeout() {
            FetchError::Timeout(timeout)
        } else {
            FetchError::Network(error_chain(e))
        }
    }
}
