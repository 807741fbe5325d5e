//! The daemon as a service manager sees it: the events it is told, reloads that are
//! checked before they replace the running config, and the one-line status.

use std::time::Duration;

use tracing::{info, warn};

use super::metrics;
use super::pipeline::Pipeline;
use super::shared::Lasting;
use super::snapshot::{CONFIG_ERROR, Snapshot};
use crate::config::{Config, ConfigDiff, ConfigError};

/// What the daemon tells the service manager (systemd's `sd_notify`, or nobody).
pub enum ServiceEvent<'a> {
    /// Config loaded, store open, polling started (also after a reload).
    Ready,
    Reloading,
    Stopping,
    /// A sign of life from a scheduler that works.
    Watchdog,
    /// A one-line summary for `systemctl status`.
    Status(&'a str),
}

/// The service manager, as the daemon sees it. `main`/`cli` implement it, since only
/// they read the environment.
pub trait ServiceManager: Send + Sync {
    fn notify(&self, event: ServiceEvent<'_>);
    /// How often the manager wants a [`ServiceEvent::Watchdog`], if it watches.
    fn watchdog(&self) -> Option<Duration>;
}

/// Reads the config file again, as at start-up.
pub type Loader = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// How long a reload waits for more events about the same change.
pub(super) const SETTLE: Duration = Duration::from_millis(250);
/// How often the status line is refreshed without a watchdog.
pub(super) const STATUS_EVERY: Duration = Duration::from_secs(30);

/// Loads the config again and builds its pipeline (transports included); that
/// pipeline when the config is valid and differs, else `None` (and why is logged, and
/// kept for `/healthz` and `status` when it is an error). The running generation is
/// untouched until then.
pub(super) async fn reload(
    old: &Config,
    load: &Loader,
    build: &dyn Fn(Config) -> anyhow::Result<Pipeline>,
    cause: &str,
    lasting: &Lasting,
) -> Option<(Pipeline, ConfigDiff)> {
    let (store, health, now) = (&lasting.store, &lasting.health, lasting.clock.now());
    let next = match build_next(old, load, build) {
        Ok(next) => next,
        Err(error) => {
            warn!(cause, %error, "config reload failed; the running config stays");
            metrics::reloaded(false);
            if let Err(e) = store.set_note(CONFIG_ERROR, Some(&error), now).await {
                warn!(error = %e, "cannot record the refused config for `status`");
            }
            health.set_config_error(Some(error));
            return None;
        }
    };
    health.set_config_error(None);
    if let Err(e) = store.set_note(CONFIG_ERROR, None, now).await {
        warn!(error = %e, "cannot clear the refused config from `status`");
    }
    metrics::reloaded(true);
    match &next {
        None => info!(cause, "config reloaded: nothing changed"),
        Some((_, diff)) => info!(cause, changes = %diff, "config reloaded"),
    }
    next
}

/// The new config's pipeline and what changed (`None` when nothing did), or why the
/// new config is refused.
fn build_next(
    old: &Config,
    load: &Loader,
    build: &dyn Fn(Config) -> anyhow::Result<Pipeline>,
) -> Result<Option<(Pipeline, ConfigDiff)>, String> {
    let new = load().map_err(|e| e.to_string())?;
    if new.daemon.state_dir != old.daemon.state_dir {
        return Err(format!(
            "{}: daemon.state_dir cannot change while newshound runs; restart it to move its state",
            new.file.display()
        ));
    }
    if new.store != old.store {
        return Err(format!(
            "{}: [store] cannot change while newshound runs; restart it to use another database",
            new.file.display()
        ));
    }
    let diff = ConfigDiff::between(old, &new);
    if new.daemon.listen != old.daemon.listen {
        warn!("daemon.listen changed; the metrics endpoint moves at the next restart");
    }
    if diff.is_empty() {
        return Ok(None);
    }
    // Transports are set up before the running config is let go: a new one that cannot
    // start (an unreadable CA file, say) is refused like an invalid file.
    let next = build(new).map_err(|e| format!("{e:#}"))?;
    Ok(Some((next, diff)))
}

/// With `daemon.backfill_new_rules`, tries the rules a reload added on the items of
/// the last 24 hours.
pub(super) async fn backfill_new_rules(diff: &ConfigDiff, pipeline: &Pipeline) {
    let added = &diff.rules.added;
    if !pipeline.config().daemon.backfill_new_rules || added.is_empty() {
        return;
    }
    match pipeline
        .backfill(&added.iter().map(String::as_str).collect())
        .await
    {
        Ok(queued) => {
            info!(rules = %added.join(", "), queued, "new rules tried on the items of the last 24 h")
        }
        Err(e) => warn!(error = %e, "cannot try the new rules on recent items"),
    }
}

/// `12 feeds (1 broken), last poll 40 s ago, 0 alerts queued, 0 dead letters`, from
/// the heartbeat's `snapshot`.
pub(super) fn summary(config: &Config, lasting: &Lasting, snapshot: &Snapshot) -> String {
    let (health, now) = (&lasting.health, lasting.clock.now());
    let (counts, broken) = (&snapshot.outbox, snapshot.broken());
    let last_poll = health.last_poll().map_or_else(
        || "no poll yet".to_owned(),
        |at| format!("last poll {} s ago", (now - at).num_seconds().max(0)),
    );
    let mut line = format!(
        "{} feeds ({broken} broken), {last_poll}, {} alerts queued, {} dead letters",
        config.feeds.len(),
        counts.pending + counts.sending,
        counts.dead
    );
    if let Err(problem) = health.check() {
        line.push_str(&format!("; {problem}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::daemon::clock::Clock;
    use crate::store::Store;

    fn config(dir: &Path, rules: &str) -> Config {
        let text = format!(
            "[daemon]\nstate_dir = \"state\"\n\n[channels.inbox]\ntype = \"maildir\"\npath = \"a\"\n{rules}"
        );
        Config::from_toml(&dir.join("n.toml"), &text, &HashMap::new()).expect("valid")
    }

    const TALKS: &str =
        "[[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n";

    #[tokio::test]
    async fn a_config_whose_pipeline_cannot_start_is_refused_and_the_old_one_stays() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = config(dir.path(), "");
        let store = Store::open(&old.daemon.state_dir).await.expect("store");
        let lasting = Lasting::new(Arc::new(store), Clock::system());
        let (store, health) = (&lasting.store, &lasting.health);
        health.tick();
        let changed = config(dir.path(), TALKS);
        let load: Loader = Box::new(move || Ok(changed.clone()));
        let build = |_: Config| -> anyhow::Result<Pipeline> {
            Err(anyhow::anyhow!(
                "cannot set up the alert channels: smtp TLS setup: no roots"
            ))
        };
        assert!(
            reload(&old, &load, &build, "SIGHUP", &lasting)
                .await
                .is_none()
        );
        let why = health.check().expect_err("unhealthy");
        assert!(why.contains("smtp TLS setup: no roots"), "{why}");
        let (note, _) = store
            .note(CONFIG_ERROR)
            .await
            .expect("query")
            .expect("noted");
        assert!(note.contains("smtp TLS setup"), "{note}");
    }

    #[tokio::test]
    async fn an_unchanged_config_builds_nothing_and_clears_an_old_refusal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = config(dir.path(), TALKS);
        let store = Store::open(&old.daemon.state_dir).await.expect("store");
        store
            .set_note(CONFIG_ERROR, Some("earlier mistake"), Utc::now())
            .await
            .expect("note");
        let lasting = Lasting::new(Arc::new(store), Clock::system());
        let (store, health) = (&lasting.store, &lasting.health);
        health.tick();
        health.set_config_error(Some("earlier mistake".into()));
        let same = old.clone();
        let load: Loader = Box::new(move || Ok(same.clone()));
        let build = |_: Config| -> anyhow::Result<Pipeline> {
            panic!("nothing changed: no pipeline to build")
        };
        assert!(
            reload(&old, &load, &build, "SIGHUP", &lasting)
                .await
                .is_none()
        );
        assert_eq!(health.check(), Ok(()));
        assert_eq!(store.note(CONFIG_ERROR).await.expect("query"), None);
    }

    /// Regression: the systemd STATUS line counted every broken feed the store knew,
    /// /metrics only the configured ones; a feed removed from the config counted in one
    /// and not the other. All three readers (with `status`) read one snapshot.
    #[tokio::test]
    async fn status_the_status_line_and_metrics_count_only_configured_broken_feeds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let feeds = "[[feeds]]\nname = \"kept\"\nurl = \"file:k.xml\"\n";
        let config = config(dir.path(), feeds);
        let store = Store::open(&config.daemon.state_dir).await.expect("store");
        for name in ["kept", "removed"] {
            let feed = crate::model::FeedId(name.into());
            store
                .record_failure(
                    &feed,
                    crate::store::Failure {
                        kind: "timeout".into(),
                        message: "slow".into(),
                        retry_after_until: None,
                    },
                    Utc::now(),
                )
                .await
                .expect("failure");
            store
                .set_health(&feed, true, Vec::new(), Utc::now())
                .await
                .expect("broken");
        }
        let lasting = Lasting::new(Arc::new(store), Clock::system());
        let snapshot = Snapshot::read(&config, &lasting.store, Utc::now())
            .await
            .expect("snapshot");
        let line = summary(&config, &lasting, &snapshot);
        assert!(line.starts_with("1 feeds (1 broken)"), "{line}");
        assert_eq!(snapshot.broken(), 1, "/metrics");
        let scope = crate::daemon::Scope::Configured;
        let status = Snapshot::read_full(&config, Some(&lasting.store), scope, Utc::now())
            .await
            .expect("snapshot");
        assert_eq!(status.broken(), 1, "`status`");
    }
}
