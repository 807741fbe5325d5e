//! The daemon as a service: one lock on the state directory, a generation of poll
//! and dispatch tasks per config, reloads that swap generations without losing
//! state, liveness for the service manager's watchdog and for `/healthz`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Health, Pipeline, observe};
use crate::config::{Config, ConfigError};
use crate::store::Store;

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

/// The store note (`status`) holding why the config on disk is not the one running.
pub const CONFIG_ERROR: &str = "config_error";
/// How long a reload waits for more events about the same change.
const SETTLE: Duration = Duration::from_millis(250);
/// How often the status line is refreshed without a watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// One config's poll and dispatch tasks.
struct Generation {
    pipeline: Arc<Pipeline>,
    stop: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Generation {
    fn start(pipeline: Pipeline, parent: &CancellationToken) -> Generation {
        let pipeline = Arc::new(pipeline);
        let stop = parent.child_token();
        let running = tokio::spawn(super::run(Arc::clone(&pipeline), stop.clone()));
        Generation {
            pipeline,
            stop,
            running,
        }
    }

    /// Stops polling and dispatching; in-flight work gets the shutdown grace.
    async fn finish(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.running.await.context("the scheduler task panicked")?
    }
}

/// Runs the daemon until `shutdown`: holds the state directory's lock, starts the
/// scheduler on `config`, and on each message from `reloads` (its cause, for the
/// log) loads the config again and, when it is valid and different, swaps it in.
pub async fn serve(
    config: Config,
    load: Loader,
    mut reloads: mpsc::Receiver<&'static str>,
    manager: Arc<dyn ServiceManager>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (_lock, store) = super::open_state(&config.daemon.state_dir).await?;
    // The config just loaded is valid: whatever an earlier run refused is moot.
    store.set_note(CONFIG_ERROR, None, Utc::now()).await?;
    let health = Arc::new(Health::default());
    health.tick();
    let metrics = match config.daemon.listen {
        Some(addr) => Some(observe::start(addr, Arc::clone(&health), shutdown.clone()).await?),
        None => None,
    };
    // Liveness and the per-channel message counts outlive each config.
    let rate = Arc::default();
    let pipeline = |config: Config| -> anyhow::Result<Pipeline> {
        let mut pipeline = Pipeline::with_store(config, Arc::clone(&store))?;
        pipeline.health = Arc::clone(&health);
        pipeline.rate = Arc::clone(&rate);
        Ok(pipeline)
    };
    let mut current = Generation::start(pipeline(config)?, &shutdown);
    manager.notify(ServiceEvent::Ready);

    let beat = manager
        .watchdog()
        .map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut heartbeat = tokio::time::interval(beat);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(cause) = reloads.recv() => {
                // An editor's save comes as several events: take them as one.
                tokio::time::sleep(SETTLE).await;
                while reloads.try_recv().is_ok() {}
                manager.notify(ServiceEvent::Reloading);
                let old = &current.pipeline.config;
                if let Some(next) = reload(old, &load, &pipeline, cause, &health, &store).await {
                    let added: Vec<String> = next
                        .config
                        .rule_specs
                        .iter()
                        .filter(|r| !old.rule_specs.iter().any(|o| o.name == r.name))
                        .map(|r| r.name.clone())
                        .collect();
                    current.finish().await?;
                    current = Generation::start(next, &shutdown);
                    if current.pipeline.config.daemon.backfill_new_rules && !added.is_empty() {
                        let rules = added.iter().map(String::as_str).collect();
                        match current.pipeline.backfill(&rules).await {
                            Ok(queued) => info!(rules = %added.join(", "), queued, "new rules tried on the items of the last 24 h"),
                            Err(e) => warn!(error = %e, "cannot try the new rules on recent items"),
                        }
                    }
                }
                manager.notify(ServiceEvent::Ready);
            }
            _ = heartbeat.tick() => {
                let config = &current.pipeline.config;
                if health.scheduler().is_ok() {
                    manager.notify(ServiceEvent::Watchdog);
                }
                if metrics.is_some() {
                    observe::refresh(config, &store).await;
                }
                let summary = summary(config, &store, &health).await;
                manager.notify(ServiceEvent::Status(&summary));
            }
        }
    }
    manager.notify(ServiceEvent::Stopping);
    info!("shutting down");
    current.finish().await
}

/// Loads the config again and builds its pipeline (transports included); that
/// pipeline when the config is valid and differs, else `None` (and why is logged, and
/// kept for `/healthz` and `status` when it is an error). The running generation is
/// untouched until then.
async fn reload(
    old: &Config,
    load: &Loader,
    build: &dyn Fn(Config) -> anyhow::Result<Pipeline>,
    cause: &str,
    health: &Health,
    store: &Store,
) -> Option<Pipeline> {
    let (next, changes) = match build_next(old, load, build) {
        Ok(next) => next,
        Err(error) => {
            warn!(cause, %error, "config reload failed; the running config stays");
            observe::reloaded(false);
            if let Err(e) = store.set_note(CONFIG_ERROR, Some(&error), Utc::now()).await {
                warn!(error = %e, "cannot record the refused config for `status`");
            }
            health.set_config_error(Some(error));
            return None;
        }
    };
    health.set_config_error(None);
    if let Err(e) = store.set_note(CONFIG_ERROR, None, Utc::now()).await {
        warn!(error = %e, "cannot clear the refused config from `status`");
    }
    observe::reloaded(true);
    match &next {
        None => info!(cause, "config reloaded: nothing changed"),
        Some(_) => info!(cause, changes = %changes.join(", "), "config reloaded"),
    }
    next
}

/// The new config's pipeline (`None` when nothing changed) and what changed, or why
/// the new config is refused.
fn build_next(
    old: &Config,
    load: &Loader,
    build: &dyn Fn(Config) -> anyhow::Result<Pipeline>,
) -> Result<(Option<Pipeline>, Vec<String>), String> {
    let new = load().map_err(|e| e.to_string())?;
    if new.daemon.state_dir != old.daemon.state_dir {
        return Err(format!(
            "{}: daemon.state_dir cannot change while newshound runs; restart it to move its state",
            new.file.display()
        ));
    }
    let changes = new.changes_since(old);
    if new.daemon.listen != old.daemon.listen {
        warn!("daemon.listen changed; the metrics endpoint moves at the next restart");
    }
    if changes.is_empty() {
        return Ok((None, changes));
    }
    // Transports are set up before the running config is let go: a new one that cannot
    // start (an unreadable CA file, say) is refused like an invalid file.
    let next = build(new).map_err(|e| format!("{e:#}"))?;
    Ok((Some(next), changes))
}

/// `12 feeds (1 broken), last poll 40 s ago, 0 alerts queued, 0 dead letters`.
async fn summary(config: &Config, store: &Store, health: &Health) -> String {
    let snapshot = super::observe::Snapshot::read(config, store)
        .await
        .unwrap_or_default();
    let (counts, broken) = (&snapshot.outbox, snapshot.broken());
    let last_poll = health.last_poll().map_or_else(
        || "no poll yet".to_owned(),
        |at| format!("last poll {} s ago", (Utc::now() - at).num_seconds().max(0)),
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

    use super::*;

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
        let health = Health::default();
        health.tick();
        let changed = config(dir.path(), TALKS);
        let load: Loader = Box::new(move || Ok(changed.clone()));
        let build = |_: Config| -> anyhow::Result<Pipeline> {
            Err(anyhow::anyhow!(
                "cannot set up the alert channels: smtp TLS setup: no roots"
            ))
        };
        assert!(
            reload(&old, &load, &build, "SIGHUP", &health, &store)
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
        let health = Health::default();
        health.tick();
        health.set_config_error(Some("earlier mistake".into()));
        let same = old.clone();
        let load: Loader = Box::new(move || Ok(same.clone()));
        let build = |_: Config| -> anyhow::Result<Pipeline> {
            panic!("nothing changed: no pipeline to build")
        };
        assert!(
            reload(&old, &load, &build, "SIGHUP", &health, &store)
                .await
                .is_none()
        );
        assert_eq!(health.check(), Ok(()));
        assert_eq!(store.note(CONFIG_ERROR).await.expect("query"), None);
    }

    /// Regression: the systemd STATUS line counted every broken feed the store knew,
    /// /metrics only the configured ones; a feed removed from the config counted in one
    /// and not the other. Both read one snapshot of the configured feeds.
    #[tokio::test]
    async fn the_status_line_and_metrics_count_only_configured_broken_feeds() {
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
        let line = summary(&config, &store, &Health::default()).await;
        assert!(line.starts_with("1 feeds (1 broken)"), "{line}");
        let snapshot = super::super::observe::Snapshot::read(&config, &store)
            .await
            .expect("snapshot");
        assert_eq!(snapshot.broken(), 1);
    }
}
