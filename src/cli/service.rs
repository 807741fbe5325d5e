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

use crate::config::{Config, Include};
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
    // Each load follows the `include` patterns the main file names now, before it
    // reads their files: one that comes meanwhile is a change, not missed. A refused
    // load too, so that mending a file of a pattern just added reloads.
    let loader: daemon::Loader = Box::new(move || {
        let Some(watch) = &watch else {
            return Config::load(&path, &env);
        };
        let named = Include::of_file(&path);
        watch.follow_or_warn(&named);
        let loaded = Config::load(&path, &env);
        if let Ok(config) = &loaded
            && config.include != named
        {
            watch.follow_or_warn(&config.include);
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
    /// Each include pattern, and its part without a wildcard (from the root).
    patterns: Vec<(glob::Pattern, PathBuf)>,
    /// The folders watched now, with whether below them too.
    folders: std::collections::BTreeMap<PathBuf, bool>,
}

impl Watched {
    /// Whether an event about `path` may change the config: the file itself, an
    /// included file, a folder that included files are looked for in, or the
    /// `..data` link of a Kubernetes ConfigMap volume (it swaps every file at once,
    /// each a link through it, and no event names them).
    fn concerns(&self, path: &Path, removed: bool) -> bool {
        (path == self.file && !removed)
            || path.file_name().is_some_and(|name| name == "..data")
            || self.patterns.iter().any(|(pattern, literal)| {
                pattern.matches_path_with(path, Include::OPTIONS)
                    || literal.ancestors().any(|a| a == path)
            })
    }
}

impl ConfigWatch {
    fn start(config: &Config, reload: mpsc::Sender<&'static str>) -> anyhow::Result<ConfigWatch> {
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
        watch.follow(&config.include)?;
        Ok(watch)
    }

    /// Watches the config file's folder, and the folders the `includes` patterns look
    /// in (those that exist), below them too when a pattern reaches further down; no
    /// longer those it stopped using.
    fn follow(&self, includes: &[Include]) -> anyhow::Result<()> {
        use notify::Watcher;
        let main = self.watched().file.parent().map(Path::to_owned);
        let main = main.unwrap_or_else(|| PathBuf::from("/"));
        let mut folders = std::collections::BTreeMap::from([(main.clone(), false)]);
        let mut patterns = Vec::new();
        for include in includes {
            let include = Include {
                folder: absolute(&include.folder),
                pattern: include.pattern.clone(),
            };
            if let Ok(compiled) = include.glob() {
                patterns.push((compiled, include.literal()));
            }
            let (folder, below) = include.searched();
            if folder.is_dir() {
                *folders.entry(folder).or_insert(false) |= below;
            }
        }
        // No lock the watcher's callback takes is held while the watcher is changed:
        // the watcher waits for its event thread, which may be in that callback.
        let before = self.watched().folders.clone();
        let mut watcher = self.lock_watcher();
        for folder in before.keys().filter(|f| !folders.contains_key(*f)) {
            let _ = watcher.unwatch(folder);
        }
        for (folder, &below) in &folders {
            if before.get(folder).is_some_and(|was| *was != below) {
                let _ = watcher.unwatch(folder);
            }
            // Watched again though it was: a folder removed and made anew (a deploy
            // replacing `rules.d`) lost its watch with the old one.
            let watched = watcher.watch(folder, mode(below));
            match watched {
                Err(e) if *folder == main => {
                    return Err(e).with_context(|| format!("cannot watch {}", folder.display()));
                }
                Err(e) => tracing::warn!(
                    folder = %folder.display(),
                    error = %e,
                    "cannot watch a folder of included config files; SIGHUP reloads them"
                ),
                Ok(()) => {}
            }
        }
        drop(watcher);
        let mut watched = self.watched.write().unwrap_or_else(|p| p.into_inner());
        watched.patterns = patterns;
        watched.folders = folders;
        Ok(())
    }

    /// [`ConfigWatch::follow`], saying in the log when it cannot.
    fn follow_or_warn(&self, includes: &[Include]) {
        if let Err(e) = self.follow(includes) {
            tracing::warn!(error = %format!("{e:#}"), "cannot watch the config's files; SIGHUP reloads them");
        }
    }

    fn watched(&self) -> std::sync::RwLockReadGuard<'_, Watched> {
        self.watched.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_watcher(&self) -> std::sync::MutexGuard<'_, notify::RecommendedWatcher> {
        self.watcher.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How a folder is watched: alone, or with everything below it.
fn mode(below: bool) -> notify::RecursiveMode {
    match below {
        true => notify::RecursiveMode::Recursive,
        false => notify::RecursiveMode::NonRecursive,
    }
}

/// `path` from the root, so that it compares with the paths events carry.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
