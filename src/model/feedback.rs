//! Feedback links: "more like this" and "not this" under an alert, each naming the
//! alert, the rule and the vote, with an expiry, signed with HMAC-SHA256 under a key
//! of the state, so that a link can be neither forged nor turned to another alert,
//! rule or vote, nor used once it expired.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::hex;

/// The two links of one rule under an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    pub rule: String,
    /// "More like this".
    pub more: String,
    /// "Not this".
    pub not: String,
}

/// What a click says about the alert's item, for its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    /// More like this: the item becomes a `like` example of the rule.
    More,
    /// Not this: an `unlike` example.
    Not,
}

impl Vote {
    pub fn parse(text: &str) -> Option<Vote> {
        match text {
            "more" => Some(Vote::More),
            "not" => Some(Vote::Not),
            _ => None,
        }
    }
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vote::More => "more",
            Vote::Not => "not",
        })
    }
}

/// One vote as a link carries it: the alert (its outbox id), the rule, the vote, and
/// until when the link holds; signed together with the alert's item, which the link
/// does not carry, so that a link is good for that item's alert only (an id used
/// again after its alert was deleted is another item's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    pub alert: i64,
    pub rule: String,
    pub vote: Vote,
    /// Unix seconds.
    pub expires: i64,
    /// The alert's feed and item key, one per line.
    pub item: String,
}

/// A link's ballot, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// What the link says (with no item: the link does not carry it).
    pub ballot: Ballot,
    signature: Vec<u8>,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not one newshound made, or it was changed")]
    Forged,
    #[error("this link has expired")]
    Expired,
}

/// The text a ballot's item is signed as: its alert's feed and item key.
pub fn item_of(feed: &str, key: &str) -> String {
    format!("{feed}\n{key}")
}

impl Ballot {
    /// The link's query string: `a=12&r=talks&v=more&e=1767225600&s=…`.
    pub fn query(&self, key: &[u8]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("a", &self.alert.to_string())
            .append_pair("r", &self.rule)
            .append_pair("v", &self.vote.to_string())
            .append_pair("e", &self.expires.to_string())
            .append_pair("s", &self.signature(key))
            .finish()
    }

    /// What a link's query string claims, to be checked with [`Signed::verify`].
    pub fn parse(query: &str) -> Result<Signed, LinkError> {
        let mut fields = std::collections::HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            fields.insert(name.into_owned(), value.into_owned());
        }
        let field = |name: &str| fields.get(name).ok_or(LinkError::Forged);
        let ballot = Ballot {
            alert: field("a")?.parse().map_err(|_| LinkError::Forged)?,
            rule: field("r")?.clone(),
            vote: Vote::parse(field("v")?).ok_or(LinkError::Forged)?,
            expires: field("e")?.parse().map_err(|_| LinkError::Forged)?,
            item: String::new(),
        };
        let given = field("s")?;
        let signature = (0..given.len())
            .step_by(2)
            .map(|i| {
                given
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .filter(|bytes| bytes.len() == SIGNATURE_BYTES)
            .ok_or(LinkError::Forged)?;
        Ok(Signed { ballot, signature })
    }

    fn signature(&self, key: &[u8]) -> String {
        let full = self.mac(key).finalize().into_bytes();
        hex(&full[..SIGNATURE_BYTES])
    }

    /// The HMAC of every field, each on its own line (newlines in a rule name are
    /// made spaces, so no field can pass for two).
    fn mac(&self, key: &[u8]) -> hmac::Hmac<Sha256> {
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
        let text = format!(
            "newshound feedback\n{}\n{}\n{}\n{}\n{}",
            self.alert,
            self.rule.replace('\n', " "),
            self.vote,
            self.expires,
            self.item
        );
        mac.update(text.as_bytes());
        mac
    }
}

impl Signed {
    /// The ballot, if the link was signed under `key` for the alert of `item` and
    /// has not expired at `now`.
    pub fn verify(self, key: &[u8], item: &str, now: DateTime<Utc>) -> Result<Ballot, LinkError> {
        let ballot = Ballot {
            item: item.to_owned(),
            ..self.ballot
        };
        // In constant time.
        ballot
            .mac(key)
            .verify_truncated_left(&self.signature)
            .map_err(|_| LinkError::Forged)?;
        if now.timestamp() > ballot.expires {
            return Err(LinkError::Expired);
        }
        Ok(ballot)
    }
}

/// A signature's length: 128 bits, as hex in the link.
const SIGNATURE_BYTES: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a key of the state, 32 bytes ...";
    const ITEM: &str = "wire\nurn:wire:1";

    fn ballot() -> Ballot {
        Ballot {
            alert: 12,
            rule: "talks & more".into(),
            vote: Vote::More,
            expires: 2_000,
            item: ITEM.into(),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("a time")
    }

    fn verify(query: &str, key: &[u8], item: &str, now: i64) -> Result<Ballot, LinkError> {
        Ballot::parse(query)?.verify(key, item, at(now))
    }

    #[test]
    fn a_link_holds_until_it_expires_and_only_as_it_was_signed() {
        let query = ballot().query(KEY);
        assert!(
            query.starts_with("a=12&r=talks+%26+more&v=more&e=2000&s="),
            "{query}"
        );
        assert_eq!(verify(&query, KEY, ITEM, 1_999), Ok(ballot()));
        assert_eq!(verify(&query, KEY, ITEM, 2_001), Err(LinkError::Expired));
        assert_eq!(
            verify(&query, b"another key", ITEM, 0),
            Err(LinkError::Forged)
        );
        assert_eq!(
            verify(&query, KEY, "wire\nurn:wire:2", 0),
            Err(LinkError::Forged),
            "the id of another item's alert"
        );
        for (from, to) in [
            ("a=12", "a=13"),
            ("r=talks+%26+more", "r=other"),
            ("v=more", "v=not"),
            ("e=2000", "e=9999"),
        ] {
            let altered = query.replacen(from, to, 1);
            assert_eq!(
                verify(&altered, KEY, ITEM, 0),
                Err(LinkError::Forged),
                "{altered}"
            );
        }
        let signature = query.split("s=").nth(1).expect("signed");
        for bad in ["", "zz", &signature[..30], &format!("{signature}00")] {
            let altered = query.replace(signature, bad);
            assert_eq!(
                verify(&altered, KEY, ITEM, 0),
                Err(LinkError::Forged),
                "{altered}"
            );
        }
        assert_eq!(Ballot::parse("a=1"), Err(LinkError::Forged));
    }
}
