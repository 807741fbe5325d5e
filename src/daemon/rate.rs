//! Each channel's messages of the last minute, for `max_per_minute`: kept across
//! reloads, so that a reload does not reset a channel's limit.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};

/// Messages sent per channel in the last minute, for `max_per_minute`.
#[derive(Debug, Default)]
pub struct RateWindow(std::sync::Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>);

impl RateWindow {
    /// How many more messages `channel` may send at `now`, and when the next slot
    /// frees up if none is left.
    pub(super) fn budget(
        &self,
        channel: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> (usize, DateTime<Utc>) {
        let mut windows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let sent = windows.entry(channel.to_owned()).or_default();
        let minute = chrono::Duration::seconds(60);
        while sent.front().is_some_and(|t| *t + minute <= now) {
            sent.pop_front();
        }
        let left = (limit as usize).saturating_sub(sent.len());
        (left, sent.front().map_or(now, |t| *t + minute))
    }

    pub(super) fn record(&self, channel: &str, messages: usize, now: DateTime<Utc>) {
        let mut windows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .entry(channel.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(now, messages));
    }
}
