//! HTTP helpers the fetcher and the notifiers share: who we say we are, errors in one
//! line, and how long a server asked us to wait.

use std::time::Duration;

/// Identifies newshound to the servers it polls and posts to.
pub const USER_AGENT: &str = concat!("newshound/", env!("CARGO_PKG_VERSION"));

/// `a: b: c` from an error and its sources, since reqwest hides the cause in them,
/// saying each part once: a cause already in the message is not added, and a part
/// repeated next to itself ("Connection error: Connection error: …", where an error's
/// message holds its source's) is said once.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}

/// The `Retry-After` of a 429 or 503 answer (other statuses carry none that counts).
pub fn retry_after_of(response: &reqwest::Response) -> Option<Duration> {
    if !matches!(response.status().as_u16(), 429 | 503) {
        return None;
    }
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(value, std::time::SystemTime::now())
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3), relative to `now`.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = std::time::SystemTime::from(at.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message says its kind and then its source's message, as
    /// lettre's do.
    #[derive(Debug)]
    struct Wrapping(&'static str, Option<Box<Wrapping>>);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)?;
            match &self.1 {
                Some(inner) => write!(f, ": {inner}"),
                None => Ok(()),
            }
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// Regression: "SMTP: Connection error: Connection error: invalid peer certificate".
    #[test]
    fn an_error_chain_says_each_thing_once() {
        let refused = Wrapping("connection refused", None);
        let inner = Wrapping("Connection error", Some(Box::new(refused)));
        let outer = Wrapping("Connection error", Some(Box::new(inner)));
        assert_eq!(error_chain(&outer), "Connection error: connection refused");
    }

    #[test]
    fn reads_retry_after_as_seconds_or_a_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
