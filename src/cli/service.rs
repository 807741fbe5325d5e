//! `newshound run` as a service: systemd notifications, signals (SIGTERM/SIGINT stop,
//! SIGHUP reloads) and a watch on the config file's folder (editors replace files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon::{self, ServiceEvent, ServiceManager};

/// systemd's notification socket (`Type=notify`); outside systemd every call does
/// nothing, since `NOTIFY_SOCKET` is not set.
struct Systemd {
    watchdog: Option<Duration>,
}

impl ServiceManager for Systemd {
    fn notify(&self, event: ServiceEvent<'_>) {
        use sd_notify::NotifyState;
        let state = match event {
            ServiceEvent::Ready => NotifyState::Ready,
            ServiceEvent::Reloading => NotifyState::Reloading,
            ServiceEvent::Stopping => NotifyState::Stopping,
            ServiceEvent::Watchdog => NotifyState::Watchdog,
            ServiceEvent::Status(line) => NotifyState::Status(line),
        };
        // A reload must carry the monotonic clock (systemd's Type=notify-reload).
        let when = matches!(event, ServiceEvent::Reloading)
            .then(NotifyState::monotonic_usec_now)
            .and_then(Result::ok);
        let states: Vec<NotifyState> = std::iter::once(state).chain(when).collect();
        if let Err(e) = sd_notify::notify(&states) {
            tracing::debug!(error = %e, "cannot notify systemd");
        }
    }

    fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP or a change to the config file
/// reloads it.
pub async fn run(
    config: Config,
    path: PathBuf,
    env: HashMap<String, String>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let (reload, reloads) = mpsc::channel(4);
    let watch = config
        .daemon
        .watch_config
        .then(|| ConfigWatch::start(&config, reload.clone()))
        .transpose()?;
    // Each load follows the config's `include` patterns as they are now.
    let loader: daemon::Loader = Box::new(move || {
        let loaded = Config::load(&path, &env);
        if let (Ok(config), Some(watch)) = (&loaded, &watch) {
            watch.follow(config);
        }
        loaded
    });
    let manager = Arc::new(Systemd {
        watchdog: sd_notify::watchdog_enabled(),
    });
    let serving = daemon::serve(config, loader, reloads, manager, shutdown.clone());
    tokio::pin!(serving);
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    loop {
        let stop = tokio::select! {
            result = &mut serving => return result,
            _ = hup.recv() => {
                // Full means a reload is already waiting; one is enough.
                let _ = reload.try_send("SIGHUP");
                continue;
            }
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = stop, "stop requested");
        shutdown.cancel();
        return serving.await;
    }
}

/// Watches the config file and the files its `include` patterns match, and asks for
/// a reload when one changes, appears or goes. Folders are watched, not files: an
/// editor saves by writing a new file and renaming it over the old one.
struct ConfigWatch {
    watcher: std::sync::Mutex<notify::RecommendedWatcher>,
    /// The config file, and the patterns of the included files, as absolute paths.
    watched: Arc<std::sync::RwLock<Watched>>,
}

#[derive(Default)]
struct Watched {
    file: PathBuf,
    patterns: Vec<glob::Pattern>,
    /// The folders watched now, with whether below them too.
    folders: std::collections::BTreeMap<PathBuf, bool>,
}

impl Watched {
    /// Whether an event about `path` may change the config: the file itself, an
    /// included file, or a folder that included files are looked for in.
    fn concerns(&self, path: &Path, removed: bool) -> bool {
        (path == self.file && !removed)
            || self.patterns.iter().any(|p| {
                p.matches_path(path) || Path::new(p.as_str()).ancestors().any(|a| a == path)
            })
    }
}

impl ConfigWatch {
    fn start(config: &Config, reload: mpsc::Sender<&'static str>) -> anyhow::Result<ConfigWatch> {
        use notify::Watcher;
        let watched = Arc::new(std::sync::RwLock::new(Watched {
            file: absolute(&config.file),
            ..Watched::default()
        }));
        let seen = Arc::clone(&watched);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let kind = event.kind;
            if !(kind.is_modify() || kind.is_create() || kind.is_remove()) {
                return;
            }
            let watched = seen.read().unwrap_or_else(|p| p.into_inner());
            if event
                .paths
                .iter()
                .any(|p| watched.concerns(p, kind.is_remove()))
            {
                let _ = reload.try_send("config file changed");
            }
        })
        .context("cannot watch the config file")?;
        let watch = ConfigWatch {
            watcher: std::sync::Mutex::new(watcher),
            watched,
        };
        let folder = watch.watched().file.parent().map(Path::to_owned);
        let folder = folder.unwrap_or_else(|| PathBuf::from("/"));
        watch
            .lock_watcher()
            .watch(&folder, notify::RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", folder.display()))?;
        watch.follow(config);
        Ok(watch)
    }

    /// Watches the folders `config`'s include patterns look in (those that exist), and
    /// no longer those it stopped using.
    fn follow(&self, config: &Config) {
        use notify::{RecursiveMode, Watcher};
        let mut folders = std::collections::BTreeMap::new();
        let mut patterns = Vec::new();
        for pattern in &config.include {
            let pattern = absolute(pattern);
            let text = pattern.to_string_lossy();
            if let Ok(compiled) = glob::Pattern::new(&text) {
                patterns.push(compiled);
            }
            // The folder before the first part with a wildcard, and below it too when
            // a later part has one (`rules.d/*/x.toml`, `**`).
            let fixed: PathBuf = pattern
                .components()
                .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
                .collect();
            let below = pattern.components().count() > fixed.components().count() + 1;
            if fixed.is_dir() {
                *folders.entry(fixed).or_insert(false) |= below;
            }
        }
        // No lock the watcher's callback takes is held while the watcher is changed:
        // the watcher waits for its event thread, which may be in that callback.
        let (before, main) = {
            let watched = self.watched();
            (
                watched.folders.clone(),
                watched.file.parent().map(Path::to_owned),
            )
        };
        let mut watcher = self.lock_watcher();
        for folder in before.keys().filter(|f| !folders.contains_key(*f)) {
            if Some(folder) != main.as_ref() {
                let _ = watcher.unwatch(folder);
            }
        }
        for (folder, &below) in &folders {
            if before.get(folder) == Some(&below) || Some(folder) == main.as_ref() {
                continue;
            }
            let mode = match below {
                true => RecursiveMode::Recursive,
                false => RecursiveMode::NonRecursive,
            };
            if let Err(e) = watcher.watch(folder, mode) {
                tracing::warn!(folder = %folder.display(), error = %e, "cannot watch a folder of included config files; SIGHUP reloads them");
            }
        }
        drop(watcher);
        let mut watched = self.watched.write().unwrap_or_else(|p| p.into_inner());
        watched.patterns = patterns;
        watched.folders = folders;
    }

    fn watched(&self) -> std::sync::RwLockReadGuard<'_, Watched> {
        self.watched.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_watcher(&self) -> std::sync::MutexGuard<'_, notify::RecommendedWatcher> {
        self.watcher.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `path` from the root, so that it compares with the paths events carry.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
