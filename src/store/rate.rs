//! Each channel's messages of the last minute, for `max_per_minute`, kept in memory by
//! an engine with a single instance. It lives as long as the store, so a reload does
//! not reset a channel's limit.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};

/// Messages sent per channel in the last minute, for `max_per_minute`.
#[derive(Debug, Default)]
pub struct RateWindow(std::sync::Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>);

impl RateWindow {
    /// Takes up to `wanted` of the messages `channel` may still send in the minute up
    /// to `now` (at most `limit`): how many it got, and when the next slot frees up if
    /// none was left.
    pub fn reserve(
        &self,
        channel: &str,
        limit: u32,
        wanted: usize,
        now: DateTime<Utc>,
    ) -> (usize, DateTime<Utc>) {
        let mut windows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let sent = windows.entry(channel.to_owned()).or_default();
        let minute = chrono::Duration::seconds(60);
        while sent.front().is_some_and(|t| *t + minute <= now) {
            sent.pop_front();
        }
        let granted = (limit as usize).saturating_sub(sent.len()).min(wanted);
        let next_slot = sent.front().map_or(now, |t| *t + minute);
        sent.extend(std::iter::repeat_n(now, granted));
        (granted, next_slot)
    }
}
