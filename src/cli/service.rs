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
    let _watcher = config
        .daemon
        .watch_config
        .then(|| watch(&path, reload.clone()))
        .transpose()?;
    let loader: daemon::Loader = Box::new(move || Config::load(&path, &env));
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

/// Watches the folder holding `path` (an editor saves by writing a new file and
/// renaming it over the old one) and asks for a reload when the file changes.
fn watch(
    path: &Path,
    reload: mpsc::Sender<&'static str>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let file = path.file_name().map(ToOwned::to_owned);
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let about_file = event.paths.iter().any(|p| p.file_name() == file.as_deref());
        if about_file && (event.kind.is_modify() || event.kind.is_create()) {
            let _ = reload.try_send("config file changed");
        }
    })
    .context("cannot watch the config file")?;
    watcher
        .watch(&folder, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", folder.display()))?;
    Ok(watcher)
}
