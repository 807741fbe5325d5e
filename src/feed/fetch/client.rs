//! The HTTP clients of fetches, with the limits every fetch obeys: one that follows the
//! environment's proxy settings, one for the redirects of public feeds (its resolver
//! refuses internal addresses), and one per proxy a feed names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::dns::Resolve;

use super::error::FetchError;
use super::redirect::{Hops, Reach};
use super::resolve::PublicOnly;
use crate::http::{USER_AGENT, error_chain};
use crate::model::RequestOptions;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The clients, built once and shared by every fetch.
#[derive(Clone)]
pub(super) struct Clients {
    client: reqwest::Client,
    public_only: reqwest::Client,
    proxied: Arc<Mutex<HashMap<String, reqwest::Client>>>,
    resolver: Arc<dyn Resolve>,
    timeout: Duration,
}

impl Clients {
    /// Clients that give up after `timeout` and resolve names with `resolver`.
    pub fn new(timeout: Duration, resolver: Arc<dyn Resolve>) -> Result<Clients, FetchError> {
        let public_only: Arc<dyn Resolve> = Arc::new(PublicOnly(Arc::clone(&resolver)));
        Ok(Clients {
            client: client(timeout, None, Arc::clone(&resolver))?,
            public_only: client(timeout, None, public_only)?,
            proxied: Arc::default(),
            resolver,
            timeout,
        })
    }

    /// The client for a feed's proxy (built on first use), or the default one.
    fn client_for(&self, proxy: Option<&str>) -> Result<reqwest::Client, FetchError> {
        let Some(proxy) = proxy else {
            return Ok(self.client.clone());
        };
        let mut clients = self.proxied.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(proxy) {
            return Ok(client.clone());
        }
        let client = client(self.timeout, Some(proxy), Arc::clone(&self.resolver))?;
        clients.insert(proxy.to_owned(), client.clone());
        Ok(client)
    }

    /// The clients of a fetch's hops: through the feed's proxy if it names one (the
    /// proxy resolves names), else with a resolver that refuses internal addresses
    /// wherever `reach` forbids them (from the first hop unless `first_trusted`).
    pub fn hops(
        &self,
        request: &RequestOptions,
        reach: &Reach,
        first_trusted: bool,
    ) -> Result<Hops, FetchError> {
        let client = self.client_for(request.proxy.as_deref())?;
        let guarded = match request.proxy {
            None if !reach.internal => self.public_only.clone(),
            _ => client.clone(),
        };
        Ok(Hops {
            first: if first_trusted {
                client
            } else {
                guarded.clone()
            },
            rest: guarded,
        })
    }
}

/// A client with the fetch limits, through `proxy` if given (else through the
/// environment's proxy settings).
fn client(
    timeout: Duration,
    proxy: Option<&str>,
    resolver: Arc<dyn Resolve>,
) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .dns_resolver(resolver)
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        // Redirects are followed in `redirect::follow`, where each hop is checked.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(proxy) = proxy {
        let proxy = reqwest::Proxy::all(proxy)
            .map_err(|e| FetchError::Network(format!("proxy {proxy}: {}", error_chain(&e))))?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| FetchError::Network(error_chain(&e)))
}
