//! The `exec` channel: a program of the user's run for each message, without a shell,
//! the message as JSON on its stdin (the `json` webhook body: one alert, or a digest or
//! summary listing several). Its exit status says what became of it: 0 sent, 75
//! (`EX_TEMPFAIL`) try again later, anything else a dead letter with what it said on
//! stderr. One that runs past its timeout is killed and kept as a dead letter too.
//!
//! The program leads a process group of its own: a timeout, or a delivery dropped at
//! shutdown, kills the whole group, so no child it started is left behind. Its exit
//! status is its answer: a child it leaves running (holding its output or not) does
//! not make it wait, and is left alone.
//!
//! The program starts with a clean environment: `PATH=/usr/local/bin:/usr/bin:/bin`,
//! `LANG=C.UTF-8`, `NEWSHOUND_CHANNEL` (the channel's name) and `NEWSHOUND_MESSAGE_ID`
//! (the same for a redelivery of the same message, like the webhook-id), nothing else.

use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Key, Kind, Outgoing, Settings};
use crate::notify::DeliveryError;

/// Where a program named without a path is looked for: the `PATH` it runs with.
const SEARCH_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The program gets this long to exit unless `timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub command: Vec<String>,
    pub timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// The program and its arguments, run without a shell.
    command: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
}

impl Exec {
    /// Whether its program is a file newshound may run: where its path says, or, for
    /// a bare name, in one of the folders of its `PATH`.
    pub fn program_found(&self) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        let runnable = |path: &std::path::Path| {
            std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        match self.command.first() {
            Some(program) if program.contains('/') => runnable(std::path::Path::new(program)),
            Some(program) => SEARCH_PATH
                .split(':')
                .any(|dir| runnable(&std::path::Path::new(dir).join(program))),
            None => false,
        }
    }
}

impl Kind for Exec {
    const NAME: &'static str = "exec";
    const CHANGED: &'static str = "command or timeout changed";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Exec, S::Error> {
        if raw
            .command
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            return Err(settings.invalid(
                &[Key::Name("command")],
                "name the program to run, like [\"/usr/local/bin/notify\", \"--urgent\"]".into(),
            ));
        }
        let timeout = match raw.timeout {
            Some(t) if t.is_zero() => {
                return Err(settings.invalid(&[Key::Name("timeout")], "must be more than 0s".into()));
            }
            t => t.unwrap_or(DEFAULT_TIMEOUT),
        };
        let mut command = raw.command;
        // A path is relative to the config's folder, as every path of the config; a
        // bare name is looked up in the program's PATH.
        if command[0].contains('/') {
            command[0] = settings
                .path(std::path::Path::new(&command[0]))
                .to_string_lossy()
                .into_owned();
        }
        Ok(Exec { command, timeout })
    }

    fn describe(&self) -> String {
        format!(
            "{} (timeout {})",
            self.command.join(" "),
            humantime::format_duration(self.timeout)
        )
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let body = out.json()?;
        run(&self.command, &body, out.channel, &out.webhook_id(), self.timeout).await
    }
}

/// The exit status that asks for another try later (`EX_TEMPFAIL` of sysexits.h).
pub const TEMPFAIL: i32 = 75;
/// At most this much of what the program writes (stdout, stderr) is kept.
const OUTPUT_BYTES: usize = 2048;
/// Once the program exited, its pipes are read this much longer at most: a child it
/// left running may hold them open.
const DRAIN: Duration = Duration::from_millis(200);

/// Runs `command` with `body` on its stdin; what it said on stdout (a line) on success.
pub async fn run(
    command: &[String],
    body: &str,
    channel: &str,
    id: &str,
    timeout: Duration,
) -> Result<String, DeliveryError> {
    let Some((program, args)) = command.split_first() else {
        return Err(DeliveryError::fatal("exec: no program"));
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", SEARCH_PATH)
        .env("LANG", "C.UTF-8")
        .env("NEWSHOUND_CHANNEL", channel)
        .env("NEWSHOUND_MESSAGE_ID", id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DeliveryError::fatal(format!("exec {program}: cannot start it: {e}")))?;
    let mut group = Group::of(&child);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let talk = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits without reading its input is its own business.
            let _ = stdin.write_all(body.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        }
        // Both read at once, so that a program filling one pipe never waits on us
        // while we wait on the other.
        let reading = async { tokio::join!(read_into(stdout, &mut out), read_into(stderr, &mut err)) };
        tokio::pin!(reading);
        let exited = tokio::select! {
            _ = &mut reading => None,
            status = child.wait() => Some(status),
        };
        match exited {
            None => child.wait().await,
            Some(status) => {
                // A child it left running may hold the pipes open: what the program
                // itself wrote is there by now.
                let _ = tokio::time::timeout(DRAIN, &mut reading).await;
                status
            }
        }
    };
    let Ok(status) = tokio::time::timeout(timeout, talk).await else {
        group.kill();
        return Err(DeliveryError::fatal(format!(
            "exec {program}: still running after {} (its timeout); stopped",
            humantime::format_duration(timeout)
        )));
    };
    // It exited by itself: what it left running on purpose is its own business.
    group.release();
    let status = status
        .map_err(|e| DeliveryError::retry(format!("exec {program}: cannot wait for it: {e}")))?;
    let said = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        crate::model::collapse_whitespace(text.trim())
    };
    match status.code() {
        Some(0) => Ok(match said(&out) {
            out if out.is_empty() => "exit 0".to_owned(),
            out => format!("exit 0: {out}"),
        }),
        Some(TEMPFAIL) => Err(DeliveryError::retry(format!(
            "exec {program}: exit {TEMPFAIL} (try again later): {}",
            said(&err)
        ))),
        Some(code) => Err(DeliveryError::fatal(format!(
            "exec {program}: exit {code}: {}",
            said(&err)
        ))),
        None => Err(DeliveryError::fatal(format!(
            "exec {program}: killed by a signal: {}",
            said(&err)
        ))),
    }
}

/// Reads `pipe` to its end into `kept`, keeping the first [`OUTPUT_BYTES`].
async fn read_into(pipe: Option<impl tokio::io::AsyncRead + Unpin>, kept: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut buffer = [0u8; 8192];
    while let Ok(n @ 1..) = pipe.read(&mut buffer).await {
        let room = OUTPUT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
    }
}

/// The program's process group (it leads its own): killed whole when its delivery
/// times out or is dropped at shutdown, so that no child it started outlives it.
struct Group(Option<Pid>);

impl Group {
    fn of(child: &tokio::process::Child) -> Group {
        Group(child.id().and_then(|id| Pid::from_raw(id as i32)))
    }

    fn kill(&mut self) {
        if let Some(leader) = self.0.take() {
            // Already gone (ESRCH) is as good.
            let _ = kill_process_group(leader, Signal::KILL);
        }
    }

    fn release(&mut self) {
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::*;

    /// A shell script in `dir`, executable.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn command(program: &Path, args: &[&str]) -> Vec<String> {
        std::iter::once(program.display().to_string())
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn exit_0_is_sent_and_the_program_gets_the_json_and_a_clean_environment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("got");
        let program = script(
            dir.path(),
            "ok",
            "cat > \"$1\"\nenv > \"$1.env\"\necho 'queued as 42'",
        );
        let body = r#"{"title":"Lavrov in Geneva"}"#;
        let said = run(
            &command(&program, &[&out.display().to_string()]),
            body,
            "me",
            "id-1",
            10 * SECOND,
        )
        .await
        .expect("sent");
        assert_eq!(said, "exit 0: queued as 42");
        assert_eq!(
            std::fs::read_to_string(&out).expect("stdin"),
            format!("{body}\n")
        );
        let env = std::fs::read_to_string(dir.path().join("got.env")).expect("env");
        for expected in [
            "NEWSHOUND_CHANNEL=me",
            "NEWSHOUND_MESSAGE_ID=id-1",
            "PATH=/usr/local/bin:/usr/bin:/bin",
        ] {
            assert!(env.lines().any(|l| l == expected), "{expected} in {env}");
        }
        assert!(
            !env.contains("HOME=") && !env.contains("CARGO"),
            "a clean environment: {env}"
        );
    }

    #[tokio::test]
    async fn exit_75_is_tried_again_and_other_failures_are_dead_letters_with_stderr() {
        let dir = tempfile::tempdir().expect("temp dir");
        let later = script(dir.path(), "later", "echo 'queue full' >&2\nexit 75");
        let err = run(&command(&later, &[]), "{}", "me", "id", 10 * SECOND)
            .await
            .expect_err("later");
        assert!(err.retryable, "{err}");
        assert!(
            err.message
                .ends_with("exit 75 (try again later): queue full"),
            "{err}"
        );

        let broken = script(
            dir.path(),
            "broken",
            "head -c 100000 /dev/zero | tr '\\0' x >&2\nexit 3",
        );
        let err = run(&command(&broken, &[]), "{}", "me", "id", 10 * SECOND)
            .await
            .expect_err("dead");
        assert!(!err.retryable);
        assert!(err.message.contains("exit 3: xxx"), "{err}");
        assert!(err.message.len() < OUTPUT_BYTES + 200, "stderr is bounded");

        let missing = dir.path().join("no-such-program");
        let err = run(&command(&missing, &[]), "{}", "me", "id", 10 * SECOND)
            .await
            .expect_err("missing");
        assert!(
            !err.retryable && err.message.contains("cannot start it"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_program_past_its_timeout_is_stopped_and_a_dead_letter() {
        let dir = tempfile::tempdir().expect("temp dir");
        let slow = script(dir.path(), "slow", "exec sleep 30");
        let started = std::time::Instant::now();
        let err = run(
            &command(&slow, &[]),
            "{}",
            "me",
            "id",
            Duration::from_millis(300),
        )
        .await
        .expect_err("timeout");
        assert!(!err.retryable);
        assert!(err.message.contains("still running after 300ms"), "{err}");
        assert!(started.elapsed() < 10 * SECOND, "not waited out");
    }

    /// Whether the process `pid` still runs (a zombie waiting to be reaped does not).
    fn alive(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(") ").next().is_some_and(|s| !s.starts_with('Z')))
    }

    /// Waits (a bounded while) for `pid` to be gone; says whether it went.
    async fn gone(pid: &str) -> bool {
        for _ in 0..500 {
            if !alive(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// The pid a script wrote into `file`, once it has.
    async fn pid_in(file: &Path) -> String {
        for _ in 0..500 {
            if let Ok(pid) = std::fs::read_to_string(file)
                && !pid.trim().is_empty()
            {
                return pid.trim().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} was never written", file.display());
    }

    #[tokio::test]
    async fn a_timeout_kills_the_programs_children_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid = dir.path().join("child");
        let slow = script(dir.path(), "slow", "sleep 30 &\necho $! > \"$1\"\nwait");
        let err = run(
            &command(&slow, &[&pid.display().to_string()]),
            "{}",
            "me",
            "id",
            Duration::from_millis(500),
        )
        .await
        .expect_err("timeout");
        assert!(err.message.contains("still running"), "{err}");
        assert!(gone(&pid_in(&pid).await).await, "the child sleep was killed");
    }

    #[tokio::test]
    async fn a_delivery_dropped_at_shutdown_kills_the_program_and_its_children() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid = dir.path().join("child");
        let slow = script(dir.path(), "slow", "sleep 30 &\necho $! > \"$1\"\nwait");
        let program = command(&slow, &[&pid.display().to_string()]);
        let delivery = tokio::spawn(async move { run(&program, "{}", "me", "id", 60 * SECOND).await });
        let child = pid_in(&pid).await;
        delivery.abort();
        assert!(delivery.await.is_err(), "cancelled");
        assert!(gone(&child).await, "the child sleep was killed");
    }

    #[tokio::test]
    async fn exit_0_is_sent_though_a_background_child_still_holds_its_output() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid = dir.path().join("child");
        let quick = script(
            dir.path(),
            "quick",
            "sleep 30 &\necho $! > \"$1\"\necho 'queued'",
        );
        let said = run(
            &command(&quick, &[&pid.display().to_string()]),
            "{}",
            "me",
            "id",
            10 * SECOND,
        )
        .await;
        let child = pid_in(&pid).await;
        let _ = std::process::Command::new("kill").arg(&child).status();
        assert_eq!(said.expect("sent"), "exit 0: queued");
    }
}
