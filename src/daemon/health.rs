//! Liveness of the running daemon, for `/healthz`, the systemd watchdog and `status`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::clock::Clock;
use super::schedule::DISPATCH_IDLE;

/// A scheduler that has not ticked for this long is stuck.
const STALL: Duration = Duration::from_secs(3 * DISPATCH_IDLE.as_secs());

/// What `/healthz`, the watchdog and `status` need to know about the running daemon.
#[derive(Debug, Default)]
pub struct Health {
    clock: Clock,
    /// When the dispatcher last went round its loop (Unix seconds).
    last_tick: AtomicI64,
    /// When a feed was last polled successfully (Unix seconds; 0 for never).
    last_poll: AtomicI64,
    /// Why the last reload was refused, while the old config keeps running.
    config_error: std::sync::Mutex<Option<String>>,
}

impl Health {
    pub fn new(clock: Clock) -> Health {
        Health {
            clock,
            ..Health::default()
        }
    }

    pub fn tick(&self) {
        self.last_tick
            .store(self.clock.now().timestamp(), Ordering::Relaxed);
    }

    pub fn polled(&self) {
        self.last_poll
            .store(self.clock.now().timestamp(), Ordering::Relaxed);
    }

    pub fn last_poll(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self.last_poll.load(Ordering::Relaxed) {
            0 => None,
            secs => chrono::DateTime::from_timestamp(secs, 0),
        }
    }

    pub(super) fn set_config_error(&self, error: Option<String>) {
        *self.config_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// `Ok` while the scheduler goes round its loop.
    pub fn scheduler(&self) -> Result<(), String> {
        let silent = self.clock.now().timestamp() - self.last_tick.load(Ordering::Relaxed);
        if silent > STALL.as_secs() as i64 {
            return Err(format!("the scheduler has not run for {silent} s"));
        }
        Ok(())
    }

    /// `Ok` while the scheduler ticks and the config on disk is the one running;
    /// otherwise why not.
    pub fn check(&self) -> Result<(), String> {
        self.scheduler()?;
        match &*self.config_error.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(error) => Err(format!(
                "the config file is invalid (the previous one keeps running): {error}"
            )),
            None => Ok(()),
        }
    }
}
