//! The real binary as a service: `kill -9` in the middle of a delivery loses nothing,
//! a second daemon on the same state is refused, SIGTERM stops it in time, systemd
//! hears READY/STATUS/WATCHDOG/RELOADING/STOPPING on a real notify socket, SIGHUP and
//! config file edits reload it (an invalid file keeps the old config), and
//! `/metrics` and `/healthz` answer over HTTP.

mod support;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

use newshound::store::{OutboxCounts, Store};
use support::{SmtpMode, SmtpServer, TestConfig, WAIT};

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

/// A daemon a failed test leaves behind is stopped, not left running.
impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    fn start(config: &TestConfig, run: u32) -> Daemon {
        Daemon::start_with(config, run, &[])
    }

    fn start_with(config: &TestConfig, run: u32, env: &[(&str, &str)]) -> Daemon {
        let log = config.dir.path().join(format!("daemon-{run}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_newshound"))
            .args(["run", "--config"])
            .arg(&config.path)
            .envs(support::test_env())
            .envs(env.iter().copied())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("daemon starts");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits (bounded) for the process to end.
    fn signal_and_wait(self, signal: &str) -> ExitStatus {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let (tx, rx) = mpsc::channel();
        let (log, pid) = (self.log.clone(), self.child.id().to_string());
        std::thread::spawn(move || {
            let mut daemon = self;
            let _ = tx.send(daemon.child.wait());
        });
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| {
                // Not left running: the thread waiting for it holds it.
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!(
                    "daemon did not exit after SIG{signal}:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .expect("wait for daemon")
    }
}

#[test]
fn kill_9_during_delivery_loses_no_alert_and_sigterm_exits_cleanly() {
    support::init();
    let smtp = SmtpServer::start();
    smtp.set_mode(SmtpMode::HoldFirst);
    let config = TestConfig::write(
        "first_poll = \"alert\"\npoll_interval = \"2s\"",
        &format!(
            "{}[[feeds]]\nname = \"news\"\nurl = \"file://{}/tests/fixtures/feeds/rss20.xml\"\n\n\
             [channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n",
            smtp.config_section(),
            env!("CARGO_MANIFEST_DIR"),
        ),
    );

    let first = Daemon::start(&config, 1);
    // The alert is queued and its delivery has reached DATA; now the process dies.
    if !smtp.wait_for_held() {
        panic!("no delivery reached DATA:\n{}", first.log());
    }
    let status = first.signal_and_wait("KILL");
    assert!(!status.success());
    let counts = support::block_on(async {
        let store = Store::open(&config.state_dir())
            .await
            .expect("store opens after the crash");
        store.outbox_counts().await.expect("counts")
    });
    // Claimed by the dead process; the next start takes the claim back.
    assert_eq!(counts.sending, 1);

    let second = Daemon::start(&config, 2);
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .is_some_and(|s| s.contains("Security Demands")),
        "{}",
        second.log()
    );
    // While it runs, a second daemon on the same state directory refuses to start.
    let intruder = config.run(&["once"]);
    let stderr = String::from_utf8_lossy(&intruder.stderr);
    assert_eq!(intruder.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another newshound is already running on state directory"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let log = second.log();
    let status = second.signal_and_wait("TERM");
    assert_eq!(status.code(), Some(0), "{log}");

    let counts = support::block_on(async {
        let store = Store::open(&config.state_dir()).await.expect("store opens");
        store.outbox_counts().await.expect("counts")
    });
    assert_eq!(
        counts,
        OutboxCounts {
            sent: 1,
            ..OutboxCounts::default()
        }
    );
    assert!(
        smtp.drain().is_empty(),
        "delivered exactly once after the restart"
    );
}

/// systemd's side of `Type=notify`: a datagram socket the daemon reports to.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn bind(dir: &std::path::Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
        socket.set_read_timeout(Some(WAIT)).expect("timeout");
        NotifySocket { socket, path }
    }

    /// Reads every message waiting, without waiting for more: systemd reads its
    /// socket at once, and a full one (10 messages) blocks the daemon's next report.
    fn drain(&self) {
        let mut buf = [0u8; 4096];
        self.socket.set_nonblocking(true).expect("non-blocking");
        while self.socket.recv(&mut buf).is_ok() {}
        self.socket.set_nonblocking(false).expect("blocking");
    }

    /// Messages until one has a line for which `done` holds; all of them, joined.
    fn until(&self, done: impl Fn(&str) -> bool, log: impl Fn() -> String) -> String {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.socket.recv(&mut buf).unwrap_or_else(|e| {
                panic!("no notification ({e}); so far:\n{seen}\nlog:\n{}", log())
            });
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push_str(&message);
            if message.lines().any(&done) {
                return seen;
            }
        }
    }
}

/// `GET path` on `address`: the status code and the body.
fn http_get(address: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_request(address, path, "");
    (status, body)
}

/// A GET of `path` with `headers` (lines ending in CRLF) added: the status, the
/// header lines and the body.
fn http_request(address: &str, path: &str, headers: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

/// The address the daemon said it serves `/metrics` on.
fn metrics_address(log: &str) -> String {
    log.lines()
        .find(|l| l.contains("serving /metrics and /healthz"))
        .and_then(|l| l.split("address=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"))
        .to_owned()
}

/// An RSS file with one item per (guid, title).
fn rss(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title)| format!("<item><guid>{guid}</guid><title>{title}</title></item>"))
        .collect();
    format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>")
}

/// A config with one feed file (`news`) and a `talks` rule mailing `me`.
fn service_config(smtp: &SmtpServer, daemon_extra: &str) -> TestConfig {
    let config = TestConfig::write(
        &format!("first_poll = \"alert\"\npoll_interval = \"1h\"\n{daemon_extra}"),
        &format!(
            "{}[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
             [channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"me\"]\n",
            smtp.config_section()
        ),
    );
    std::fs::write(
        config.dir.path().join("news.xml"),
        rss(&[("1", "Lavrov speaks")]),
    )
    .expect("feed file");
    config
}

/// Adds a feed (`second`, one NATO item) and a rule (`alliance`) to the config file.
fn add_feed_and_rule(config: &TestConfig) {
    std::fs::write(
        config.dir.path().join("second.xml"),
        rss(&[("n1", "NATO summit opens")]),
    )
    .expect("feed file");
    let text = std::fs::read_to_string(&config.path).expect("config")
        + "\n[[feeds]]\nname = \"second\"\nurl = \"file:second.xml\"\n\n\
           [[rules]]\nname = \"alliance\"\nkeywords = [\"NATO\"]\nchannels = [\"me\"]\n";
    // Written beside and renamed over, as editors do.
    let temp = config.dir.path().join(".newshound.toml.swp");
    std::fs::write(&temp, text).expect("write config");
    std::fs::rename(&temp, &config.path).expect("replace config");
}

fn kill(daemon: &Daemon, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &daemon.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

#[test]
fn systemd_hears_the_daemon_and_metrics_and_health_answer() {
    support::init();
    let smtp = SmtpServer::start();
    let config = service_config(&smtp, "listen = \"127.0.0.1:0\"");
    let notify = NotifySocket::bind(config.dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let daemon = Daemon::start_with(
        &config,
        1,
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "1000000")],
    );
    notify.until(|l| l == "READY=1", || daemon.log());
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .is_some_and(|s| s.contains("Lavrov speaks"))
    );
    // Heartbeats every half watchdog period: a sign of life and a status line.
    let seen = notify.until(
        |l| l.starts_with("STATUS=") && l.contains("last poll") && l.contains("0 alerts queued"),
        || daemon.log(),
    );
    assert!(seen.contains("WATCHDOG=1"), "{seen}");
    assert!(
        seen.lines()
            .any(|l| l.starts_with("STATUS=1 feeds (0 broken), last poll ")),
        "{seen}"
    );

    let address = metrics_address(&daemon.log());
    let (status, metrics) = http_get(&address, "/metrics");
    assert_eq!(status, 200);
    for line in [
        "newshound_polls_total{result=\"ok\"} 1",
        "newshound_items_seen_total 1",
        "newshound_matches_total{rule=\"talks\"} 1",
        "newshound_alerts_total{channel=\"me\",outcome=\"sent\"} 1",
        "newshound_outbox{state=\"pending\"} 0",
        "newshound_outbox{state=\"sent\"} 1",
        "newshound_dead_letters 0",
        "newshound_feeds_broken 0",
        "newshound_seen_items 1",
        "newshound_config_reloads_total{result=\"failure\"} 0",
        "newshound_poll_duration_seconds_count 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("newshound_poll_duration_seconds_bucket{le=\"0.5\"}"));
    assert!(metrics.contains("newshound_last_successful_poll_timestamp_seconds "));
    assert!(metrics.contains("newshound_state_bytes "), "{metrics}");
    // The daemon prunes as it starts; the gauges show it from the next heartbeat.
    let pruned = "newshound_last_prune_deleted_rows{kind=\"seen_items\"} 0";
    let mut metrics = metrics;
    for _ in 0..20 {
        if metrics.lines().any(|l| l == pruned) {
            break;
        }
        notify.until(|l| l.starts_with("STATUS="), || daemon.log());
        metrics = http_get(&address, "/metrics").1;
    }
    assert!(
        metrics.lines().any(|l| l == pruned),
        "{pruned} in\n{metrics}"
    );
    assert!(
        metrics.contains("newshound_last_prune_timestamp_seconds "),
        "{metrics}"
    );
    assert_eq!(http_get(&address, "/healthz"), (200, "ok\n".to_string()));

    kill(&daemon, "TERM");
    notify.until(|l| l == "STOPPING=1", || daemon.log());
    let log = daemon.log();
    assert_eq!(daemon.signal_and_wait("TERM").code(), Some(0), "{log}");
}

#[test]
fn sighup_applies_a_valid_change_and_an_invalid_one_keeps_the_old_config() {
    support::init();
    let smtp = SmtpServer::start();
    let config = service_config(&smtp, "listen = \"127.0.0.1:0\"\nwatch_config = false");
    let notify = NotifySocket::bind(config.dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let daemon = Daemon::start_with(&config, 1, &[("NOTIFY_SOCKET", &socket)]);
    notify.until(|l| l == "READY=1", || daemon.log());
    smtp.next_message();
    let address = metrics_address(&daemon.log());

    // An invalid change: refused with the same line `check` prints; the daemon runs on.
    let good = std::fs::read_to_string(&config.path).expect("config");
    std::fs::write(
        &config.path,
        good.replace("keywords = [\"Lavrov\"]", "query = \"Lavrov AND (\""),
    )
    .expect("write config");
    let check = config.run(&["check"]);
    let error = String::from_utf8_lossy(&check.stderr)
        .trim()
        .trim_start_matches("newshound: ")
        .to_owned();
    assert!(error.contains("rules[0].query"), "{error}");
    kill(&daemon, "HUP");
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    notify.until(|l| l == "READY=1", || daemon.log());
    assert!(daemon.log().contains(&error), "{}", daemon.log());
    let (status, reason) = http_get(&address, "/healthz");
    assert_eq!(status, 503);
    assert!(reason.contains(&error), "{reason}");

    // `status` (which needs a valid file to find the state) says what was refused.
    std::fs::write(&config.path, good).expect("restore config");
    let status = config.run(&["status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("config: the daemon refused a change at ") && shown.contains(&error),
        "{shown}"
    );

    // A valid change: the new feed is polled and the new rule alerts.
    add_feed_and_rule(&config);
    kill(&daemon, "HUP");
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .is_some_and(|s| s.contains("alliance: NATO summit opens")),
        "{:?}",
        message.header("Subject")
    );
    let log = daemon.log();
    assert!(
        log.contains("changes=+1 feed (second), +1 rule (alliance)"),
        "{log}"
    );
    assert_eq!(http_get(&address, "/healthz").0, 200);
    let (_, metrics) = http_get(&address, "/metrics");
    assert!(metrics.contains("newshound_config_reloads_total{result=\"failure\"} 1"));
    assert!(metrics.contains("newshound_config_reloads_total{result=\"success\"} 1"));
    assert!(smtp.drain().is_empty(), "the first item is not sent again");
    assert_eq!(daemon.signal_and_wait("TERM").code(), Some(0), "{log}");
}

#[test]
fn a_config_file_edit_is_picked_up_without_a_signal() {
    support::init();
    let smtp = SmtpServer::start();
    let config = service_config(&smtp, "");
    let notify = NotifySocket::bind(config.dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let daemon = Daemon::start_with(&config, 1, &[("NOTIFY_SOCKET", &socket)]);
    notify.until(|l| l == "READY=1", || daemon.log());
    smtp.next_message();
    add_feed_and_rule(&config);
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .is_some_and(|s| s.contains("NATO summit opens"))
    );
    assert!(
        daemon.log().contains("cause=\"config file changed\""),
        "{}",
        daemon.log()
    );

    // Moving the state is refused while running: the old config stays.
    let text = std::fs::read_to_string(&config.path).expect("config");
    std::fs::write(
        &config.path,
        text.replace("state_dir = \"state\"", "state_dir = \"elsewhere\""),
    )
    .expect("write config");
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    notify.until(|l| l == "READY=1", || daemon.log());
    let log = daemon.log();
    assert!(
        log.contains("daemon.state_dir cannot change while newshound runs"),
        "{log}"
    );
    assert!(!config.dir.path().join("elsewhere").exists());
    assert_eq!(daemon.signal_and_wait("TERM").code(), Some(0));
}

#[test]
fn a_busy_listen_address_stops_start_up_with_one_line() {
    support::init();
    let smtp = SmtpServer::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address");
    let config = service_config(&smtp, &format!("listen = \"{address}\""));
    let out = config.run(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("daemon.listen: cannot listen on {address}")),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn sigterm_during_a_stuck_delivery_exits_in_time_and_the_alert_follows_after_restart() {
    support::init();
    let smtp = SmtpServer::start();
    smtp.set_mode(SmtpMode::HoldFirst);
    let config = service_config(&smtp, "");
    let first = Daemon::start(&config, 1);
    if !smtp.wait_for_held() {
        panic!("no delivery reached DATA:\n{}", first.log());
    }
    let stopping = std::time::Instant::now();
    let log = first.log();
    let status = first.signal_and_wait("TERM");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(10),
        "stopped after {:?}",
        stopping.elapsed()
    );

    let second = Daemon::start(&config, 2);
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .is_some_and(|s| s.contains("Lavrov speaks"))
    );
    assert_eq!(second.signal_and_wait("TERM").code(), Some(0));
}

#[test]
fn a_rule_added_while_running_is_tried_on_the_last_day_after_a_dry_run() {
    support::init();
    let smtp = SmtpServer::start();
    let config = service_config(&smtp, "backfill_new_rules = true\nwatch_config = false");
    std::fs::write(
        config.dir.path().join("news.xml"),
        rss(&[("1", "Lavrov speaks"), ("2", "NATO summit opens")]),
    )
    .expect("feed file");
    let notify = NotifySocket::bind(config.dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let daemon = Daemon::start_with(&config, 1, &[("NOTIFY_SOCKET", &socket)]);
    notify.until(|l| l == "READY=1", || daemon.log());
    let first = smtp.next_message();
    assert!(
        first
            .header("Subject")
            .is_some_and(|s| s.contains("talks: Lavrov speaks"))
    );

    let text = std::fs::read_to_string(&config.path).expect("config")
        + "\n[[rules]]\nname = \"alliance\"\nkeywords = [\"NATO\"]\nchannels = [\"me\"]\n";
    std::fs::write(&config.path, text).expect("write config");

    // The dry run: what the new rule would have caught, from the daemon's state.
    let dry = config.run(&["test-rules", "--since", "24h"]);
    let printed = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(printed.contains("news: NATO summit opens"), "{printed}");
    assert!(printed.contains("rules: alliance"), "{printed}");
    assert!(smtp.drain().is_empty(), "a dry run sends nothing");

    kill(&daemon, "HUP");
    let backfilled = smtp.next_message();
    assert!(
        backfilled
            .header("Subject")
            .is_some_and(|s| s.contains("alliance: NATO summit opens")),
        "{:?}",
        backfilled.header("Subject")
    );
    let log = daemon.log();
    assert!(
        log.contains("new rules tried on the items of the last 24 h"),
        "{log}"
    );
    assert_eq!(daemon.signal_and_wait("TERM").code(), Some(0), "{log}");
    assert!(smtp.drain().is_empty(), "nothing alerted twice");
}

#[test]
fn metrics_count_alerts_waiting_for_a_retry() {
    support::init();
    let closed = support::refused_address();
    let config = TestConfig::write(
        "first_poll = \"alert\"\npoll_interval = \"1h\"\nlisten = \"127.0.0.1:0\"",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
             [channels.hook]\ntype = \"webhook\"\nurl = \"http://{closed}/hook\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"hook\"]\n"
        ),
    );
    std::fs::write(
        config.dir.path().join("news.xml"),
        rss(&[("1", "Lavrov speaks")]),
    )
    .expect("feed file");
    let notify = NotifySocket::bind(config.dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let daemon = Daemon::start_with(
        &config,
        1,
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "1000000")],
    );
    // Heartbeats come every half second; the log says when the delivery failed.
    notify.until(
        |_| daemon.log().contains("delivery failed; will retry"),
        || daemon.log(),
    );
    let (_, metrics) = http_get(&metrics_address(&daemon.log()), "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == "newshound_alerts_total{channel=\"hook\",outcome=\"retrying\"} 1"),
        "{metrics}"
    );
    assert_eq!(daemon.signal_and_wait("TERM").code(), Some(0));
}

/// A GET with `If-None-Match`: the status and the ETag answered.
fn http_get_if_none_match(address: &str, path: &str, etag: &str) -> (u16, Option<String>) {
    let (status, head, _) = http_request(address, path, &format!("If-None-Match: {etag}\r\n"));
    let etag = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("etag")
            .then(|| value.trim().to_owned())
    });
    (status, etag)
}

/// With `daemon.listen`, an atom channel's feed is served at `/feeds/<name>.atom`,
/// with an ETag: a reader that sends it back gets 304 until new matches arrive.
#[test]
fn an_atom_channels_feed_is_served_with_an_etag() {
    support::init();
    let config = TestConfig::write(
        "first_poll = \"alert\"\npoll_interval = \"1h\"\nlisten = \"127.0.0.1:0\"",
        "[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
         [channels.reader]\ntype = \"atom\"\npath = \"matches.atom\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"reader\"]\n",
    );
    std::fs::write(
        config.dir.path().join("news.xml"),
        rss(&[("1", "Lavrov speaks")]),
    )
    .expect("feed file");
    let daemon = Daemon::start(&config, 1);
    let address = {
        let started = std::time::Instant::now();
        loop {
            let log = daemon.log();
            if log.contains("serving /metrics and /healthz") {
                break metrics_address(&log);
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "no address:\n{log}"
            );
            std::thread::yield_now();
        }
    };
    let started = std::time::Instant::now();
    let body = loop {
        match http_get(&address, "/feeds/reader.atom") {
            (200, body) => break body,
            (404, _) if started.elapsed() < std::time::Duration::from_secs(30) => {
                std::thread::yield_now()
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(body.contains("<title>Lavrov speaks</title>"), "{body}");
    let (status, etag) = http_get_if_none_match(&address, "/feeds/reader.atom", "\"x\"");
    assert_eq!(status, 200);
    let etag = etag.expect("an ETag");
    assert_eq!(
        http_get_if_none_match(&address, "/feeds/reader.atom", &etag).0,
        304
    );
    assert_eq!(http_get(&address, "/feeds/other.atom").0, 404);
    kill(&daemon, "TERM");
}

/// What a browser makes of a page: its elements' names and its text.
fn parse_html(html: &str) -> (Vec<String>, String) {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::{
        BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    };
    use std::cell::RefCell;
    #[derive(Default)]
    struct Sink {
        tags: RefCell<Vec<String>>,
        text: RefCell<String>,
    }
    impl TokenSink for Sink {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            match token {
                Token::TagToken(tag) if tag.kind == TagKind::StartTag => {
                    self.tags.borrow_mut().push(tag.name.to_string());
                }
                Token::CharacterTokens(text) => self.text.borrow_mut().push_str(&text),
                _ => {}
            }
            TokenSinkResult::Continue
        }
    }
    let tokenizer = Tokenizer::new(Sink::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let sink = tokenizer.sink;
    (sink.tags.take(), sink.text.take())
}

/// With `daemon.listen`, `/` is a status page: the feeds with their health, the
/// latest alerts with their rules and the queue, every value escaped (a hostile feed
/// name and item title stay text), and no script.
#[test]
fn the_status_page_shows_feeds_alerts_and_the_queue_with_every_value_escaped() {
    support::init();
    let hostile_feed = "wire<script>alert(1)</script>";
    let config = TestConfig::write(
        "first_poll = \"alert\"\npoll_interval = \"1h\"\nlisten = \"127.0.0.1:0\"",
        &format!(
            "[[feeds]]\nname = \"{hostile_feed}\"\nurl = \"file:news.xml\"\n\n\
             [[feeds]]\nname = \"missing\"\nurl = \"file:missing.xml\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n"
        ),
    );
    std::fs::write(
        config.dir.path().join("news.xml"),
        rss(&[("1", "Lavrov &lt;img src=x onerror=alert(2)&gt; speaks")]),
    )
    .expect("feed file");
    let daemon = Daemon::start(&config, 1);
    let started = std::time::Instant::now();
    let address = loop {
        let log = daemon.log();
        if log.contains("serving /metrics and /healthz") {
            break metrics_address(&log);
        }
        assert!(started.elapsed() < WAIT, "no address:\n{log}");
        std::thread::yield_now();
    };
    let (head, body) = loop {
        let (status, head, body) = http_request(&address, "/", "");
        assert_eq!(status, 200, "{body}");
        // The sent count and the missing feed's first poll (new feeds are spread over
        // a few seconds) show once they happened.
        if body.contains("<b>1</b> sent") && body.contains("cannot read") {
            break (head, body);
        }
        assert!(started.elapsed() < WAIT, "never sent:\n{body}");
        std::thread::yield_now();
    };
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    let (tags, text) = parse_html(&body);
    assert!(
        !tags.iter().any(|t| t == "script" || t == "img"),
        "{tags:?}"
    );
    assert!(tags.iter().any(|t| t == "meta"), "a viewport for phones");
    assert!(
        text.contains(hostile_feed),
        "the feed's name, as text: {text}"
    );
    assert!(
        text.contains("Lavrov <img src=x onerror=alert(2)> speaks"),
        "the title, as text: {text}"
    );
    for shown in [
        "Queue",
        "1 sent",
        "0 dead letters",
        "Feeds",
        "Latest alerts",
        "talks",
        "inbox",
        "missing",
        "cannot read",
    ] {
        assert!(text.contains(shown), "{shown:?} not in:\n{text}");
    }
    assert!(body.contains("class=\"badge ok\">ok<"), "{body}");
    assert!(body.contains("class=\"badge ok\">sent<"), "{body}");
    assert!(body.contains("class=\"badge bad\">file<"), "{body}");
    kill(&daemon, "TERM");
}

/// PostgreSQL down when the service starts: it does not exit; it tells systemd it
/// waits for the database, tries again with backoff, and is ready once it answers.
#[test]
fn run_waits_for_a_database_that_is_down_at_start_up() {
    support::init();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let Some(database) = runtime.block_on(newshound::store::testing::TestDatabase::create()) else {
        return;
    };
    runtime.block_on(database.set_reachable(false));
    let config = TestConfig::write("", &format!("[store]\nurl = \"{}\"\n", database.url));
    let notify = NotifySocket::bind(config.dir.path());
    let socket = notify.path.display().to_string();
    let daemon = Daemon::start_with(&config, 1, &[("NOTIFY_SOCKET", &socket)]);
    let waiting = notify.until(
        |l| l.starts_with("STATUS=waiting for the database"),
        || daemon.log(),
    );
    assert!(waiting.contains("next try in"), "{waiting}");
    runtime.block_on(database.set_reachable(true));
    notify.until(|l| l == "READY=1", || daemon.log());
    assert!(daemon.signal_and_wait("TERM").success());
}

/// Writes `text` to `path` the way editors do: beside it, then renamed over it.
fn write_as_editors_do(path: &std::path::Path, text: &str) {
    let temp = path.with_extension("swp");
    std::fs::write(&temp, text).expect("write");
    std::fs::rename(&temp, path).expect("replace");
}

#[test]
fn an_included_file_that_appears_changes_breaks_or_goes_reloads_the_daemon() {
    support::init();
    let smtp = SmtpServer::start();
    let config = service_config(&smtp, "listen = \"127.0.0.1:0\"");
    let text = std::fs::read_to_string(&config.path).expect("config");
    std::fs::write(
        &config.path,
        format!("include = [\"rules.d/*.toml\"]\n{text}"),
    )
    .expect("write config");
    let rules_d = config.dir.path().join("rules.d");
    std::fs::create_dir(&rules_d).expect("rules.d");
    std::fs::write(
        config.dir.path().join("second.xml"),
        rss(&[
            ("n1", "NATO summit opens"),
            ("n2", "NATO sponsored content"),
        ]),
    )
    .expect("feed file");
    let notify = NotifySocket::bind(config.dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let daemon = Daemon::start_with(&config, 1, &[("NOTIFY_SOCKET", &socket)]);
    notify.until(|l| l == "READY=1", || daemon.log());
    smtp.next_message();
    let address = metrics_address(&daemon.log());

    // A new file: its feed is polled, its rule alerts, its filter drops.
    let team = rules_d.join("team.toml");
    let rule = "[[feeds]]\nname = \"second\"\nurl = \"file:second.xml\"\n\n\
                [[filters]]\ndrop = \"sponsored\"\n\n\
                [[rules]]\nname = \"alliance\"\nkeywords = [\"NATO\"]\nchannels = [\"me\"]\n";
    write_as_editors_do(&team, rule);
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .is_some_and(|s| s.contains("alliance: NATO summit opens")),
        "{:?}",
        message.header("Subject")
    );
    notify.until(|l| l == "READY=1", || daemon.log());
    let log = daemon.log();
    assert!(
        log.contains("changes=+1 feed (second), +1 rule (alliance), filters changed"),
        "{log}"
    );
    let (_, metrics) = http_get(&address, "/metrics");
    assert!(
        metrics.contains("newshound_items_dropped_total{feed=\"second\"} 1"),
        "{metrics}"
    );
    let (_, page) = http_get(&address, "/");
    assert!(page.contains("1 dropped by filters"), "{page}");

    // A change to it.
    write_as_editors_do(&team, &rule.replace("[\"NATO\"]", "[\"NATO\", \"summit\"]"));
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    notify.until(|l| l == "READY=1", || daemon.log());
    assert!(
        daemon.log().contains("changes=rule alliance: changed"),
        "{}",
        daemon.log()
    );

    // Broken: the running config stays, and the log, `/healthz`, `status` and the
    // status page name the file and line.
    write_as_editors_do(
        &team,
        &format!("{rule}\n[[rules]]\nname = \"x\"\nchannels = [\"me\"]\n"),
    );
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    notify.until(|l| l == "READY=1", || daemon.log());
    let error = format!(
        "{}:13: rules[1]: a rule needs `keywords = [...]`",
        team.display()
    );
    assert!(daemon.log().contains(&error), "{}", daemon.log());
    let (status, reason) = http_get(&address, "/healthz");
    assert_eq!(status, 503);
    assert!(reason.contains(&error), "{reason}");
    let (_, page) = http_get(&address, "/");
    let (_, text) = parse_html(&page);
    assert!(text.contains("The config on disk was refused"), "{text}");
    assert!(text.contains(&error), "{text}");
    let status = config.run(&["status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("config: the daemon refused a change at ") && shown.contains(&error),
        "{shown}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );

    // Gone: its feed and rule go with it, and the refusal is over.
    std::fs::remove_file(&team).expect("remove");
    notify.until(|l| l == "RELOADING=1", || daemon.log());
    notify.until(|l| l == "READY=1", || daemon.log());
    let log = daemon.log();
    assert!(
        log.contains("changes=-1 feed (second), -1 rule (alliance), filters changed"),
        "{log}"
    );
    assert_eq!(http_get(&address, "/healthz").0, 200);
    assert!(smtp.drain().is_empty(), "nothing is sent twice");

    // The folder replaced, as a deploy does: it is watched anew, and a later edit in
    // it reloads too.
    std::fs::remove_dir_all(&rules_d).expect("remove rules.d");
    std::fs::create_dir(&rules_d).expect("rules.d again");
    write_as_editors_do(&team, rule);
    log_until(
        &daemon,
        &notify,
        "changes=+1 feed (second), +1 rule (alliance)",
        2,
    );
    write_as_editors_do(&team, &rule.replace("[\"NATO\"]", "[\"NATO\", \"summit\"]"));
    log_until(&daemon, &notify, "changes=rule alliance: changed", 2);

    // A new pattern whose file is broken: the load is refused, yet its folder is
    // watched, so mending the file reloads.
    let conf_d = config.dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).expect("conf.d");
    let extra = conf_d.join("extra.toml");
    std::fs::write(&extra, "[[rules]]\nname = \"extra\"\nchannels = [\"me\"]\n").expect("broken");
    let main = std::fs::read_to_string(&config.path).expect("config");
    write_as_editors_do(
        &config.path,
        &main.replace(
            "[\"rules.d/*.toml\"]",
            "[\"rules.d/*.toml\", \"conf.d/*.toml\"]",
        ),
    );
    log_until(
        &daemon,
        &notify,
        &format!("{}:1: rules[0]", extra.display()),
        1,
    );
    write_as_editors_do(
        &extra,
        "[[rules]]\nname = \"extra\"\nkeywords = [\"x\"]\nchannels = [\"me\"]\n",
    );
    log_until(&daemon, &notify, "+1 rule (extra)", 1);

    // A Kubernetes ConfigMap volume: each file a link through `..data`, which is
    // pointed at a new folder at once; no event names the file itself.
    let kube_d = config.dir.path().join("kube.d");
    let version = |name: &str, keywords: &str| {
        let folder = kube_d.join(format!("..{name}"));
        std::fs::create_dir_all(&folder).expect("version folder");
        std::fs::write(
            folder.join("kube.toml"),
            format!("[[rules]]\nname = \"kube\"\nkeywords = [{keywords}]\nchannels = [\"me\"]\n"),
        )
        .expect("version file");
        let temp = kube_d.join("..data_tmp");
        std::os::unix::fs::symlink(format!("..{name}"), &temp).expect("link");
        std::fs::rename(&temp, kube_d.join("..data")).expect("swap");
    };
    version("v1", "\"x\"");
    std::os::unix::fs::symlink("..data/kube.toml", kube_d.join("kube.toml")).expect("file");
    let main = std::fs::read_to_string(&config.path).expect("config");
    write_as_editors_do(
        &config.path,
        &main.replace(
            "\"conf.d/*.toml\"]",
            "\"conf.d/*.toml\", \"kube.d/*.toml\"]",
        ),
    );
    log_until(&daemon, &notify, "+1 rule (kube)", 1);
    version("v2", "\"x\", \"y\"");
    log_until(&daemon, &notify, "changes=rule kube: changed", 1);
    assert_eq!(daemon.signal_and_wait("TERM").code(), Some(0), "{log}");
}

/// Waits until the daemon's log holds `what` at least `times` times, reading what it
/// reports to `notify` meanwhile.
fn log_until(daemon: &Daemon, notify: &NotifySocket, what: &str, times: usize) {
    let started = std::time::Instant::now();
    while daemon.log().matches(what).count() < times {
        notify.drain();
        assert!(
            started.elapsed() < support::WAIT,
            "{what:?} not {times} times in the log:\n{}",
            daemon.log()
        );
        std::thread::yield_now();
    }
}

/// A POST of a form `body` to `path`: the status and the body.
fn http_post(address: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// The first `<url>` after `label` in a plain-text mail: a feedback link, pointed at
/// `address` instead of the public URL.
fn feedback_link(mail: &str, label: &str, address: &str) -> String {
    let after = mail
        .split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{mail}"));
    let url = after
        .split('<')
        .nth(1)
        .and_then(|u| u.split('>').next())
        .expect("a link");
    url.replace("https://alerts.test/nh", &format!("http://{address}"))
}

/// A story with a title and a summary, as most feeds tell one.
const TALKS: (&str, &str) = (
    "Lavrov and Blinken hold talks in Geneva",
    "The two ministers met for ninety minutes at a lakeside hotel and agreed to keep \
     talking about troop deployments and security guarantees in Europe.",
);

/// An RSS document with one item per (guid, (title, summary)).
fn rss_told(items: &[(&str, (&str, &str))]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, (title, summary))| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title>\
                 <description>{summary}</description></item>"
            )
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>")
}

/// The query with its signature's last hex digit changed to another one.
fn altered_last_digit(query: &str) -> String {
    let (head, last) = query.split_at(query.len() - 1);
    format!("{head}{}", if last == "0" { '1' } else { '0' })
}

#[test]
fn feedback_links_vote_only_by_post_refuse_forgeries_and_teach_the_topic_rule() {
    support::init();
    let config = TestConfig::write(
        "first_poll = \"alert\"\npoll_interval = \"1h\"\nlisten = \"127.0.0.1:0\"\n\
         public_url = \"https://alerts.test/nh/\"",
        "[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\ninterval = \"200ms\"\n\n\
         [channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\nfeedback = true\n\n\
         [[rules]]\nname = \"talks\"\nchannels = [\"inbox\"]\n\
         about = \"Lavrov and Blinken hold talks in Geneva about Ukraine\"\n",
    );
    let feed = config.dir.path().join("news.xml");
    std::fs::write(&feed, rss_told(&[("1", TALKS)])).expect("feed file");
    let daemon = Daemon::start(&config, 1);
    let inbox = config.dir.path().join("inbox");
    let started = std::time::Instant::now();
    let mail = loop {
        if let Some(mail) = support::maildir_messages(&inbox).pop() {
            break mail;
        }
        assert!(
            started.elapsed() < support::WAIT,
            "no alert:\n{}",
            daemon.log()
        );
        std::thread::yield_now();
    };
    let address = metrics_address(&daemon.log());
    let decoded = support::Received {
        from: String::new(),
        to: Vec::new(),
        data: mail,
    }
    .decoded();
    let not = feedback_link(&decoded, "not this ", &address);
    let more = feedback_link(&decoded, "more like this ", &address);
    assert!(not.contains("/feedback?a="), "{not}");
    let path = |link: &str| {
        link.split(&address)
            .nth(1)
            .expect("on the address")
            .to_owned()
    };

    // Opening a link shows what it would do and changes nothing.
    let (status, page) = http_get(&address, &path(&not));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Not this?") && page.contains("method=\"post\""),
        "{page}"
    );
    let learned = config.run(&["rules", "--learned"]);
    assert!(!String::from_utf8_lossy(&learned.stdout).contains("unlike = "));

    // A forged or altered link is refused, by GET and by POST.
    let query = not.split_once('?').expect("a query").1.to_owned();
    for bad in [
        query.replacen("r=talks", "r=other", 1),
        query.replacen("v=not", "v=more", 1),
        altered_last_digit(&query),
    ] {
        let (status, _) = http_get(&address, &format!("/feedback?{bad}"));
        assert_eq!(status, 403, "{bad}");
        let form = format!("q={}", urlencode(&bad));
        assert_eq!(http_post(&address, "/feedback", &form).0, 403, "{bad}");
    }

    // The button's POST learns the example: the same story again no longer matches.
    let (status, page) = http_post(&address, "/feedback", &format!("q={}", urlencode(&query)));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Thank you"), "{page}");
    std::fs::write(&feed, rss_told(&[("1", TALKS), ("2", TALKS)])).expect("feed file");
    let started = std::time::Instant::now();
    let why = loop {
        let out = config.run(&["why", "2"]);
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            started.elapsed() < support::WAIT,
            "item 2 never seen:\n{}",
            daemon.log()
        );
        std::thread::yield_now();
    };
    assert!(
        why.contains(&format!(
            "talks: not matched: nearer its unlike example \"{} — {}\"",
            TALKS.0, TALKS.1
        )),
        "{why}"
    );
    assert_eq!(
        support::maildir_messages(&inbox).len(),
        1,
        "no second alert"
    );
    let exported =
        String::from_utf8_lossy(&config.run(&["rules", "--learned"]).stdout).into_owned();
    assert!(
        exported.contains(&format!("unlike = [\"{} — {}\"]", TALKS.0, TALKS.1)),
        "{exported}"
    );
    let status = String::from_utf8_lossy(&config.run(&["status"]).stdout).into_owned();
    assert!(status.contains("feedback: 1 not this"), "{status}");

    // The other link of the same alert is still good, and its vote replaces the first.
    let (status, _) = http_post(
        &address,
        "/feedback",
        &format!("q={}", urlencode(more.split_once('?').expect("query").1)),
    );
    assert_eq!(status, 200);
    let status = String::from_utf8_lossy(&config.run(&["status"]).stdout).into_owned();
    assert!(status.contains("feedback: 1 more like this"), "{status}");
    assert_eq!(daemon.signal_and_wait("TERM").code(), Some(0));
}

/// Percent-encodes everything but letters and digits, as a form would.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
