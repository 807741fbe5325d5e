//! The unit file: `systemd-analyze verify` accepts it (with ExecStart pointed at the
//! binary just built) and `systemd-analyze security` rates its exposure 2.0 or less.
//! `.ci/run` installs Debian's systemd package where it is missing; elsewhere without
//! `systemd-analyze` this test says so and checks nothing.

use std::path::Path;
use std::process::Command;

fn analyze(args: &[&str]) -> Option<std::process::Output> {
    Command::new("systemd-analyze").args(args).output().ok()
}

/// The repo's unit with ExecStart pointing at the test build, in a temp dir.
fn unit() -> (tempfile::TempDir, String) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/newshound.service"),
    )
    .expect("unit file");
    assert!(text.contains("ExecStart=/usr/bin/newshound run"), "{text}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("newshound.service");
    std::fs::write(
        &path,
        text.replace("/usr/bin/newshound", env!("CARGO_BIN_EXE_newshound")),
    )
    .expect("write unit");
    (dir, path.to_string_lossy().into_owned())
}

#[test]
fn the_unit_verifies_and_its_exposure_is_at_most_2() {
    let Some(version) = analyze(&["--version"]) else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(version.status.success());
    let (_dir, path) = unit();
    let text = std::fs::read_to_string(&path).expect("unit");
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line}");
    }

    let verify = analyze(&["verify", &path]).expect("runs");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{complaints}");
    assert!(
        !complaints.contains("newshound.service"),
        "no warning about the unit: {complaints}"
    );

    let security = analyze(&["security", "--offline=yes", &path]).expect("runs");
    let report = String::from_utf8_lossy(&security.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for newshound.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{report}"));
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{report}");
}
