//! Writing a message into a Maildir: to `tmp/`, synced, then renamed into `new/`, so a
//! reader never sees half a message.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
