//! What a fetch brought back: a 304, or a body read as it streams in (after
//! decompression) and cut at the cap, with the headers that say how to read it and how
//! long it stays fresh.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderName, LAST_MODIFIED};
use tokio::io::AsyncReadExt;

use super::error::FetchError;
use crate::http::retry_after_of;
use crate::model::Validators;

/// What a fetch brought back.
#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed since the validators were issued.
    NotModified {
        /// `Cache-Control: max-age`: how long the server says the answer stays fresh.
        max_age: Option<Duration>,
    },
    Body {
        bytes: Vec<u8>,
        /// The `Content-Type` header, if any: see [`charset_of`] and [`media_type_of`].
        content_type: Option<String>,
        validators: Validators,
        /// The new address, when the feed answered through permanent redirects only.
        moved: Option<url::Url>,
        /// `Cache-Control: max-age`: how long the server says the answer stays fresh.
        max_age: Option<Duration>,
    },
}

/// Reads the answer that ended a fetch's redirects: a 304, a failure status, or the body
/// counted as it streams in and cut at `max_bytes`. `moved` is where the feed lives now,
/// if every redirect on the way was permanent; `timeout` is the fetch's, for errors.
pub(super) async fn read(
    response: reqwest::Response,
    moved: Option<url::Url>,
    max_bytes: u64,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    let status = response.status();
    let header = |name: HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let max_age = header(CACHE_CONTROL).as_deref().and_then(max_age_of);
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified { max_age });
    }
    if !status.is_success() {
        let retry_after = retry_after_of(&response);
        return Err(FetchError::HttpStatus {
            status,
            retry_after,
        });
    }
    let validators = Validators {
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
    };
    let content_type = header(CONTENT_TYPE);
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let url = response.url().clone();
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        // The address answered already: no refusal of it can come from the body.
        let chunk = chunk.map_err(|e| FetchError::of_request(&e, &url, false, timeout))?;
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body {
        bytes,
        content_type,
        validators,
        moved,
        max_age,
    })
}

/// Reads a file at most `max_bytes` long.
pub(super) async fn read_file(path: &Path, max_bytes: u64) -> Result<Fetched, FetchError> {
    let read = async {
        let file = tokio::fs::File::open(path).await?;
        let mut bytes = Vec::new();
        // One byte past the cap tells "exactly at the cap" from "over it".
        file.take(max_bytes + 1).read_to_end(&mut bytes).await?;
        Ok(bytes)
    };
    let bytes = read.await.map_err(|e: std::io::Error| FetchError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if bytes.len() as u64 > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    Ok(Fetched::Body {
        bytes,
        content_type: None,
        validators: Validators::default(),
        moved: None,
        max_age: None,
    })
}

/// The `max-age` directive of a `Cache-Control` value (`no-store`/`no-cache` say
/// nothing about how often to poll, so they give `None`).
fn max_age_of(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// The media type of a `Content-Type` value (`text/html`), lowercase.
pub fn media_type_of(content_type: &str) -> Option<String> {
    let media = content_type.split(';').next()?.trim().to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}

/// The `charset` parameter of a `Content-Type` value.
pub fn charset_of(content_type: &str) -> Option<String> {
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
    fn reads_max_age_from_cache_control() {
        assert_eq!(
            max_age_of("public, max-age=900"),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            max_age_of("Max-Age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age_of("no-cache"), None);
        assert_eq!(max_age_of("max-age=soon"), None);
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
