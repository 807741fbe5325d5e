//! Email to the relay: our own small pool of lettre SMTP connections, so that each
//! socket is ours to set up. With Nagle's algorithm on, the end of each message's DATA
//! waited for the relay's delayed ACK (~40 ms a message, 160 a second into a local
//! relay); the sockets we connect have TCP_NODELAY. A relay can also be trusted by
//! the fingerprint of its own certificate, checked before the login.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use sha2::{Digest, Sha256};
use tracing::debug;

use super::{DeliveryError, SetupError, error_chain};
use serde::Deserialize;

use crate::model::Secret;

/// The relay alerts are sent through (`[smtp]`, checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, Secret)>,
    pub from: String,
    /// PEM of an extra root certificate to trust.
    pub ca_pem: Option<Vec<u8>>,
    /// The SHA-256 digest of the one certificate the relay may present (trusted
    /// instead of any authority).
    pub pinned: Option<[u8; 32]>,
    pub timeout: Duration,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption; only accepted for a loopback relay.
    None,
}

impl std::fmt::Display for Security {
    /// As the config file spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Security::Starttls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        })
    }
}

/// A connection idle for longer is checked (NOOP) before it carries a message.
const CHECK_AFTER: Duration = Duration::from_secs(5);
/// A connection idle for longer is closed: relays drop idle sessions after a minute
/// or so anyway.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Idle connections kept at most (more than the dispatcher uses at once).
const MAX_IDLE: usize = 16;

/// The configured relay and its idle connections.
pub struct Relay {
    host: String,
    port: u16,
    security: Security,
    timeout: Duration,
    hello: ClientId,
    credentials: Option<Credentials>,
    tls: TlsParameters,
    /// The SHA-256 digest of the only certificate the relay may present; `None`: the
    /// certificate is checked against the trusted authorities.
    pinned: Option<[u8; 32]>,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Relay {
    pub fn new(smtp: &Smtp) -> Result<Relay, SetupError> {
        let mut params = TlsParameters::builder(smtp.host.clone());
        if let Some(pem) = &smtp.ca_pem {
            let cert =
                Certificate::from_pem(pem).map_err(|e| SetupError(format!("smtp.ca_file: {e}")))?;
            params = params.add_root_certificate(cert);
        }
        // A pinned certificate is checked by its digest once the handshake (which
        // proves the relay holds its key) is done, not against the authorities.
        let tls = params
            .dangerous_accept_invalid_certs(smtp.pinned.is_some())
            .build_rustls()
            .map_err(|e| SetupError(format!("smtp TLS setup: {e}")))?;
        Ok(Relay {
            host: smtp.host.clone(),
            port: smtp.port,
            security: smtp.security,
            timeout: smtp.timeout,
            hello: ClientId::default(),
            credentials: smtp.credentials.as_ref().map(|(user, password)| {
                Credentials::new(user.clone(), password.expose().to_owned())
            }),
            tls,
            pinned: smtp.pinned,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `message` on an idle connection or a new one, within the relay's timeout;
    /// says what the relay answered.
    pub async fn send(&self, message: lettre::Message) -> Result<String, DeliveryError> {
        let deadline = self.timeout;
        tokio::time::timeout(deadline, self.send_on_a_connection(message))
            .await
            .unwrap_or_else(|_| {
                Err(DeliveryError::retry(format!(
                    "SMTP: no answer from {}:{} within {}",
                    self.host,
                    self.port,
                    humantime::format_duration(deadline)
                )))
            })
    }

    async fn send_on_a_connection(
        &self,
        message: lettre::Message,
    ) -> Result<String, DeliveryError> {
        let mut conn = match self.idle_connection().await {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        match conn.send(message.envelope(), &message.formatted()).await {
            Ok(response) => {
                self.keep(conn).await;
                Ok(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ))
            }
            Err(e) => {
                // Whatever the relay said, this session is left mid-transaction.
                conn.abort().await;
                Err(classify(&e))
            }
        }
    }

    /// The most recently used idle connection that still works, if any.
    async fn idle_connection(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            let idle = since.elapsed();
            if idle > IDLE_LIMIT {
                conn.abort().await;
                continue;
            }
            if idle < CHECK_AFTER || conn.test_connected().await {
                return Some(conn);
            }
            debug!("an idle SMTP connection was closed by the relay");
        }
    }

    async fn keep(&self, conn: AsyncSmtpConnection) {
        let mut surplus = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE && !conn.has_broken() {
                idle.push((conn, Instant::now()));
                return;
            }
            conn
        };
        surplus.abort().await;
    }

    /// Closes the connections idle for longer than [`IDLE_LIMIT`] (QUIT, then close).
    pub async fn close_idle(&self) {
        let stale: Vec<AsyncSmtpConnection> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let (stale, fresh) = idle
                .drain(..)
                .partition(|(_, since)| since.elapsed() > IDLE_LIMIT);
            *idle = fresh;
            stale.into_iter().map(|(conn, _)| conn).collect()
        };
        for mut conn in stale {
            conn.abort().await;
        }
    }

    /// A new session: connected (TCP_NODELAY), encrypted as configured, the
    /// certificate checked, logged in.
    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let mut conn = match self.security {
            // lettre opens the socket for TLS from the first byte: no TCP_NODELAY.
            Security::Tls => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(self.tls.clone()),
                None,
            )
            .await
            .map_err(|e| classify(&e))?,
            Security::Starttls | Security::None => {
                let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| {
                        DeliveryError::retry(format!(
                            "SMTP: cannot connect to {}:{}: {e}",
                            self.host, self.port
                        ))
                    })?;
                if let Err(e) = tcp.set_nodelay(true) {
                    debug!(error = %e, "TCP_NODELAY could not be set on the SMTP connection");
                }
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(|e| classify(&e))?
            }
        };
        if self.security == Security::Starttls {
            conn.starttls(self.tls.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e))?;
        }
        if let Some(pinned) = &self.pinned {
            let seen = conn.peer_certificate().map(Sha256::digest);
            if !seen.as_ref().is_ok_and(|digest| digest[..] == pinned[..]) {
                conn.abort().await;
                let seen = match seen {
                    Ok(digest) => format!("SHA256:{}", fingerprint(&digest)),
                    Err(e) => format!("none ({})", error_chain(&e)),
                };
                return Err(DeliveryError::retry(format!(
                    "SMTP: {}:{} presented certificate {seen}, not the one smtp.tls_fingerprint \
                     names (SHA256:{}); if the relay's certificate was renewed, put the new \
                     fingerprint there",
                    self.host,
                    self.port,
                    fingerprint(pinned)
                )));
            }
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(conn)
    }
}

/// 5xx: the relay refused this message for good (unknown user, rejected content). Not
/// so for refused credentials or encryption: that is our configuration, and the alert
/// must wait until it is fixed. Anything else may work later.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryError {
    if e.is_permanent() && !is_auth_refusal(e) {
        DeliveryError::fatal(describe(e))
    } else {
        DeliveryError::retry(describe(e))
    }
}

/// 530 authentication required, 534 mechanism too weak, 535 credentials invalid,
/// 538 encryption required (RFC 4954).
fn is_auth_refusal(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        .is_some_and(|code| matches!(code.to_string().as_str(), "530" | "534" | "535" | "538"))
}

/// An SMTP error in one line; a certificate that is not trusted says how to trust it.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let chain = error_chain(e);
    let Some(at) = chain.find("invalid peer certificate: ") else {
        return format!("SMTP: {chain}");
    };
    let reason = &chain[at + "invalid peer certificate: ".len()..];
    let why = if reason.contains("CaUsedAsEndEntity") {
        "it is a CA certificate used as the relay's own, as `openssl req -x509` makes them"
    } else if reason.contains("UnknownIssuer") {
        "no trusted authority issued it"
    } else if reason.contains("NotValidForName") {
        "it is not for this host name"
    } else if reason.contains("Expired") {
        "it has expired"
    } else {
        reason
    };
    format!(
        "SMTP: the relay's certificate is not trusted: {why}; if it is your relay's own \
         certificate, trust exactly it with smtp.tls_fingerprint (`openssl x509 -in cert.pem \
         -noout -fingerprint -sha256` prints it), or give its issuer in smtp.ca_file"
    )
}

/// `AB:CD:…`, as `openssl x509 -fingerprint` prints a digest.
fn fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
