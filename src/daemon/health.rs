//! Liveness of the running daemon, for `/healthz`, the systemd watchdog and `status`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::clock::Clock;
use super::schedule::DISPATCH_IDLE;

/// A scheduler that has not ticked for this long is stuck.
const STALL: Duration = Duration::from_secs(3 * DISPATCH_IDLE.as_secs());
/// A store failing for longer than this is down, not having a hiccup: `/healthz`
/// says so.
const STORE_DOWN_AFTER: Duration = Duration::from_secs(5);

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
    /// Since when (Unix seconds) the store has failed, and how it last did.
    store_failing: std::sync::Mutex<Option<(i64, String)>>,
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

    /// What the store answered the last time it was asked: a failure starts (or
    /// continues) an outage, a success ends it.
    pub fn store_answered(&self, answer: Result<(), String>) {
        let mut failing = self.store_failing.lock().unwrap_or_else(|p| p.into_inner());
        *failing = match answer {
            Ok(()) => None,
            Err(error) => {
                let since = failing
                    .as_ref()
                    .map_or(self.clock.now().timestamp(), |f| f.0);
                Some((since, error))
            }
        };
    }

    /// `Ok` unless the store has failed for longer than `STORE_DOWN_AFTER` (5 s).
    pub fn store(&self) -> Result<(), String> {
        let failing = self.store_failing.lock().unwrap_or_else(|p| p.into_inner());
        match &*failing {
            Some((since, error)) => {
                let down = self.clock.now().timestamp() - since;
                if down > STORE_DOWN_AFTER.as_secs() as i64 {
                    Err(format!("the state store has failed for {down} s: {error}"))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// `Ok` while the scheduler goes round its loop.
    pub fn scheduler(&self) -> Result<(), String> {
        let silent = self.clock.now().timestamp() - self.last_tick.load(Ordering::Relaxed);
        if silent > STALL.as_secs() as i64 {
            return Err(format!("the scheduler has not run for {silent} s"));
        }
        Ok(())
    }

    /// `Ok` while the scheduler ticks, the store answers and the config on disk is
    /// the one running; otherwise why not.
    pub fn check(&self) -> Result<(), String> {
        self.scheduler()?;
        self.store()?;
        match &*self.config_error.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(error) => Err(format!(
                "the config file is invalid (the previous one keeps running): {error}"
            )),
            None => Ok(()),
        }
    }
}
