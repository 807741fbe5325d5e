//! Where the daemon's time comes from: the system's clock, or one a test sets and
//! moves by hand, so that what a test asserts about times is exact.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The daemon's source of wall-clock time. Cloning shares it: a test that moves its
/// clock moves it for every part of the pipeline. Timers (`tokio::time`) are not
/// driven by it; it says what time it is, not when to wake.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `at` until it is moved.
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock(Some(Arc::new(Mutex::new(at))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            None => Utc::now(),
            Some(at) => *at.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a fixed clock to `at`; the system's clock cannot be moved, and ignores it.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(now) = &self.0 {
            *now.lock().unwrap_or_else(|p| p.into_inner()) = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_until_moved_and_is_shared_by_its_clones() {
        let at = DateTime::from_timestamp(1_000_000, 0).expect("time");
        let clock = Clock::fixed(at);
        let shared = clock.clone();
        assert_eq!(shared.now(), at);
        clock.set(at + chrono::Duration::seconds(5));
        assert_eq!(shared.now(), at + chrono::Duration::seconds(5));
    }

    #[test]
    fn the_system_clock_tells_the_time() {
        let before = Utc::now();
        let now = Clock::system().now();
        assert!(before <= now && now <= Utc::now());
    }
}
