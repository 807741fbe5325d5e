//! `daemon.listen`: the status page on `/`, Prometheus metrics on `/metrics`,
//! liveness on `/healthz` and the atom channels' feeds on `/feeds/<name>.atom`.
//!
//! The pipeline counts what it does through `metrics`; [`start`] installs the recorder
//! and serves it. Gauges that describe the store (queue depth, broken feeds) are read
//! from it on each heartbeat by [`refresh`].

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::metrics;
use super::page::{status_page, unavailable_page};
use super::shared::Lasting;
use super::snapshot::Snapshot;
use crate::config::{Config, Transport};

/// `/healthz` waits this long for the store's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Endpoint {
    metrics: &'static PrometheusHandle,
    lasting: Lasting,
    running: Running,
}

/// The running config, replaced on each reload: what the status page and the atom
/// feeds show.
pub type Running = Arc<RwLock<Arc<Config>>>;

impl Endpoint {
    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.running.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Binds `addr` and serves the status page, `/metrics`, `/healthz` and the atom
/// channels' feeds until `shutdown`; returns the address bound (port 0 picks a free
/// one, and the log says which).
pub async fn start(
    addr: SocketAddr,
    lasting: Lasting,
    running: Running,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let metrics = metrics::recorder()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("daemon.listen: cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    info!(address = %bound, "serving /metrics and /healthz, and the status page on /");
    let app = axum::Router::new()
        .route("/", axum::routing::get(status))
        .route("/metrics", axum::routing::get(render_metrics))
        .route("/healthz", axum::routing::get(healthz))
        .route("/feeds/{file}", axum::routing::get(atom_feed))
        .route(
            "/feedback",
            axum::routing::get(feedback_link).post(feedback_vote),
        )
        .layer(axum::middleware::map_response(hardened))
        .with_state(Endpoint {
            metrics,
            lasting,
            running,
        });
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            warn!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}

/// The content security policy of every answer, but for where forms may post.
macro_rules! POLICY {
    () => {
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
         base-uri 'none'; form-action "
    };
}
/// A header a handler sets (and [`hardened`] removes) for a page whose form posts.
const FEEDBACK_FORM: &str = "x-newshound-form";

/// What every answer served here says of itself: not to be sniffed as another type,
/// run no script (the status page's only inline part is its style), not to be framed,
/// and leave no referrer when a link on it is followed.
async fn hardened(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    let headers = response.headers_mut();
    // The feedback page's button posts to its own origin; every other page has no form.
    let policy = match headers.remove(FEEDBACK_FORM) {
        Some(_) => concat!(POLICY!(), "'self'"),
        None => concat!(POLICY!(), "'none'"),
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `/feedback?…` (GET): what the link's vote would do, with the button that casts it.
async fn feedback_link(
    State(endpoint): State<Endpoint>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let query = uri.query().unwrap_or_default();
    let (status, page) =
        super::feedback::confirm(&endpoint.lasting, &endpoint.config(), query).await;
    feedback_page(status, &page)
}

/// `/feedback` (POST): the button's vote, recorded.
async fn feedback_vote(
    State(endpoint): State<Endpoint>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let (status, page) = super::feedback::vote(&endpoint.lasting, &endpoint.config(), &body).await;
    feedback_page(status, &page)
}

fn feedback_page(
    status: StatusCode,
    page: &crate::render::status::FeedbackPage,
) -> axum::response::Response {
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::HeaderName::from_static(FEEDBACK_FORM), "1"),
            ],
            html,
        )
            .into_response(),
        Err(error) => {
            warn!(%error, "cannot make the feedback page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot make the page\n").into_response()
        }
    }
}

async fn render_metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        endpoint.metrics.render(),
    )
}

/// `/`: the status page, read from the store at each request; while the store cannot
/// be read, a page that says so (503).
async fn status(
    State(endpoint): State<Endpoint>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let config = endpoint.config();
    let lasting = &endpoint.lasting;
    let now = lasting.clock.now();
    // `?page=N`: which page of feeds; the first for anything else.
    let page = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("page=")?.parse().ok())
        .unwrap_or(1);
    let (status, page) = match status_page(&config, &lasting.store, now, page).await {
        Ok(page) => (StatusCode::OK, page),
        Err(e) => {
            warn!(error = %e, "cannot read the state for the status page");
            lasting.health.store_answered(Err(e.to_string()));
            (
                StatusCode::SERVICE_UNAVAILABLE,
                unavailable_page(e.to_string(), now),
            )
        }
    };
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(error) => {
            warn!(%error, "cannot make the status page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot make the status page; see the daemon's log\n",
            )
                .into_response()
        }
    }
}

/// `/healthz`: asks the store something cheap first, so that a store that stopped
/// answering shows here even while nothing else asks it.
async fn healthz(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    let lasting = &endpoint.lasting;
    let asked = tokio::time::timeout(PROBE_TIMEOUT, lasting.store.next_due()).await;
    lasting.health.store_answered(match asked {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    });
    match lasting.health.check() {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

/// `/feeds/<channel>.atom`: an atom channel's file, with an ETag of its content (a
/// request that sends it back gets 304).
async fn atom_feed(
    State(endpoint): State<Endpoint>,
    axum::extract::Path(file): axum::extract::Path<String>,
    request: axum::http::HeaderMap,
) -> axum::response::Response {
    let config = endpoint.config();
    let path =
        file.strip_suffix(".atom")
            .and_then(|name| match &config.channels.get(name)?.transport {
                Transport::Atom(atom) => Some(atom.path.clone()),
                _ => None,
            });
    let Some(path) = path else {
        return (StatusCode::NOT_FOUND, "no such feed\n").into_response();
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (StatusCode::NOT_FOUND, "no matches yet\n").into_response();
        }
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read an atom channel's feed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the feed\n").into_response();
        }
    };
    use sha2::Digest as _;
    let etag = format!(
        "\"{}\"",
        crate::model::hex(&sha2::Sha256::digest(&bytes)[..12])
    );
    if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "application/atom+xml; charset=utf-8".to_owned(),
            ),
            (header::ETAG, etag),
        ],
        bytes,
    )
        .into_response()
}

/// Sets the gauges read from the store: the heartbeat's `snapshot`.
pub fn refresh(snapshot: &Snapshot) {
    metrics::state(metrics::State {
        outbox: &snapshot.outbox,
        broken: snapshot.broken(),
        last_success: snapshot.last_success(),
        seen_items: snapshot.seen_items,
        bytes: snapshot.state_bytes,
        last_prune: snapshot.last_prune.as_ref(),
    });
}
