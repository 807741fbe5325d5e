//! Delivering alerts: email over SMTP, webhook POSTs and Maildir files. Each failure
//! says whether another try could succeed, so the dispatcher knows to retry or give up.

mod maildir;
pub mod message;

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};

use crate::config::templates::MessageKind;
use crate::config::{Channel, Config, Security, Smtp, Transport};
use crate::feed::fetch::error_chain;
use crate::model::Alert;

/// A webhook receiver gets this long to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a delivery failed, and whether trying again later could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub message: String,
    /// How long the receiver asked us to wait (`Retry-After` on 429/503).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    fn retry(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: true,
            message: message.into(),
            retry_after: None,
        }
    }

    fn fatal(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: false,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Could not set up a channel's transport (bad certificate, bad address).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

/// Everything needed to deliver to any configured channel.
pub struct Notifier {
    smtp: Option<(SmtpSender, Mailbox)>,
    /// Who Maildir messages are from: the SMTP sender when there is one.
    local_from: Mailbox,
    http: reqwest::Client,
}

impl Notifier {
    pub fn new(config: &Config) -> Result<Notifier, SetupError> {
        let smtp = config.smtp.as_ref().map(smtp_transport).transpose()?;
        let local_from = match &smtp {
            Some((_, from)) => from.clone(),
            None => "newshound <newshound@localhost>"
                .parse()
                .map_err(|e| SetupError(format!("default sender: {e}")))?,
        };
        let http = reqwest::Client::builder()
            .user_agent(crate::feed::fetch::USER_AGENT)
            .timeout(WEBHOOK_TIMEOUT)
            // A receiver that moved must be updated in the config; following a redirect
            // would turn the POST into a GET or send alerts somewhere unexpected.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Notifier {
            smtp,
            local_from,
            http,
        })
    }

    /// Delivers `alerts` through `channel` (named `name` in the config): one alert,
    /// or several folded into one message as `kind` says. On success, says what the
    /// receiver answered (`250 …`, `204 No Content`, the file written).
    pub async fn deliver(
        &self,
        name: &str,
        channel: &Channel,
        alerts: &[Alert],
        kind: &MessageKind,
    ) -> Result<String, DeliveryError> {
        let email = |from: &Mailbox, to: &[Mailbox]| {
            message::email(alerts, kind, name, &channel.templates, from, to)
                .map_err(|e| DeliveryError::fatal(format!("cannot build message: {e}")))
        };
        match &channel.transport {
            Transport::Email { to } => {
                let Some((transport, from)) = &self.smtp else {
                    return Err(DeliveryError::fatal(
                        "no [smtp] section for an email channel",
                    ));
                };
                let to = to
                    .iter()
                    .map(|a| a.parse::<Mailbox>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| DeliveryError::fatal(format!("bad recipient: {e}")))?;
                transport.send(email(from, &to)?).await
            }
            Transport::Webhook {
                url,
                secret,
                format,
            } => {
                let (target, body) = message::webhook_request(url, *format, alerts, kind, name);
                let body =
                    body.map_err(|e| DeliveryError::fatal(format!("cannot encode alert: {e}")))?;
                let id = message::webhook_id(alerts, name);
                self.post_webhook(url, target, secret.as_ref(), &id, body)
                    .await
            }
            Transport::Maildir { path } => {
                let message = email(&self.local_from, std::slice::from_ref(&self.local_from))?;
                let id = message::message_id(alerts, name);
                let bytes = message.formatted();
                maildir::deliver(path, &id, &bytes)
                    .map(|file| format!("written to {}", file.display()))
                    .map_err(|e| DeliveryError::retry(format!("maildir {}: {e}", path.display())))
            }
        }
    }

    /// POSTs `body` to `target` (the channel's `url`, or where its format sends).
    async fn post_webhook(
        &self,
        url: &url::Url,
        target: url::Url,
        secret: Option<&crate::config::Secret>,
        id: &str,
        body: String,
    ) -> Result<String, DeliveryError> {
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .http
            .post(target)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = secret.and_then(|s| s.webhook_key()) {
            request = request.header(
                "webhook-signature",
                message::sign(&key, id, timestamp, &body),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::retry(format!("webhook {url}: {}", error_chain(&e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(status.to_string());
        }
        let message = format!("webhook {url} answered {status}");
        // 408 and 429 say "later"; 5xx is the receiver's own trouble. Other 4xx mean
        // the request itself is wrong and will stay wrong.
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            let retry_after = crate::feed::fetch::retry_after_of(&response);
            Err(DeliveryError {
                retry_after,
                ..DeliveryError::retry(message)
            })
        } else {
            Err(DeliveryError::fatal(message))
        }
    }
}

/// How emails reach the relay: lettre's pooled transport, which checks the relay's
/// certificate against the trusted authorities, or one connection per message to a
/// relay trusted by the fingerprint of its own certificate.
enum SmtpSender {
    Pooled(AsyncSmtpTransport<Tokio1Executor>),
    Pinned(PinnedRelay),
}

impl SmtpSender {
    async fn send(&self, message: lettre::Message) -> Result<String, DeliveryError> {
        let response = match self {
            SmtpSender::Pooled(transport) => transport.send(message).await,
            SmtpSender::Pinned(relay) => relay.send(message).await?,
        };
        match response {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            // 5xx: the server refused this message for good (unknown user, rejected
            // content). Not so for refused credentials or encryption: that is our
            // configuration, and the alert must wait until it is fixed.
            Err(e) if e.is_permanent() && !is_auth_refusal(&e) => {
                Err(DeliveryError::fatal(smtp_error(&e)))
            }
            Err(e) => Err(DeliveryError::retry(smtp_error(&e))),
        }
    }
}

/// A relay trusted by the SHA-256 digest of its certificate (`smtp.tls_fingerprint`):
/// the certificate is not checked against any authority, but the connection goes on
/// (to the login and the message) only if it is exactly that one. lettre's pool cannot
/// check that before it logs in, so each message has a connection of its own.
struct PinnedRelay {
    host: String,
    port: u16,
    security: Security,
    timeout: Duration,
    credentials: Option<Credentials>,
    tls: TlsParameters,
    pinned: [u8; 32],
}

impl PinnedRelay {
    /// Connects, checks the certificate, logs in and sends; `Err` only for a
    /// certificate that is not the pinned one (or a relay that hangs).
    async fn send(
        &self,
        message: lettre::Message,
    ) -> Result<Result<Response, lettre::transport::smtp::Error>, DeliveryError> {
        tokio::time::timeout(self.timeout, self.exchange(message))
            .await
            .unwrap_or_else(|_| {
                Err(DeliveryError::retry(format!(
                    "SMTP: no answer from {}:{} within {}",
                    self.host,
                    self.port,
                    humantime::format_duration(self.timeout)
                )))
            })
    }

    async fn exchange(
        &self,
        message: lettre::Message,
    ) -> Result<Result<Response, lettre::transport::smtp::Error>, DeliveryError> {
        let hello = ClientId::default();
        let wrapper = (self.security == Security::Tls).then(|| self.tls.clone());
        let connected = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &hello,
            wrapper,
            None,
        )
        .await;
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        if self.security == Security::Starttls
            && let Err(e) = conn.starttls(self.tls.clone(), &hello).await
        {
            return Ok(Err(e));
        }
        let seen = conn.peer_certificate().map(Sha256::digest);
        if !seen
            .as_ref()
            .is_ok_and(|digest| digest[..] == self.pinned[..])
        {
            conn.abort().await;
            let seen = match seen {
                Ok(digest) => format!("SHA256:{}", fingerprint(&digest)),
                Err(e) => format!("none ({})", smtp_error(&e)),
            };
            return Err(DeliveryError::retry(format!(
                "SMTP: {}:{} presented certificate {seen}, not the one smtp.tls_fingerprint \
                 names (SHA256:{}); if the relay's certificate was renewed, put the new \
                 fingerprint there",
                self.host,
                self.port,
                fingerprint(&self.pinned)
            )));
        }
        if let Some(credentials) = &self.credentials
            && let Err(e) = conn
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
        {
            return Ok(Err(e));
        }
        let sent = conn.send(message.envelope(), &message.formatted()).await;
        if sent.is_ok() {
            // The message is accepted; a QUIT that fails changes nothing.
            let _ = conn.quit().await;
        }
        Ok(sent)
    }
}

/// `AB:CD:…`, as `openssl x509 -fingerprint` prints a digest.
fn fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An SMTP error in one line; a certificate that is not trusted says how to trust it.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
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

/// 530 authentication required, 534 mechanism too weak, 535 credentials invalid,
/// 538 encryption required (RFC 4954).
fn is_auth_refusal(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        .is_some_and(|code| matches!(code.to_string().as_str(), "530" | "534" | "535" | "538"))
}

fn smtp_transport(smtp: &Smtp) -> Result<(SmtpSender, Mailbox), SetupError> {
    let from = smtp
        .from
        .parse::<Mailbox>()
        .map_err(|e| SetupError(format!("smtp.from: {e}")))?;
    let mut params = TlsParameters::builder(smtp.host.clone());
    if let Some(pem) = &smtp.ca_pem {
        let cert =
            Certificate::from_pem(pem).map_err(|e| SetupError(format!("smtp.ca_file: {e}")))?;
        params = params.add_root_certificate(cert);
    }
    // A pinned certificate is checked by its digest once the handshake (which proves
    // the relay holds its key) is done, not against the authorities.
    let tls = params
        .dangerous_accept_invalid_certs(smtp.pinned.is_some())
        .build_rustls()
        .map_err(|e| SetupError(format!("smtp TLS setup: {e}")))?;
    let credentials = smtp
        .credentials
        .as_ref()
        .map(|(user, password)| Credentials::new(user.clone(), password.expose().to_owned()));
    if let Some(pinned) = smtp.pinned {
        let relay = PinnedRelay {
            host: smtp.host.clone(),
            port: smtp.port,
            security: smtp.security,
            timeout: smtp.timeout,
            credentials,
            tls,
            pinned,
        };
        return Ok((SmtpSender::Pinned(relay), from));
    }
    let tls = match smtp.security {
        Security::Starttls => Tls::Required(tls),
        Security::Tls => Tls::Wrapper(tls),
        Security::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(smtp.timeout));
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok((SmtpSender::Pooled(builder.build()), from))
}

#[cfg(test)]
mod tests;
