//! Values that must not be shown: a password or token, and where the config says to
//! read one.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A string that is never printed: `Debug` and `Display` show `********`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A value that must not be shown (a token, or a header made of one).
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key bytes of a Standard Webhooks secret (`whsec_` + base64).
    pub fn webhook_key(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        let encoded = self.0.trim().strip_prefix("whsec_")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .filter(|key| !key.is_empty())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// A value as written in the config, or where to read it (so that tokens stay out of
/// the file): a header's value, an apprise channel's URLs.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawHeaderValue {
    Text(String),
    From {
        env: Option<String>,
        file: Option<PathBuf>,
    },
}
