//! The limits every fetch (of a feed or of an article) and every parse obeys: how many
//! requests at once in all, how many to one host, and one parse per core.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::config::Daemon;

pub(super) struct Slots {
    /// Bounds how many requests are made at the same time.
    fetch: Semaphore,
    /// Bounds parsing and matching, which run on blocking threads, to one per core.
    cpu: Semaphore,
    /// Bounds, per host, how many requests go to it at the same time, so 300 feeds of
    /// one site do not hammer it.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_host: usize,
}

/// The right to make one request: the host's slot (none for files) and a global one,
/// each given back when dropped.
pub(super) struct FetchSlot<'a> {
    host: Option<OwnedSemaphorePermit>,
    _global: Option<SemaphorePermit<'a>>,
}

impl FetchSlot<'_> {
    /// Gives the host's slot back (the request is over) and keeps the global one.
    pub fn release_host(&mut self) {
        self.host = None;
    }
}

impl Slots {
    pub fn new(daemon: &Daemon) -> Slots {
        Slots {
            fetch: Semaphore::new(daemon.max_concurrent_fetches),
            cpu: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            hosts: Mutex::new(HashMap::new()),
            per_host: daemon.max_fetches_per_host,
        }
    }

    /// Waits for a slot of `url`'s host, then for a global one: waiting for the host
    /// must not hold one of the global slots.
    pub async fn fetch(&self, url: Option<&url::Url>) -> FetchSlot<'_> {
        // The semaphores are never closed, so acquiring can only wait, not fail.
        let host = match url.and_then(|u| self.host(u)) {
            Some(slots) => slots.acquire_owned().await.ok(),
            None => None,
        };
        FetchSlot {
            host,
            _global: self.fetch.acquire().await.ok(),
        }
    }

    /// Waits for a core to parse or match on.
    pub async fn cpu(&self) -> Option<SemaphorePermit<'_>> {
        self.cpu.acquire().await.ok()
    }

    fn host(&self, url: &url::Url) -> Option<Arc<Semaphore>> {
        let host = url.host_str()?.to_ascii_lowercase();
        // Poisoning cannot leave the map inconsistent: inserts are single calls.
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let slot = hosts
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)));
        Some(Arc::clone(slot))
    }
}
