//! `type = "maildir"`: each message written into a Maildir as email: to `tmp/`,
//! synced, then renamed into `new/`, so a reader never sees half a message.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{EMAILS_IN_FLIGHT, Kind, Outgoing, Settings};
use crate::notify::{DeliveryError, message};

/// Its table as written; `path` is read beside the config once checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maildir {
    pub path: PathBuf,
}

impl Kind for Maildir {
    const NAME: &'static str = "maildir";
    const IN_FLIGHT: usize = EMAILS_IN_FLIGHT;
    const TEMPLATED: bool = true;
    const CHANGED: &'static str = "path changed";
    type Raw = Self;

    fn check<S: Settings>(raw: Maildir, settings: &S) -> Result<Maildir, S::Error> {
        Ok(Maildir {
            path: settings.path(&raw.path),
        })
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let from = &out.notifier.local_from;
        let message = out.email(from, std::slice::from_ref(from))?;
        let id = message::message_id(out.alerts, out.channel);
        deliver(&self.path, &id, &message.formatted())
            .map(|file| format!("written to {}", file.display()))
            .map_err(|e| DeliveryError::retry(format!("maildir {}: {e}", self.path.display())))
    }
}

/// Delivers `bytes` as one message and returns the file written. The file name comes
/// from the message id, so a redelivery after a crash replaces the first copy instead
/// of adding a second.
pub fn deliver(maildir: &Path, message_id: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(maildir.join(sub))?;
    }
    let local_part = message_id.split('@').next().unwrap_or(message_id);
    let name: String = local_part
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let name = format!("{name}.newshound");
    let tmp = maildir.join("tmp").join(&name);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    let delivered = maildir.join("new").join(&name);
    fs::rename(&tmp, &delivered)?;
    // The rename is durable only once the directory itself is synced.
    fs::File::open(maildir.join("new"))?.sync_all()?;
    Ok(delivered)
}
