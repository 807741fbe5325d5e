//! Real servers for integration tests: an SMTP server (mailin-embedded, STARTTLS with a
//! certificate made at test time, AUTH PLAIN/LOGIN) and an HTTP feed server (wiremock)
//! with ETag handling, all on 127.0.0.1 port 0, plus a config written to a temp dir.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::response::{self, Response};
use mailin_embedded::{AuthMechanism, Handler, Server, SslConfig};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const SMTP_USER: &str = "alerts@example.org";
pub const SMTP_PASSWORD: &str = "s3cret-pa55";
/// The Standard Webhooks specification's example key.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Long enough for a slow CI machine, short enough that a broken test fails visibly.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// How the SMTP server answers the next messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    Accept,
    /// 451 at RCPT: try again later. (Not at the end of DATA: mailin stays in its
    /// DATA state after an error there and never answers again.)
    TempFail,
    /// 550 at RCPT: this will never work.
    Reject,
    /// Tell the test that DATA began, then never answer (the client is killed meanwhile).
    HoldFirst,
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// Header lines, unfolded.
    pub fn headers(&self) -> Vec<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        head.replace("\r\n ", " ")
            .split("\r\n")
            .map(str::to_owned)
            .collect()
    }

    /// A header's value, with RFC 2047 encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}: ");
        self.headers()
            .into_iter()
            .find_map(|h| h.strip_prefix(&prefix).map(decode_words))
    }

    /// The message with quoted-printable soft breaks and escapes undone, good enough
    /// to search the bodies for text.
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Decodes `=?utf-8?b?…?=` words (what lettre writes); whitespace between two encoded
/// words is dropped, as RFC 2047 says.
fn decode_words(value: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    let mut previous_encoded = false;
    for (i, word) in value.split(' ').enumerate() {
        let encoded = word
            .strip_prefix("=?utf-8?b?")
            .and_then(|w| w.strip_suffix("?="))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if i > 0 && !(previous_encoded && encoded.is_some()) {
            out.push(' ');
        }
        previous_encoded = encoded.is_some();
        out.push_str(encoded.as_deref().unwrap_or(word));
    }
    out
}

#[derive(Default)]
struct SmtpShared {
    mode: Mutex<Option<SmtpMode>>,
    logins: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct SmtpHandler {
    shared: Arc<SmtpShared>,
    received: mpsc::Sender<Received>,
    held: mpsc::Sender<()>,
    current: Option<Received>,
}

impl SmtpHandler {
    fn mode(&self) -> SmtpMode {
        self.shared
            .mode
            .lock()
            .expect("mode lock")
            .unwrap_or(SmtpMode::Accept)
    }

    fn login(&mut self, user: &str, password: &str) -> Response {
        self.shared
            .logins
            .lock()
            .expect("logins lock")
            .push(user.to_owned());
        if user == SMTP_USER && password == SMTP_PASSWORD {
            response::AUTH_OK
        } else {
            response::INVALID_CREDENTIALS
        }
    }
}

impl Handler for SmtpHandler {
    fn rcpt(&mut self, _to: &str) -> Response {
        match self.mode() {
            SmtpMode::Reject => response::NO_MAILBOX,
            SmtpMode::TempFail => Response::custom(451, "mailbox busy, try again later".into()),
            _ => response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        if self.mode() == SmtpMode::HoldFirst {
            // Later connections are accepted; this one hangs until the client dies.
            *self.shared.mode.lock().expect("mode lock") = Some(SmtpMode::Accept);
            let _ = self.held.send(());
            loop {
                std::thread::park();
            }
        }
        self.current = Some(Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: String::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(message) = self.current.take() {
            let _ = self.received.send(message);
        }
        response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.login(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.login(user, password)
    }
}

/// A real SMTP server in this process: STARTTLS required for AUTH, AUTH required for mail.
pub struct SmtpServer {
    pub port: u16,
    /// PEM of the server's self-signed certificate, for `smtp.ca_file`.
    pub ca_file: PathBuf,
    /// The certificate's SHA-256 fingerprint as `openssl x509 -fingerprint -sha256`
    /// prints it, for `smtp.tls_fingerprint`.
    pub fingerprint: String,
    shared: Arc<SmtpShared>,
    received: mpsc::Receiver<Received>,
    held: mpsc::Receiver<()>,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(rcgen::IsCa::NoCa)
    }

    /// A server whose self-signed certificate says CA:TRUE, as `openssl req -x509` makes
    /// them (and many home and office relays use).
    pub fn start_with_ca_certificate() -> SmtpServer {
        SmtpServer::start_with(rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained))
    }

    fn start_with(is_ca: rcgen::IsCa) -> SmtpServer {
        use sha2::Digest;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.is_ca = is_ca;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        let fingerprint = sha2::Sha256::digest(cert.der())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");

        let shared = Arc::new(SmtpShared::default());
        let (received_tx, received) = mpsc::channel();
        let (held_tx, held) = mpsc::channel();
        let handler = SmtpHandler {
            shared: Arc::clone(&shared),
            received: received_tx,
            held: held_tx,
            current: None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
        let port = listener.local_addr().expect("smtp addr").port();
        let mut server = Server::new(handler);
        server
            .with_name("localhost")
            // One thread per session: room for every delivery newshound runs at once,
            // plus sessions of killed clients that have not been noticed yet.
            .with_num_threads(32)
            .with_ssl(SslConfig::SelfSigned {
                cert_path: cert_path.display().to_string(),
                key_path: key_path.display().to_string(),
            })
            .expect("smtp tls")
            .with_auth(AuthMechanism::Plain)
            .with_auth(AuthMechanism::Login)
            .with_tcp_listener(listener);
        // mailin-embedded has no shutdown: the thread lives until the test binary exits.
        std::thread::spawn(move || {
            if let Err(e) = server.serve() {
                eprintln!("test SMTP server stopped: {e}");
            }
        });
        SmtpServer {
            port,
            ca_file: cert_path,
            fingerprint: format!("SHA256:{fingerprint}"),
            shared,
            received,
            held,
            _dir: dir,
        }
    }

    pub fn set_mode(&self, mode: SmtpMode) {
        *self.shared.mode.lock().expect("mode lock") = Some(mode);
    }

    /// The next message that arrives, waiting up to [`WAIT`].
    pub fn next_message(&self) -> Received {
        self.received
            .recv_timeout(WAIT)
            .expect("a message should arrive at the SMTP server")
    }

    /// The next message, or `None` if none arrives within [`WAIT`].
    pub fn try_next_message(&self) -> Option<Received> {
        self.received.recv_timeout(WAIT).ok()
    }

    /// Every message that has arrived so far, without waiting.
    pub fn drain(&self) -> Vec<Received> {
        self.received.try_iter().collect()
    }

    /// Waits until a client is stuck in DATA (mode [`SmtpMode::HoldFirst`]); false
    /// if none got there within [`WAIT`].
    pub fn wait_for_held(&self) -> bool {
        self.held.recv_timeout(WAIT).is_ok()
    }

    pub fn logins(&self) -> Vec<String> {
        self.shared.logins.lock().expect("logins lock").clone()
    }

    /// The `[smtp]` section for this server.
    pub fn config_section(&self) -> String {
        self.config_section_trusting(&format!("ca_file = \"{}\"", self.ca_file.display()))
    }

    /// The `[smtp]` section for this server, its certificate trusted by `trust` (a
    /// `ca_file` or `tls_fingerprint` line).
    pub fn config_section_trusting(&self, trust: &str) -> String {
        format!(
            "[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"starttls\"\nusername = \"{SMTP_USER}\"\n\
             password_env = \"TEST_SMTP_PASSWORD\"\nfrom = \"newshound <{SMTP_USER}>\"\n{trust}\n\
             timeout = \"10s\"\n",
            self.port,
        )
    }
}

/// The environment a test config is loaded with.
pub fn test_env() -> std::collections::HashMap<String, String> {
    [
        ("TEST_SMTP_PASSWORD".to_string(), SMTP_PASSWORD.to_string()),
        (
            "TEST_WEBHOOK_SECRET".to_string(),
            WEBHOOK_SECRET.to_string(),
        ),
    ]
    .into()
}

/// Serves `body` at `route` with an ETag: a request that sends the ETag back gets 304.
pub async fn serve_feed(
    server: &MockServer,
    route: &str,
    body: Vec<u8>,
    etag: &str,
    content_type: &str,
) {
    Mock::given(method("GET"))
        .and(path(route))
        .and(header("if-none-match", etag))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", etag))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", etag)
                .insert_header("content-type", content_type)
                .set_body_bytes(body),
        )
        .with_priority(2)
        .mount(server)
        .await;
}

/// An address on 127.0.0.1 that was free a moment ago: connecting is refused, the
/// retryable failure of a receiver that is down.
pub fn refused_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
}

/// A temp dir holding a config file (and, inside, the state directory).
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestConfig {
    /// Writes `body` after a `[daemon]` section pointing state into the temp dir.
    pub fn write(daemon_extra: &str, body: &str) -> TestConfig {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("newshound.toml");
        let text = format!("[daemon]\nstate_dir = \"state\"\n{daemon_extra}\n{body}");
        std::fs::write(&path, text).expect("write config");
        TestConfig { dir, path }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `newshound <args> --config <this config>`, with the test secrets, quiet.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_newshound"))
            .args(args)
            .arg("--config")
            .arg(&self.path)
            .envs(test_env())
            .env("RUST_LOG", "off")
            .output()
            .expect("newshound runs")
    }

    pub fn load(&self) -> newshound::config::Config {
        newshound::config::Config::load(&self.path, &test_env()).expect("test config is valid")
    }
}

/// Files in a Maildir's `new/`, read.
pub fn maildir_messages(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .map(|e| std::fs::read_to_string(e.expect("dir entry").path()).expect("read message"))
        .collect()
}

/// Once per test: rustls needs its crypto provider named, and logs (shown for failing
/// tests; `RUST_LOG` picks the level) help to see what went wrong.
pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A minimal HTTP server that holds every answer for `hold` and records the most
/// requests it had in progress at once: for testing concurrency limits, which
/// wiremock cannot observe.
pub struct ConcurrencyProbe {
    pub uri: String,
    most: Arc<std::sync::atomic::AtomicUsize>,
    served: Arc<std::sync::atomic::AtomicUsize>,
}

impl ConcurrencyProbe {
    pub async fn start(body: Vec<u8>, hold: Duration) -> ConcurrencyProbe {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind probe");
        let uri = format!("http://{}", listener.local_addr().expect("probe addr"));
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let (n, m, s) = (Arc::clone(&now), Arc::clone(&most), Arc::clone(&served));
        let body = Arc::new(body);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (now, most, served, body) = (
                    Arc::clone(&n),
                    Arc::clone(&m),
                    Arc::clone(&s),
                    Arc::clone(&body),
                );
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => request.extend_from_slice(&buf[..k]),
                        }
                    }
                    let in_progress = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(in_progress, Ordering::SeqCst);
                    tokio::time::sleep(hold).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    served.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        ConcurrencyProbe { uri, most, served }
    }

    /// The most requests that were in progress at the same time.
    pub fn most_at_once(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A server that answers 200 with headers at once, then drips its body one byte per
/// `every`: a feed that never finishes.
pub async fn start_drip(every: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind drip");
    let uri = format!("http://{}", listener.local_addr().expect("drip addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if socket.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    uri
}

/// Runs `work` to completion on a runtime of its own: for tests that are not async but
/// read the store (whose operations are).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// The daemon's web endpoint (`daemon.listen`: the status page, `/healthz`, the atom
/// feeds) for `lasting` running `config`, on a free loopback port; it stops when the
/// token is cancelled.
pub async fn serve_endpoint(
    lasting: newshound::daemon::Lasting,
    config: Arc<newshound::config::Config>,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let addr = newshound::daemon::observe::start(
        "127.0.0.1:0".parse().expect("address"),
        lasting,
        Arc::new(std::sync::RwLock::new(config)),
        shutdown.clone(),
    )
    .await
    .expect("listens");
    (addr, shutdown)
}

/// An RSS document of the items `ids` of the labelled set of stories
/// (`tests/fixtures/stories/dev.json`: originals, copies, rewrites and decoys).
pub fn story_rss(ids: &[&str]) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stories/dev.json"
    );
    let set: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let items = set["items"].as_array().expect("items");
    let body: String = ids
        .iter()
        .map(|id| {
            let i = items
                .iter()
                .find(|i| i["id"] == *id)
                .expect("a labelled item");
            let text = |k: &str| {
                let t = i[k].as_str().expect(k);
                t.replace('&', "&amp;").replace('<', "&lt;")
            };
            let published = chrono::DateTime::parse_from_rfc3339(&text("published"))
                .expect("published")
                .to_rfc2822();
            format!(
                "<item><guid>{id}</guid><title>{}</title><link>{}</link>\
                 <pubDate>{published}</pubDate><description>{}</description></item>",
                text("title"),
                text("link"),
                text("summary")
            )
        })
        .collect();
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{body}</channel></rss>")
        .into_bytes()
}
