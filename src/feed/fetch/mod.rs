//! Getting a feed's bytes: HTTP(S) with conditional GET, or a file from disk. Bodies are
//! counted while they stream in (after decompression) and cut at a cap.
//!
//! Leaves first: `resolve` turns host names into addresses (and refuses internal ones
//! where asked); `error` says why a fetch failed; `body` reads what came back;
//! `redirect` follows redirects hop by hop; `client` builds the HTTP clients and picks
//! those of a fetch. This file holds the [`Fetcher`], which puts them together.

mod body;
mod client;
mod error;
mod redirect;
mod resolve;

use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::Resolve;

pub use body::{Fetched, charset_of, media_type_of};
pub use error::FetchError;

use crate::http::is_internal;
use crate::model::{FeedSource, RequestOptions, Validators};
use client::Clients;
use redirect::{Hops, Reach};
use resolve::SystemResolver;

/// Fetches feeds and the pages their items link to, with shared HTTP clients and the
/// limits every fetch obeys: one timeout for the whole fetch, a cap on the body.
#[derive(Clone)]
pub struct Fetcher {
    clients: Clients,
    timeout: Duration,
    max_bytes: u64,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    pub fn new(timeout: Duration, max_bytes: u64) -> Result<Fetcher, FetchError> {
        Fetcher::with_resolver(timeout, max_bytes, Arc::new(SystemResolver))
    }

    /// [`Fetcher::new`] resolving names with `resolver` (tests map names to loopback).
    pub fn with_resolver(
        timeout: Duration,
        max_bytes: u64,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Fetcher, FetchError> {
        Ok(Fetcher {
            clients: Clients::new(timeout, resolver)?,
            timeout,
            max_bytes,
        })
    }

    pub async fn fetch(
        &self,
        source: &FeedSource,
        validators: &Validators,
        request: &RequestOptions,
    ) -> Result<Fetched, FetchError> {
        match source {
            FeedSource::Http(url) => self.fetch_http(url.clone(), validators, request).await,
            FeedSource::File(path) => body::read_file(path, self.max_bytes).await,
        }
    }

    /// GET with the validators, following redirects hop by hop, all within the one
    /// fetch timeout.
    async fn fetch_http(
        &self,
        url: url::Url,
        validators: &Validators,
        request: &RequestOptions,
    ) -> Result<Fetched, FetchError> {
        let reach = Reach {
            origin: Some(url.clone()),
            internal: is_internal(&url),
        };
        // The configured address is the user's choice; past the first hop, a public
        // feed's requests may not reach internal addresses.
        let hops = self.clients.hops(request, &reach, true)?;
        self.get(&hops, url, validators, request, &reach).await
    }

    /// GETs a page an item links to (the item's article). The link comes from the feed
    /// and is not trusted: it may reach an internal address only when the feed itself
    /// is configured on one (`feed`: its address, `None` for a file), and the feed's
    /// headers and credentials go only to the feed's own origin.
    pub async fn fetch_page(
        &self,
        link: url::Url,
        feed: Option<&url::Url>,
        request: &RequestOptions,
    ) -> Result<Fetched, FetchError> {
        if !matches!(link.scheme(), "http" | "https") {
            return Err(FetchError::Redirect(format!(
                "not a web address: a {} URL",
                link.scheme()
            )));
        }
        let reach = Reach {
            origin: feed.cloned(),
            internal: feed.is_some_and(is_internal),
        };
        if !reach.internal && is_internal(&link) {
            return Err(FetchError::BlockedAddress {
                url: link,
                redirected: false,
            });
        }
        let hops = self.clients.hops(request, &reach, false)?;
        self.get(&hops, link, &Validators::default(), request, &reach)
            .await
    }

    /// Follows the redirects from `url` and reads the answer, within the one fetch
    /// timeout.
    async fn get(
        &self,
        hops: &Hops,
        url: url::Url,
        validators: &Validators,
        request: &RequestOptions,
        reach: &Reach,
    ) -> Result<Fetched, FetchError> {
        let fetch = async {
            let (response, moved) =
                redirect::follow(hops, url, validators, request, reach, self.timeout).await?;
            body::read(response, moved, self.max_bytes, self.timeout).await
        };
        tokio::time::timeout(self.timeout, fetch)
            .await
            .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }
}
