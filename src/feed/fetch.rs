//! Getting a feed's bytes: HTTP(S) with conditional GET, or a file from disk. Bodies are
//! counted while they stream in (after decompression) and cut at a cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use tokio::io::AsyncReadExt;

use reqwest::dns::Resolve;

use super::resolve::{PublicOnly, Refused, SystemResolver};
use crate::http::{USER_AGENT, error_chain, retry_after_of};
use crate::model::{FeedSource, RequestOptions, Validators};

/// Servers that redirect more often than this are treated as broken.
const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    #[error(
        "redirect to an internal address refused: {0} (a public feed may not point newshound at local services)"
    )]
    BlockedAddress(url::Url),
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
            FetchError::BlockedAddress(_) => "blocked_address",
            FetchError::File { .. } => "file",
        }
    }
}

/// Shared HTTP clients with the limits every fetch obeys: one that follows the
/// environment's proxy settings, one for the redirects of public feeds (its resolver
/// refuses internal addresses), and one per proxy a feed names.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    public_only: reqwest::Client,
    proxied: Arc<Mutex<HashMap<String, reqwest::Client>>>,
    resolver: Arc<dyn Resolve>,
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
        let public_only: Arc<dyn Resolve> = Arc::new(PublicOnly(Arc::clone(&resolver)));
        Ok(Fetcher {
            client: client(timeout, None, Arc::clone(&resolver))?,
            public_only: client(timeout, None, public_only)?,
            proxied: Arc::default(),
            resolver,
            timeout,
            max_bytes,
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

    pub async fn fetch(
        &self,
        source: &FeedSource,
        validators: &Validators,
        request: &RequestOptions,
    ) -> Result<Fetched, FetchError> {
        match source {
            FeedSource::Http(url) => self.fetch_http(url.clone(), validators, request).await,
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
                let bytes = read.await.map_err(|e: std::io::Error| FetchError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                if bytes.len() as u64 > self.max_bytes {
                    return Err(FetchError::TooLarge {
                        limit: self.max_bytes,
                    });
                }
                Ok(Fetched::Body {
                    bytes,
                    content_type: None,
                    validators: Validators::default(),
                    moved: None,
                    max_age: None,
                })
            }
        }
    }

    /// GET with the validators, following at most [`MAX_REDIRECTS`] redirects by hand
    /// so that each hop is checked (no loops, no https→http, no jump from a public host
    /// to an internal address), all within the one fetch timeout.
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
        let clients = self.clients(request, &reach, true)?;
        self.get(&clients, url, validators, request, &reach).await
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
            return Err(FetchError::BlockedAddress(link));
        }
        let clients = self.clients(request, &reach, false)?;
        self.get(&clients, link, &Validators::default(), request, &reach)
            .await
    }

    /// The clients of a fetch's hops: through the feed's proxy if it names one (the
    /// proxy resolves names), else with a resolver that refuses internal addresses
    /// wherever `reach` forbids them (from the first hop unless `first_trusted`).
    fn clients(
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

    /// [`Fetcher::follow`] within the one fetch timeout.
    async fn get(
        &self,
        clients: &Hops,
        url: url::Url,
        validators: &Validators,
        request: &RequestOptions,
        reach: &Reach,
    ) -> Result<Fetched, FetchError> {
        tokio::time::timeout(
            self.timeout,
            self.follow(clients, url, validators, request, reach),
        )
        .await
        .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }

    async fn follow(
        &self,
        clients: &Hops,
        start: url::Url,
        validators: &Validators,
        options: &RequestOptions,
        reach: &Reach,
    ) -> Result<Fetched, FetchError> {
        let mut url = start.clone();
        let mut visited: Vec<url::Url> = Vec::new();
        // Where the feed lives now, if every redirect on the way was permanent.
        let mut moved: Option<url::Url> = None;
        let mut all_permanent = true;
        let response = loop {
            let client = if visited.is_empty() {
                &clients.first
            } else {
                &clients.rest
            };
            let mut request = client.get(url.clone());
            if let Some(agent) = &options.user_agent {
                request = request.header(reqwest::header::USER_AGENT, agent);
            }
            // Credentials and custom headers are the feed's host's own: a redirect to
            // another host does not get them.
            if reach.origin.as_ref().is_some_and(|o| same_origin(o, &url)) {
                for (name, value) in &options.headers {
                    request = request.header(name, value);
                }
                if let Some((user, password)) = &options.basic_auth {
                    request = request.basic_auth(user, Some(password));
                }
            }
            if let Some(etag) = &validators.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &validators.last_modified {
                request = request.header(IF_MODIFIED_SINCE, modified);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.request_error(&e, &url))?;
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                break response;
            }
            let next = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| {
                    FetchError::Redirect(format!("{status} without a usable Location"))
                })?;
            visited.push(url);
            check_redirect(&start, reach.internal, &visited, &next)?;
            all_permanent &= matches!(status.as_u16(), 301 | 308);
            moved = all_permanent.then(|| next.clone());
            url = next;
        };
        let status = response.status();
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age_of);
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
        let content_type = header(CONTENT_TYPE);
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
            let chunk = chunk.map_err(|e| self.request_error(&e, &url))?;
            if (bytes.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_bytes,
                });
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

    fn request_error(&self, e: &reqwest::Error, url: &url::Url) -> FetchError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(error) = cause {
            if error.downcast_ref::<Refused>().is_some() {
                return FetchError::BlockedAddress(url.clone());
            }
            cause = error.source();
        }
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else {
            FetchError::Network(error_chain(e))
        }
    }
}

/// Whom a fetch may reach.
struct Reach {
    /// Requests to this origin carry the feed's headers and credentials.
    origin: Option<url::Url>,
    /// Whether requests may go to internal addresses: the feed is configured on one.
    internal: bool,
}

/// The client of a fetch's first request, and of the redirects after it.
struct Hops {
    first: reqwest::Client,
    rest: reqwest::Client,
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
        // Redirects are followed in `follow`, where each hop is checked.
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

/// Whether two URLs have the same scheme, host and port.
fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether following a redirect to `next` is allowed, `visited` holding every URL
/// requested so far (the first being `start`), `internal` whether the feed is
/// configured on an internal address.
fn check_redirect(
    start: &url::Url,
    internal: bool,
    visited: &[url::Url],
    next: &url::Url,
) -> Result<(), FetchError> {
    if visited.len() > MAX_REDIRECTS {
        return Err(FetchError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects"
        )));
    }
    if visited.contains(next) {
        return Err(FetchError::Redirect(format!(
            "redirect loop back to {next}"
        )));
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(FetchError::Redirect(format!("to a {} URL", next.scheme())));
    }
    let from = visited.last().unwrap_or(start);
    if from.scheme() == "https" && next.scheme() == "http" {
        return Err(FetchError::Redirect(format!(
            "https to plain http ({next})"
        )));
    }
    // Feeds configured on an internal address are the user's choice; a public feed
    // redirecting there is a way to make newshound probe the local network.
    if !internal && is_internal(next) {
        return Err(FetchError::BlockedAddress(next.clone()));
    }
    Ok(())
}

/// Whether a URL names this machine or a private, link-local or unique-local address
/// (IPv4-mapped IPv6 forms included). Host names are judged by name only
/// (`localhost`); the redirects of a public feed go through a resolver that refuses
/// internal addresses where the connection is made (`resolve::PublicOnly`).
pub fn is_internal(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => is_internal_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal_ip(ip.into()),
        None => false,
    }
}

/// Loopback, private, link-local, unique-local or unspecified, also as IPv4-mapped IPv6.
pub(super) fn is_internal_ip(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    let v4 = |ip: Ipv4Addr| {
        ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
    };
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => v4(mapped),
            None => {
                let first = ip.segments()[0];
                ip.is_loopback()
                    || ip.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
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

    fn url(s: &str) -> url::Url {
        s.parse().expect("test url")
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "http://127.0.0.1/",
            "http://127.8.9.10/",
            "http://[::1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fc00::1]/",
            "http://[fd12::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://0.0.0.0/",
        ] {
            assert!(is_internal(&url(internal)), "{internal}");
        }
        for public in [
            "https://example.org/",
            "http://172.32.0.1/",
            "http://8.8.8.8/",
            "http://[2001:db8::1]/",
        ] {
            assert!(!is_internal(&url(public)), "{public}");
        }
    }

    /// `localhost` resolves through the hosts file, so this needs no network.
    #[tokio::test]
    async fn the_redirect_resolver_refuses_names_of_internal_addresses() {
        let resolver = PublicOnly(Arc::new(SystemResolver));
        let name = "localhost".parse().expect("a name");
        let refused = resolver.resolve(name).await.err().expect("refused");
        assert!(
            refused
                .to_string()
                .starts_with("localhost resolves to the internal address")
        );
    }

    #[test]
    fn redirects_are_checked_hop_by_hop() {
        let public = url("https://news.example.org/rss");
        let ok =
            |next: &str| check_redirect(&public, false, std::slice::from_ref(&public), &url(next));
        assert!(ok("https://www.example.org/feed").is_ok());
        let kind = |r: Result<(), FetchError>| r.expect_err("refused").kind();
        assert_eq!(
            kind(ok("http://www.example.org/feed")),
            "redirect",
            "https→http"
        );
        assert_eq!(kind(ok("https://169.254.169.254/")), "blocked_address");
        assert_eq!(kind(ok("https://[::ffff:192.168.0.1]/")), "blocked_address");
        assert_eq!(kind(ok("https://news.example.org/rss")), "redirect", "loop");
        assert_eq!(kind(ok("ftp://example.org/feed")), "redirect");
        let chain: Vec<url::Url> = (0..6)
            .map(|i| url(&format!("https://example.org/{i}")))
            .collect();
        assert_eq!(
            kind(check_redirect(
                &public,
                false,
                &chain,
                &url("https://example.org/x")
            )),
            "redirect"
        );
        // A feed configured on a local bridge may redirect within the local network.
        let local = url("http://127.0.0.1:3000/rss");
        assert!(
            check_redirect(
                &local,
                true,
                std::slice::from_ref(&local),
                &url("http://192.168.1.5/rss")
            )
            .is_ok()
        );
    }

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
