//! The `exec` channel: a program of the user's run for each message, without a shell,
//! the message as JSON on its stdin (the `json` webhook body: one alert, or a digest or
//! summary listing several). Its exit status says what became of it: 0 sent, 75
//! (`EX_TEMPFAIL`) try again later, anything else a dead letter with what it said on
//! stderr. One that runs past its timeout is killed and kept as a dead letter too.
//!
//! The program starts with a clean environment: `PATH=/usr/local/bin:/usr/bin:/bin`,
//! `LANG=C.UTF-8`, `NEWSHOUND_CHANNEL` (the channel's name) and `NEWSHOUND_MESSAGE_ID`
//! (the same for a redelivery of the same message, like the webhook-id), nothing else.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Key, Kind, Outgoing, Settings};
use crate::notify::DeliveryError;

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
        Ok(Exec {
            command: raw.command,
            timeout,
        })
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
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("NEWSHOUND_CHANNEL", channel)
        .env("NEWSHOUND_MESSAGE_ID", id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DeliveryError::fatal(format!("exec {program}: cannot start it: {e}")))?;
    let talk = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits without reading its input is its own business.
            let _ = stdin.write_all(body.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        }
        // Both read at once and to their end, so that a program filling one pipe
        // never waits on us while we wait on the other.
        let (out, err) = tokio::join!(
            read_bounded(child.stdout.take()),
            read_bounded(child.stderr.take())
        );
        let status = child.wait().await;
        (status, out, err)
    };
    let Ok((status, out, err)) = tokio::time::timeout(timeout, talk).await else {
        return Err(DeliveryError::fatal(format!(
            "exec {program}: still running after {} (its timeout); stopped",
            humantime::format_duration(timeout)
        )));
    };
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

/// What `pipe` gives up to its end, keeping the first [`OUTPUT_BYTES`].
async fn read_bounded(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buffer = [0u8; 8192];
    while let Ok(n @ 1..) = pipe.read(&mut buffer).await {
        let room = OUTPUT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
    }
    kept
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
}
