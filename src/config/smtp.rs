//! Checking `[smtp]`: the relay, its credentials and how it is trusted.

use std::net::IpAddr;
use std::path::Path;

use super::check::{Checker, DEFAULT_SMTP_TIMEOUT};
use super::raw::RawSmtp;
use super::{ConfigError, KeyPath, Security, Smtp};

impl Checker<'_> {
    pub(super) fn check_smtp(&self, s: RawSmtp, base: &Path) -> Result<Smtp, ConfigError> {
        let key = || KeyPath::default().key("smtp");
        let security = s.security.unwrap_or_default();
        if security == Security::None && !is_loopback(&s.host) {
            return Err(self.invalid(
                key().key("security"),
                format!("\"none\" would send mail and password in clear to {:?}; it is only allowed for localhost — use \"starttls\" or \"tls\"", s.host),
            ));
        }
        let credentials = self.credentials(
            key(),
            s.username,
            (s.password_file.as_deref(), s.password_env.as_deref()),
            base,
        )?;
        s.from.parse::<lettre::message::Mailbox>().map_err(|e| {
            self.invalid(
                key().key("from"),
                format!("{:?} is not an email address: {e}", s.from),
            )
        })?;
        let ca_pem = s
            .ca_file
            .map(|p| self.read_ca(key().key("ca_file"), &base.join(p)))
            .transpose()?;
        let pinned = s
            .tls_fingerprint
            .map(|text| {
                if security == Security::None {
                    return Err(self.invalid(
                        key().key("tls_fingerprint"),
                        "a certificate fingerprint needs security = \"starttls\" or \"tls\"",
                    ));
                }
                if ca_pem.is_some() {
                    return Err(self.invalid(
                        key().key("tls_fingerprint"),
                        "set either ca_file (trust an authority) or tls_fingerprint (trust one certificate), not both",
                    ));
                }
                parse_fingerprint(&text).ok_or_else(|| {
                    self.invalid(
                        key().key("tls_fingerprint"),
                        format!(
                            "{text:?} is not a SHA-256 fingerprint: 64 hex digits, colons allowed, as \
                             `openssl x509 -in cert.pem -noout -fingerprint -sha256` prints it"
                        ),
                    )
                })
            })
            .transpose()?;
        let port = s.port.unwrap_or(match security {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        Ok(Smtp {
            host: s.host,
            port,
            security,
            credentials,
            from: s.from,
            ca_pem,
            pinned,
            timeout: self.positive_at(
                KeyPath::default().key("smtp").key("timeout"),
                s.timeout,
                DEFAULT_SMTP_TIMEOUT,
            )?,
        })
    }

    /// A PEM file of certificate authorities to trust, refused when it holds none.
    fn read_ca(&self, key: KeyPath, path: &Path) -> Result<Vec<u8>, ConfigError> {
        let pem = std::fs::read(path).map_err(|e| {
            self.invalid(key.clone(), format!("cannot read {}: {e}", path.display()))
        })?;
        // TLS setup would accept a file without certificates and trust nothing.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(self.invalid(
                key,
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ),
            ));
        }
        Ok(pem)
    }
}

/// A SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it
/// (`sha256 Fingerprint=AB:CD:…`), or as bare hex, with or without `SHA256:`.
fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let hex = text.rsplit(['=', ' ']).next().unwrap_or(text);
    let hex = hex
        .strip_prefix("SHA256:")
        .or_else(|| hex.strip_prefix("sha256:"))
        .unwrap_or(hex);
    let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(digits.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
