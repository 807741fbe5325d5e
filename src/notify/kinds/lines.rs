//! `type = "lines"`, a kind that exists in tests only, to show what a new kind takes:
//! this file and one line in the table of kinds. Each message appends one line per
//! alert (channel and title) to the file at `path`.

use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Kind, Outgoing, Settings};
use crate::notify::DeliveryError;

/// Its table as written; `path` is read beside the config once checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lines {
    pub path: PathBuf,
}

impl Kind for Lines {
    const NAME: &'static str = "lines";
    const IN_FLIGHT: usize = 1;
    const CHANGED: &'static str = "path changed";
    type Raw = Self;

    fn check<S: Settings>(raw: Lines, settings: &S) -> Result<Lines, S::Error> {
        Ok(Lines {
            path: settings.path(&raw.path),
        })
    }

    fn describe(&self) -> String {
        format!("lines into {}", self.path.display())
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let text: String = out
            .alerts
            .iter()
            .map(|a| format!("{}: {}\n", out.channel, a.title))
            .collect();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map(|()| format!("{} lines", out.alerts.len()))
            .map_err(|e| DeliveryError::retry(format!("lines {}: {e}", self.path.display())))
    }
}
