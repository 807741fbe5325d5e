//! What the daemon counts for `/metrics`: the names, the recorder, and one function per
//! thing counted. A leaf: the poller, the dispatcher and the web server all use it, and
//! it uses none of them. The `metrics` macros cost nothing until [`recorder`] installs a
//! recorder (once per process).

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::{OutboxCounts, Pruned};

const POLLS: &str = "newshound_polls_total";
const POLL_SECONDS: &str = "newshound_poll_duration_seconds";
const ITEMS: &str = "newshound_items_seen_total";
const GAPS: &str = "newshound_feed_gaps_total";
const DROPPED: &str = "newshound_items_dropped_total";
const MATCHES: &str = "newshound_matches_total";
const ALERTS: &str = "newshound_alerts_total";
const RELOADS: &str = "newshound_config_reloads_total";
const OUTBOX: &str = "newshound_outbox";
const DEAD: &str = "newshound_dead_letters";
const BROKEN: &str = "newshound_feeds_broken";
const LAST_POLL: &str = "newshound_last_successful_poll_timestamp_seconds";
const SEEN: &str = "newshound_seen_items";
const STATE_BYTES: &str = "newshound_state_bytes";
const LAST_PRUNE: &str = "newshound_last_prune_timestamp_seconds";
const PRUNED: &str = "newshound_last_prune_deleted_rows";

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's metrics recorder, installed on first use; the reload counters start at
/// zero so that a rate over them is defined before the first reload.
pub fn recorder() -> anyhow::Result<&'static PrometheusHandle> {
    if let Some(handle) = RECORDER.get() {
        return Ok(handle);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(POLL_SECONDS.into()),
            &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        )
        .context("metrics buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    for result in ["success", "failure"] {
        ::metrics::counter!(RELOADS, "result" => result).absolute(0);
    }
    Ok(RECORDER.get_or_init(|| handle))
}

/// A poll ended: `ok`, `not_modified` or the error's kind.
pub fn polled(result: &'static str) {
    ::metrics::counter!(POLLS, "result" => result).increment(1);
}

/// A poll found that its feed published more than it keeps since the last one.
pub fn gap() {
    ::metrics::counter!(GAPS).increment(1);
}

/// A filter dropped an item of `feed`.
pub fn dropped(feed: &crate::model::FeedId) {
    ::metrics::counter!(DROPPED, "feed" => feed.0.clone()).increment(1);
}

/// A poll found `n` items not seen before.
pub fn items_seen(n: usize) {
    ::metrics::counter!(ITEMS).increment(n as u64);
}

/// A poll took `took`, fetch to commit.
pub fn poll_took(took: Duration) {
    ::metrics::histogram!(POLL_SECONDS).record(took.as_secs_f64());
}

/// `rule` matched an item.
pub fn matched(rule: &str) {
    ::metrics::counter!(MATCHES, "rule" => rule.to_owned()).increment(1);
}

/// `n` alerts through `channel` ended as `outcome` (`sent`, `retry`, `dead`).
pub fn alerts(channel: &str, outcome: &'static str, n: usize) {
    ::metrics::counter!(ALERTS, "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(n as u64);
}

/// A config reload succeeded or failed.
pub fn reloaded(ok: bool) {
    let result = if ok { "success" } else { "failure" };
    ::metrics::counter!(RELOADS, "result" => result).increment(1);
}

/// The state as the gauges show it.
pub struct State<'a> {
    pub outbox: &'a OutboxCounts,
    pub broken: usize,
    pub last_success: Option<DateTime<Utc>>,
    pub seen_items: u64,
    pub bytes: u64,
    pub last_prune: Option<&'a (Pruned, DateTime<Utc>)>,
}

/// Sets the gauges read from the store, and lets the recorder tidy up.
pub fn state(state: State<'_>) {
    let State {
        outbox: counts,
        broken,
        last_success,
        seen_items,
        bytes,
        last_prune,
    } = state;
    for (state, n) in [
        ("pending", counts.pending),
        ("sending", counts.sending),
        ("sent", counts.sent),
        ("merged", counts.merged),
        ("held", counts.held),
    ] {
        ::metrics::gauge!(OUTBOX, "state" => state).set(n as f64);
    }
    ::metrics::gauge!(DEAD).set(counts.dead as f64);
    ::metrics::gauge!(BROKEN).set(broken as f64);
    ::metrics::gauge!(SEEN).set(seen_items as f64);
    ::metrics::gauge!(STATE_BYTES).set(bytes as f64);
    if let Some((pruned, at)) = last_prune {
        ::metrics::gauge!(LAST_PRUNE).set(at.timestamp() as f64);
        for (kind, n) in [
            ("seen_items", pruned.seen_items),
            ("sent", pruned.sent),
            ("merged", pruned.merged),
            ("dead", pruned.dead),
            ("held", pruned.held),
            ("feeds", pruned.feeds),
        ] {
            ::metrics::gauge!(PRUNED, "kind" => kind).set(n as f64);
        }
    }
    if let Some(last) = last_success {
        ::metrics::gauge!(LAST_POLL).set(last.timestamp() as f64);
    }
    if let Some(handle) = RECORDER.get() {
        handle.run_upkeep();
    }
}
