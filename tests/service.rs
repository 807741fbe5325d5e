//! The real binary as a service: `kill -9` in the middle of a delivery loses nothing,
//! a second daemon on the same state is refused, and SIGTERM stops the daemon cleanly.

mod support;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

use newshound::store::{OutboxCounts, Store};
use support::{SmtpMode, SmtpServer, TestConfig, WAIT};

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(config: &TestConfig, run: u32) -> Daemon {
        let log = config.dir.path().join(format!("daemon-{run}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_newshound"))
            .args(["run", "--config"])
            .arg(&config.path)
            .envs(support::test_env())
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
    fn signal_and_wait(mut self, signal: &str) -> ExitStatus {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let _ = tx.send(self.child.wait());
        });
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| {
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
    {
        let store = Store::open(&config.state_dir()).expect("store opens after the crash");
        // Claimed by the dead process; the next start takes the claim back.
        assert_eq!(store.outbox_counts().expect("counts").sending, 1);
    }

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
    let intruder = Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["once", "--config"])
        .arg(&config.path)
        .envs(support::test_env())
        .output()
        .expect("second instance runs");
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

    let store = Store::open(&config.state_dir()).expect("store opens");
    assert_eq!(
        store.outbox_counts().expect("counts"),
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
