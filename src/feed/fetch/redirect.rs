//! Following a fetch's redirects by hand, so that each hop is checked: at most
//! `MAX_REDIRECTS`, no loops, no https→http, no jump from a public feed to an internal
//! address; and a feed's headers and credentials go to its own origin only.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, LOCATION};

use super::error::FetchError;
use crate::http::is_internal;
use crate::model::{RequestOptions, Validators};

/// Servers that redirect more often than this are treated as broken.
const MAX_REDIRECTS: usize = 5;

/// Whom a fetch may reach.
pub(super) struct Reach {
    /// Requests to this origin carry the feed's headers and credentials.
    pub origin: Option<url::Url>,
    /// Whether requests may go to internal addresses: the feed is configured on one.
    pub internal: bool,
}

/// The client of a fetch's first request, and of the redirects after it.
pub(super) struct Hops {
    pub first: reqwest::Client,
    pub rest: reqwest::Client,
}

/// GETs `start` with the validators and follows its redirects; the answer that ends
/// them, and the feed's new address if every redirect on the way was permanent.
/// `timeout` is the fetch's, for errors.
pub(super) async fn follow(
    hops: &Hops,
    start: url::Url,
    validators: &Validators,
    options: &RequestOptions,
    reach: &Reach,
    timeout: Duration,
) -> Result<(reqwest::Response, Option<url::Url>), FetchError> {
    let mut url = start.clone();
    let mut visited: Vec<url::Url> = Vec::new();
    // Where the feed lives now, if every redirect on the way was permanent.
    let mut moved: Option<url::Url> = None;
    let mut all_permanent = true;
    loop {
        let client = if visited.is_empty() {
            &hops.first
        } else {
            &hops.rest
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
            .map_err(|e| FetchError::of_request(&e, &url, !visited.is_empty(), timeout))?;
        let status = response.status();
        if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
            return Ok((response, moved));
        }
        let next = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .ok_or_else(|| FetchError::Redirect(format!("{status} without a usable Location")))?;
        visited.push(url);
        check_redirect(&start, reach.internal, &visited, &next)?;
        all_permanent &= matches!(status.as_u16(), 301 | 308);
        moved = all_permanent.then(|| next.clone());
        url = next;
    }
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
        return Err(FetchError::BlockedAddress {
            url: next.clone(),
            redirected: true,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        s.parse().expect("test url")
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
}
