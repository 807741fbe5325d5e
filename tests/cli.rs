//! The command line as a user meets it: exit codes, one-line errors, `check`,
//! `test-rules`, and the bundled demo config.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn newshound(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_newshound"));
    cmd.args(args)
        .env_remove("NEWSHOUND_CONFIG")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("newshound runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Copies the demo config and its feeds into a temp dir, so runs leave the repo clean.
fn demo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(repo("config/demo.toml"), dir.path().join("demo.toml")).expect("copy demo");
    let feeds = dir.path().join("demo-feeds");
    std::fs::create_dir(&feeds).expect("mkdir");
    for entry in std::fs::read_dir(repo("config/demo-feeds")).expect("demo feeds") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), feeds.join(entry.file_name())).expect("copy feed");
    }
    dir
}

/// `check` on the example config, with its secrets given: the SMTP password (in a
/// file) and the members feed's.
fn check_example_config(smtp_password: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{smtp_password}\n")).expect("write");
    newshound(
        &["check", "--config", &repo("config/example.toml")],
        &[
            (
                "NEWSHOUND__SMTP__PASSWORD_FILE",
                password_file.to_str().expect("utf-8 path"),
            ),
            ("MEMBERS_FEED_PASSWORD", "feed-secret-pw"),
            ("MEMBERS_API_KEY", "feed-api-key"),
        ],
    )
}

#[test]
fn check_accepts_the_example_config_and_never_prints_the_password() {
    let out = check_example_config("correct horse battery staple");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("feeds: 3"), "{text}");
    assert!(
        !text.contains("feed-secret-pw") && !text.contains("feed-api-key"),
        "{text}"
    );
    assert!(text.contains("talks → me, team (high priority)"), "{text}");
    assert!(text.contains("password ********"), "{text}");
    assert!(!text.contains("correct horse"), "{text}");
    assert!(!stderr(&out).contains("correct horse"));
}

/// Regression: `check` printed settings the way the code names them
/// (`first_poll: MarkSeen`, `(Starttls)`), not the way the config file spells them.
#[test]
fn check_prints_settings_as_the_config_file_spells_them() {
    let out = check_example_config("pw");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("first_poll: mark-seen"), "{text}");
    assert!(text.contains(":587 (starttls)"), "{text}");
}

#[test]
fn check_accepts_the_demo_config() {
    let out = newshound(&["check", "--config", &repo("config/demo.toml")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("rules: 4"));
    assert!(stdout(&out).contains("semantic model: builtin"));
    assert!(
        stdout(&out).contains(
            "retention: seen items forgotten 90 days after they leave their feed; \
             sent alerts kept 30 days, dead letters and held alerts 90 days"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(
            "same story: merged into its alert of the last 1 day when the link or title is \
             the same, or the text a copy (copy_threshold 0.35); rewrites not merged \
             (merge_rewrites is off)"
        ),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));
    let on = newshound(
        &["check", "--config", &repo("config/demo.toml")],
        &[("NEWSHOUND__DAEMON__MERGE_REWRITES", "true")],
    );
    assert!(on.status.success(), "{}", stderr(&on));
    assert!(
        stdout(&on).contains("rewrites merged too, at similarity 0.90 or more"),
        "{}",
        stdout(&on)
    );
}

#[test]
fn check_warns_of_a_retention_under_an_hour_and_still_accepts_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("short.toml");
    std::fs::write(
        &path,
        "[daemon]
keep_dead = \"10m\"\n",
    )
    .expect("write");
    let out = newshound(&["check", "--config", path.to_str().expect("utf-8")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "warning: daemon.keep_dead is 10m: after so short a time dead letters and held \
             alerts are deleted before anyone replays them; meant for tests, not a service"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_invalid_config_exits_2_with_one_line_naming_file_line_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[channels.me]\ntype = \"maildir\"\npath = \"m\"\n\n[[rules]]\nname = \"r\"\n\
         keywords = [\"NATO\"]\nchannels = [\"you\"]\n",
    )
    .expect("write");
    let out = newshound(&["check", "--config", path.to_str().expect("utf-8")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "newshound: {}:8: rules[0].channels[0]: unknown channel \"you\"; define it as [channels.you]\n",
            path.display()
        )
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_missing_config_exits_2_and_says_how_to_point_at_one() {
    let out = newshound(&["check", "--config", "/nonexistent/newshound.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("newshound: cannot read config file /nonexistent/newshound.toml"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn the_config_path_comes_from_newshound_config() {
    let out = newshound(
        &["check"],
        &[("NEWSHOUND_CONFIG", &repo("config/demo.toml"))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn test_rules_json_prints_the_documented_line_format_and_marks_nothing_seen() {
    let dir = demo_copy();
    let config = dir.path().join("demo.toml");
    let out = newshound(
        &[
            "test-rules",
            "--config",
            config.to_str().expect("utf-8"),
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with(
            r#"{"feed":"world-wire","key":"wire-76116","title":"Russia, U.S. Agree to Talk Security Demands Next Week","link":"https://wire.example.org/2022/01/21/russia-us-agree-to-talk-security-demands","published":"2022-01-21T11:35:00Z","rules":["talks","geneva","officials-in-geneva","security-talks"],"terms":["Lavrov","Blinken","NATO","Geneva"],"score":0.571,"spans":[{"rule":"talks","term":"Lavrov","field":"summary","start":24,"end":30},"#
        ),
        "{}",
        lines[0]
    );
    let by_meaning: serde_json::Value = serde_json::from_str(lines[2]).expect("json line");
    assert_eq!(by_meaning["rules"], serde_json::json!(["security-talks"]));
    assert_eq!(by_meaning["terms"], serde_json::json!([]));
    assert_eq!(by_meaning["score"], serde_json::json!(0.626));
    let line: serde_json::Value = serde_json::from_str(lines[4]).expect("json line");
    assert_eq!(line["feed"], "ru-desk");
    assert_eq!(
        line["spans"],
        serde_json::json!([
            {"rule": "talks", "term": "Лавров", "field": "title", "start": 0, "end": 12},
        ]),
        "NEAR wants both terms in one field; here they are in title and content"
    );
    assert_eq!(line["rules"], serde_json::json!(["talks"]));
    assert_eq!(
        lines[0].matches("\"rule\":\"officials-in-geneva\"").count(),
        3,
        "the NEAR rule reports both officials and the place"
    );
    assert!(
        !dir.path().join("demo-state").exists(),
        "a dry run creates no state"
    );
}

#[test]
fn test_rules_explain_shows_each_rule_with_its_terms_marked() {
    let out = newshound(
        &[
            "test-rules",
            "--config",
            &repo("config/demo.toml"),
            "--feed",
            "city-desk",
            "--explain",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "city-desk: Hotel staff prepare for diplomats\n\
         \x20 https://city.example.org/hotel-diplomats\n\
         \x20 rule talks: Lavrov\n\
         \x20    summary: Security was tight at the hotel by Lake Geneva where [Lavróv] stayed.\n\
         \x20 rule geneva: Geneva\n\
         \x20    summary: Security was tight at the hotel by Lake [Geneva] where Lavróv stayed.\n\
         \x20 rule officials-in-geneva: Lavrov, Geneva\n\
         \x20    summary: Security was tight at the hotel by Lake [Geneva] where [Lavróv] stayed.\n\
         \x20 rule security-talks: no match, score 0.44 (min_score 0.52)\n\
         \x20   closest: \"Kremlin envoy and US diplomats meet over troop deployments in Europe\"\n"
    );
}

#[test]
fn test_rules_reads_a_single_file_or_feed() {
    let out = newshound(
        &[
            "test-rules",
            "--config",
            &repo("config/demo.toml"),
            "--file",
            &repo("tests/fixtures/feeds/rss20.xml"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Russia, U.S. Agree to Talk Security Demands Next Week"),
        "{text}"
    );
    assert!(!text.contains("Natomas"), "{text}");
    assert!(stderr(&out).contains("4 items, 1 matched"));

    let out = newshound(
        &[
            "test-rules",
            "--config",
            &repo("config/demo.toml"),
            "--feed",
            "nope",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--feed \"nope\": no [[feeds]] entry has that name"));
}

#[test]
fn test_rules_on_a_broken_feed_says_why_and_exits_1() {
    let out = newshound(
        &[
            "test-rules",
            "--config",
            &repo("config/demo.toml"),
            "--file",
            &repo("tests/fixtures/feeds/not-a-feed.html"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a feed"), "{}", stderr(&out));
}

#[test]
fn once_on_the_demo_config_writes_alerts_into_the_maildir() {
    let dir = demo_copy();
    let config = dir.path().join("demo.toml");
    let out = newshound(&["once", "--config", config.to_str().expect("utf-8")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("polled 3 feeds (0 failed): 9 new items, 5 alerts queued; delivered 5"),
        "{}",
        stdout(&out)
    );
    let maildir = dir.path().join("demo-state/alerts");
    let messages = support::maildir_messages(&maildir);
    assert_eq!(messages.len(), 5);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("security-talks: Kremlin wants written answers")),
        "the story told without keywords arrives by meaning"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Security Demands Next Week"))
    );
    assert!(
        !messages
            .iter()
            .any(|m| m.contains("Natomas") || m.contains("Lavrovsky"))
    );

    let again = newshound(&["once", "--config", config.to_str().expect("utf-8")], &[]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("0 new items, 0 alerts queued"));
    assert_eq!(support::maildir_messages(Path::new(&maildir)).len(), 5);
}

/// Regression: `newshound check | head -1` exited 1 with "Broken pipe": a reader
/// that has seen enough is no failure, and no error line.
#[test]
fn output_cut_short_by_its_reader_is_no_error() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(["check", "--config", &repo("config/demo.toml")])
        .env_remove("NEWSHOUND_CONFIG")
        .stdout(writer)
        .output()
        .expect("newshound runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// cron mails whatever a job prints: when all is well, `once` prints its summary line
/// and nothing else; `-v` shows each poll and delivery.
#[test]
fn once_is_quiet_when_all_is_well_and_says_more_with_v() {
    let dir = demo_copy();
    let config = dir.path().join("demo.toml");
    let config = config.to_str().expect("utf-8");
    let quiet = newshound(&["once", "--config", config], &[]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "", "nothing on stderr");
    assert_eq!(stdout(&quiet).lines().count(), 1, "{}", stdout(&quiet));

    std::fs::remove_dir_all(dir.path().join("demo-state")).expect("fresh state");
    let verbose = newshound(&["once", "-v", "--config", config], &[]);
    assert!(verbose.status.success(), "{}", stderr(&verbose));
    let log = stderr(&verbose);
    assert_eq!(log.matches("polled").count(), 3, "{log}");
    assert!(log.contains("delivered"), "{log}");
    assert!(!log.contains("DEBUG"), "{log}");
}

#[test]
fn logs_come_as_json_lines_on_request_with_the_poll_span() {
    let dir = demo_copy();
    let config = dir.path().join("demo.toml");
    let out = newshound(
        &[
            "--log-format",
            "json",
            "once",
            "--config",
            config.to_str().expect("utf-8"),
        ],
        &[("RUST_LOG", "info")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let polled: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "polled")
        .collect();
    assert_eq!(polled.len(), 3, "{lines:?}");
    assert!(
        polled
            .iter()
            .all(|l| l["span"]["name"] == "poll" && l["level"] == "INFO")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "delivered" && l["span"]["name"] == "deliver")
    );
}

/// Regression: the SMTP pool needs the async runtime when it is built, and `once`
/// built it outside, so any config with an email channel panicked.
#[test]
fn once_with_an_email_channel_delivers_over_smtp() {
    support::init();
    let smtp = support::SmtpServer::start();
    let config = support::TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "{}[[feeds]]\nname = \"news\"\nurl = \"file://{}\"\n\n\
             [channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"NATO\"]\nchannels = [\"me\"]\n",
            smtp.config_section(),
            repo("tests/fixtures/feeds/rss20.xml")
        ),
    );
    let env: Vec<(String, String)> = support::test_env().into_iter().collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = newshound(
        &["once", "--config", config.path.to_str().expect("utf-8")],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("delivered 1"), "{}", stdout(&out));
    let message = smtp.next_message();
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("[newshound] talks: Russia, U.S. Agree to Talk Security Demands Next Week")
    );
}

#[test]
fn status_reports_each_feed_and_the_outbox_from_the_store() {
    let config = support::TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file://{}\"\n\n\
             [[feeds]]\nname = \"gone\"\nurl = \"file:missing.xml\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            repo("tests/fixtures/feeds/rss20.xml")
        ),
    );
    let path = config.path.to_str().expect("utf-8");

    let before = newshound(&["status", "--config", path], &[]);
    assert!(before.status.success(), "{}", stderr(&before));
    assert!(
        stdout(&before).starts_with("no state yet in "),
        "{}",
        stdout(&before)
    );
    assert!(!config.state_dir().exists(), "status creates no state");

    let once = newshound(&["once", "--config", path], &[]);
    assert_eq!(
        once.status.code(),
        Some(1),
        "a feed failed: {}",
        stdout(&once)
    );

    let out = newshound(&["status", "--config", path, "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let news = &report["feeds"][0];
    assert_eq!(news["name"], "news");
    assert_eq!(news["result"], "ok");
    assert_eq!(news["items_known"], 4);
    assert_eq!(news["consecutive_failures"], 0);
    assert!(news["next_poll"].is_string());
    let gone = &report["feeds"][1];
    assert_eq!(gone["result"], "file");
    assert_eq!(gone["consecutive_failures"], 1);
    assert_eq!(gone["last_success"], serde_json::Value::Null);
    assert!(
        gone["error"]
            .as_str()
            .expect("error")
            .contains("missing.xml")
    );
    assert_eq!(
        report["outbox"],
        serde_json::json!({"pending": 0, "sending": 0, "sent": 1, "dead": 0, "held": 0, "merged": 0})
    );
    assert_eq!(report["state"]["seen_items"], 4);
    let latest = &report["recent_alerts"][0];
    assert_eq!(
        (&latest["state"], &latest["feed"]),
        (&"sent".into(), &"news".into())
    );
    assert_eq!(
        latest["also"],
        serde_json::json!([]),
        "no other feed had it"
    );
    assert!(report["state"]["bytes"].as_u64().expect("bytes") > 0);
    assert_eq!(
        report["state"]["last_pruned"]["deleted"]["seen_items"], 0,
        "once prunes too (from cron, nothing else would)"
    );

    let table = stdout(&newshound(&["status", "--config", path], &[]));
    assert!(
        table.contains("outbox: 0 pending, 0 sending, 1 sent, 0 dead, 0 held, 0 merged"),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("state: 4 seen items, ")
            && l.contains(" on disk; last pruned ")
            && l.ends_with(": nothing expired")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("gone ") && l.contains(" file ")),
        "{table}"
    );

    // The config file breaks: status still shows the state, and says why it exits 2.
    let text = std::fs::read_to_string(&config.path).expect("config");
    std::fs::write(&config.path, text.replace("keywords", "keywrods")).expect("break it");
    let broken = newshound(&["status", "--config", path], &[]);
    assert_eq!(broken.status.code(), Some(2));
    let table = stdout(&broken);
    assert!(table.starts_with("config: "), "{table}");
    assert!(table.contains("unknown field `keywrods`"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("news ") && l.contains(" ok ")),
        "{table}"
    );
    assert!(
        table.contains("outbox: 0 pending, 0 sending, 1 sent"),
        "{table}"
    );
    assert_eq!(
        stderr(&broken).trim().lines().count(),
        1,
        "{}",
        stderr(&broken)
    );
}

/// An RSS document with `n` items about Lavrov, their guids prefixed by `prefix`.
fn many_items(prefix: &str, n: usize) -> String {
    let items: String = (0..n)
        .map(|i| format!("<item><guid>{prefix}-{i}</guid><title>Lavrov note {i}</title></item>"))
        .collect();
    format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>")
}

/// One file feed, `wire.xml`, whose Lavrov items alert into the Maildir `alerts`: the
/// config, the feed file and the Maildir.
fn wire_into_maildir() -> (support::TestConfig, PathBuf, PathBuf) {
    let config = support::TestConfig::write(
        "",
        "[[feeds]]\nname = \"wire\"\nurl = \"file:wire.xml\"\n\n\
         [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
    );
    let feed = config.dir.path().join("wire.xml");
    let inbox = config.dir.path().join("alerts");
    (config, feed, inbox)
}

#[test]
fn a_flood_is_held_with_one_notice_and_replay_releases_it() {
    let (config, feed, inbox) = wire_into_maildir();
    let path = config.path.to_str().expect("utf-8");
    std::fs::write(&feed, many_items("old", 12)).expect("write feed");
    assert!(newshound(&["once", "--config", path], &[]).status.success());

    // The publisher re-keys every item: 12 of 12 are "new".
    std::fs::write(&feed, many_items("new", 12)).expect("write feed");
    let out = newshound(&["once", "--config", path], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let messages = support::maildir_messages(&inbox);
    assert_eq!(messages.len(), 1, "one notice, not twelve alerts");
    assert!(
        messages[0].contains("12 new items at once look re-keyed or flooded; 12 alerts held"),
        "{}",
        messages[0]
    );

    let dry = newshound(&["replay", "--config", path, "--held", "--dry-run"], &[]);
    assert!(
        stdout(&dry).contains("would re-queue 12 held alerts (dry run: nothing changed)"),
        "{}",
        stdout(&dry)
    );
    let unchanged = newshound(&["once", "--config", path], &[]);
    assert!(stdout(&unchanged).contains("delivered 0"));

    let released = newshound(
        &["replay", "--config", path, "--held", "--rule", "talks"],
        &[],
    );
    assert!(
        stdout(&released).contains("re-queued 12 held alerts"),
        "{}",
        stdout(&released)
    );
    let sent = newshound(&["once", "--config", path], &[]);
    assert!(stdout(&sent).contains("delivered 12"), "{}", stdout(&sent));
    assert_eq!(support::maildir_messages(&inbox).len(), 13);
}

/// Regression: a new feed with `first_poll = "alert"` had no flood guard (500,000
/// matching items became 437,915 messages). Its absolute threshold holds a first
/// poll too; a normal 20-item feed still alerts.
#[test]
fn a_first_poll_that_alerts_is_held_past_the_flood_threshold() {
    let config = support::TestConfig::write(
        "first_poll = \"alert\"\nflood_threshold = 30",
        "[[feeds]]\nname = \"small\"\nurl = \"file:small.xml\"\n\n\
         [[feeds]]\nname = \"huge\"\nurl = \"file:huge.xml\"\n\n\
         [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
    );
    let dir = config.dir.path();
    std::fs::write(dir.join("small.xml"), many_items("s", 20)).expect("write feed");
    std::fs::write(dir.join("huge.xml"), many_items("h", 500)).expect("write feed");
    let path = config.path.to_str().expect("utf-8");
    let out = newshound(&["once", "--config", path], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let messages = support::maildir_messages(&dir.join("alerts"));
    assert_eq!(messages.len(), 21, "20 alerts and one notice");
    assert!(
        messages.iter().any(|m| m.contains(
            "feed huge: 500 new items at once look re-keyed or flooded; 500 alerts held"
        )),
        "no notice"
    );
}

/// Regression: a feed that re-keys every poll sent a flood notice every poll, and its
/// held alerts grew without limit. One notice until it stops flooding; at most
/// 1,000 alerts held per feed.
#[test]
fn a_feed_that_keeps_flooding_gets_one_notice_and_a_bounded_hold() {
    let (config, feed, inbox) = wire_into_maildir();
    let path = config.path.to_str().expect("utf-8");
    std::fs::write(&feed, many_items("p0", 600)).expect("write feed");
    assert!(newshound(&["once", "--config", path], &[]).status.success());
    for poll in 1..=3 {
        std::fs::write(&feed, many_items(&format!("p{poll}"), 600)).expect("write feed");
        let out = newshound(&["once", "--config", path], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        support::maildir_messages(&inbox).len(),
        1,
        "one notice for three floods"
    );
    let dry = newshound(&["replay", "--config", path, "--held", "--dry-run"], &[]);
    assert!(
        stdout(&dry).contains("would re-queue 1000 held alerts"),
        "{}",
        stdout(&dry).lines().last().unwrap_or_default()
    );

    // It calms down (one new item), then floods again: a new notice.
    let calm = many_items("p3", 600).replace(
        "<channel><title>t</title>",
        "<channel><title>t</title><item><guid>calm</guid><title>Lavrov calm</title></item>",
    );
    std::fs::write(&feed, calm).expect("write feed");
    assert!(newshound(&["once", "--config", path], &[]).status.success());
    assert_eq!(
        support::maildir_messages(&inbox).len(),
        2,
        "the calm item alerts"
    );
    std::fs::write(&feed, many_items("p4", 600)).expect("write feed");
    assert!(newshound(&["once", "--config", path], &[]).status.success());
    assert_eq!(
        support::maildir_messages(&inbox).len(),
        3,
        "a second flood, a second notice"
    );
}

#[test]
fn replay_dead_requeues_dead_letters_once_the_channel_works() {
    let config = support::TestConfig::write(
        "first_poll = \"alert\"\ndelivery_attempts = 1",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file://{}\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"blocked/alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            repo("tests/fixtures/feeds/rss20.xml")
        ),
    );
    let path = config.path.to_str().expect("utf-8");
    // A file where the Maildir's parent folder should be: delivery fails.
    let blocker = config.dir.path().join("blocked");
    std::fs::write(&blocker, "not a folder").expect("write");
    let first = newshound(&["once", "--config", path], &[]);
    assert!(stdout(&first).contains("dead 1"), "{}", stdout(&first));

    std::fs::remove_file(&blocker).expect("unblock");
    let out = newshound(
        &["replay", "--config", path, "--dead", "--since", "1h"],
        &[],
    );
    assert!(
        stdout(&out).contains("re-queued 1 dead letters"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("last error: maildir"),
        "{}",
        stdout(&out)
    );
    let sent = newshound(&["once", "--config", path], &[]);
    assert!(stdout(&sent).contains("delivered 1"), "{}", stdout(&sent));
    assert_eq!(
        support::maildir_messages(&config.dir.path().join("blocked/alerts")).len(),
        1
    );
}

#[test]
fn send_test_reports_what_the_receiver_said() {
    support::init();
    let smtp = support::SmtpServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let hooks = runtime.block_on(async {
        let hooks = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(503))
            .mount(&hooks)
            .await;
        hooks
    });
    let config = support::TestConfig::write(
        "",
        &format!(
            "{}[channels.me]\ntype = \"email\"\nto = [\"me@example.org\"]\n\n\
             [channels.hook]\ntype = \"webhook\"\nurl = \"{}/hook\"\n",
            smtp.config_section(),
            hooks.uri()
        ),
    );
    let env: Vec<(String, String)> = support::test_env().into_iter().collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let path = config.path.to_str().expect("utf-8");

    let out = newshound(&["send-test", "me", "--config", path], &env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("channel me (email): sent; the receiver answered: 250"),
        "{}",
        stdout(&out)
    );
    let message = smtp.next_message();
    assert!(
        message
            .header("Subject")
            .expect("subject")
            .contains("newshound test alert")
    );
    assert!(message.decoded().contains("*Lavrov*"));

    let out = newshound(&["send-test", "hook", "--config", path], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!(
            "channel hook (webhook): failed (temporary: would be retried): webhook {}/… answered 503 Service Unavailable\n",
            hooks.uri()
        )
    );
    let out = newshound(&["send-test", "pager", "--config", path], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no channel \"pager\"; the config defines: hook, me"));
}

#[test]
fn opml_from_feed_readers_imports_into_the_config_and_exports_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("newshound.toml");
    let original = "# My watch list: comments and layout survive an import.\n\
                    [daemon]\nstate_dir = \"state\"   # next to this file\n\n\
                    [[feeds]]\nname = \"meduza\"\nurl = \"https://meduza.io/rss/en/all\"\n\n\
                    [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
                    [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n";
    std::fs::write(&config, original).expect("write config");
    let config = config.to_str().expect("utf-8");
    let feedly = repo("tests/fixtures/opml/feedly.opml");
    let miniflux = repo("tests/fixtures/opml/miniflux.opml");

    // Printed, not written: Meduza is already there.
    let out = newshound(&["import-opml", &feedly, "--config", config], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert_eq!(printed.matches("[[feeds]]").count(), 4, "{printed}");
    assert!(
        printed.contains("name = \"the-moscow-times-news\""),
        "{printed}"
    );
    assert!(printed.contains("# UN News – Peace and Security (folder: Diplomacy)"));
    assert_eq!(std::fs::read_to_string(config).expect("read"), original);

    for (file, added) in [(&feedly, 4), (&miniflux, 1)] {
        let out = newshound(&["import-opml", file, "--write", "--config", config], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("added {added} feeds")),
            "{}",
            stdout(&out)
        );
    }
    let written = std::fs::read_to_string(config).expect("read");
    // Every line of the original is still there, in its order.
    let mut rest = written.as_str();
    for line in original.lines().filter(|l| !l.is_empty()) {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} lost or moved:\n{written}"));
        rest = &rest[at + line.len()..];
    }
    let check = newshound(&["check", "--config", config], &[]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("feeds: 6"), "{}", stdout(&check));
    let again = newshound(
        &["import-opml", &feedly, "--write", "--config", config],
        &[],
    );
    assert!(
        stdout(&again).starts_with("nothing to add"),
        "{}",
        stdout(&again)
    );

    let out = newshound(&["export-opml", "--config", config], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = newshound::config::opml::parse(&stdout(&out)).expect("valid OPML");
    let mut urls: Vec<String> = exported.into_iter().map(|s| s.url).collect();
    urls.sort();
    let mut expected: Vec<String> = [&feedly, &miniflux]
        .iter()
        .flat_map(|f| {
            newshound::config::opml::parse(&std::fs::read_to_string(f).expect("read"))
                .expect("fixture parses")
        })
        .map(|s| s.url)
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(urls, expected);
}

#[test]
fn importing_what_is_not_opml_exits_2_with_one_line() {
    let out = newshound(
        &[
            "import-opml",
            &repo("tests/fixtures/feeds/rss20.xml"),
            "--config",
            "/nonexistent.toml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("rss20.xml: not OPML: no <opml> root element"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);
}

/// The man page and completions shipped in the package are generated from the CLI
/// definition; this fails when they fall behind it.
#[test]
fn the_shipped_man_page_and_completions_match_the_cli() {
    for (args, file) in [
        (&["man"][..], "doc/newshound.1"),
        (&["completions", "bash"][..], "completions/newshound.bash"),
        (&["completions", "zsh"][..], "completions/_newshound"),
        (&["completions", "fish"][..], "completions/newshound.fish"),
    ] {
        let out = newshound(args, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let shipped = std::fs::read_to_string(repo(file)).expect("shipped file");
        assert!(
            stdout(&out) == shipped,
            "{file} is out of date; regenerate it: cargo run -- {} > {file}",
            args.join(" ")
        );
    }
}

#[test]
fn test_rules_since_reaches_back_at_most_a_day() {
    let demo = repo("config/demo.toml");
    let out = newshound(&["test-rules", "--since", "2days", "--config", &demo], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--since 2days: newshound keeps items for 1day"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn once_says_how_many_alerts_wait_for_a_digest() {
    let dir = demo_copy();
    let config = dir.path().join("demo.toml");
    let text = std::fs::read_to_string(&config)
        .expect("demo config")
        .replace(
            "path = \"demo-state/alerts\"",
            "path = \"demo-state/alerts\"\ndigest = \"daily 08:00\"",
        );
    std::fs::write(&config, text).expect("write config");
    let out = newshound(&["once", "--config", config.to_str().expect("utf-8")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("delivered 0, retrying 0, dead 0, 5 waiting for a digest or a rate limit"),
        "{}",
        stdout(&out)
    );
    assert!(support::maildir_messages(&dir.path().join("demo-state/alerts")).is_empty());
}

#[test]
fn status_lists_alerts_waiting_for_a_retry_with_their_error() {
    let closed = support::refused_address();
    let config = support::TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file://{}\"\n\n\
             [channels.hook]\ntype = \"webhook\"\nurl = \"http://{closed}/hook\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"hook\"]\n",
            repo("tests/fixtures/feeds/rss20.xml")
        ),
    );
    let path = config.path.to_str().expect("utf-8");
    let once = newshound(&["once", "--config", path], &[]);
    assert_eq!(once.status.code(), Some(1), "{}", stdout(&once));
    assert!(stdout(&once).contains("retrying 1"), "{}", stdout(&once));

    let table = stdout(&newshound(&["status", "--config", path], &[]));
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("retrying #"))
        .unwrap_or_else(|| panic!("no retrying line:\n{table}"));
    assert!(line.contains("(hook): 1 tries, next at "), "{line}");
    assert!(
        line.contains(&format!("webhook http://{closed}/…")),
        "{line}"
    );
    let json = stdout(&newshound(&["status", "--config", path, "--json"], &[]));
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["retrying"][0]["attempts"], 1);
}

/// Regression: one bare `&` in a title made the whole feed fail, for good. It is read,
/// alerts, and `status` says what was wrong with it.
#[test]
fn an_ill_formed_feed_alerts_and_status_names_the_repair() {
    let config = support::TestConfig::write(
        "first_poll = \"alert\"",
        "[[feeds]]\nname = \"sloppy\"\nurl = \"file:sloppy.xml\"\n\n\
         [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"NATO\"]\nchannels = [\"inbox\"]\n",
    );
    std::fs::write(
        config.dir.path().join("sloppy.xml"),
        "<rss version=\"2.0\"><channel><title>t</title><item><guid>1</guid>\
         <title>AT&T and NATO</title><link>https://x.test/?a=1&b=2</link></item>\
         </channel></rss>",
    )
    .expect("feed");
    let path = config.path.to_str().expect("utf-8");
    let once = newshound(&["once", "--config", path], &[]);
    assert!(once.status.success(), "{}", stderr(&once));
    let alerts = std::fs::read_dir(config.dir.path().join("alerts/new"))
        .expect("maildir")
        .count();
    assert_eq!(alerts, 1);
    let out = newshound(&["status", "--config", path, "--json"], &[]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let sloppy = &report["feeds"][0];
    assert_eq!(sloppy["result"], "ok");
    assert!(
        sloppy["repaired"]
            .as_str()
            .is_some_and(|why| why.contains("unable to parse XML")),
        "{sloppy}"
    );
    let table = stdout(&newshound(&["status", "--config", path], &[]));
    assert!(
        table.contains("  ill-formed, read once repaired: "),
        "{table}"
    );
}

/// Name, size and modification time of every file in `dir`; of the WAL index (`-shm`,
/// shared memory in which every reader marks what it reads) only name and size.
fn listing(dir: &std::path::Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("state dir")
        .flatten()
        .map(|e| {
            let meta = e.metadata().expect("metadata");
            let name = e.file_name().to_string_lossy().into_owned();
            let modified = (!name.ends_with("-shm")).then(|| meta.modified().expect("mtime"));
            (name, meta.len(), modified)
        })
        .collect();
    files.sort();
    files
}

/// Regression: `status` opened the state read-write (it failed for a read-only user or
/// on a read-only mount). It now opens it read-only and leaves every file as it was.
#[test]
fn status_reads_the_state_without_writing_to_it() {
    let config = support::TestConfig::write(
        "backfill_new_rules = true",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file://{}\"\n",
            repo("tests/fixtures/feeds/rss20.xml")
        ),
    );
    let path = config.path.to_str().expect("utf-8");
    let once = newshound(&["once", "--config", path], &[]);
    assert!(once.status.success(), "{}", stderr(&once));
    let before = listing(&config.state_dir());
    for args in [
        &["status", "--config", path][..],
        &["test-rules", "--config", path, "--since", "1h"][..],
    ] {
        let out = newshound(args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(listing(&config.state_dir()), before, "{args:?} wrote");
    }
}

/// Regression: a `newshound.db` that is a directory read as "never polled" (exit 0), and
/// one truncated to 0 bytes was taken as new: with `first_poll = "alert"` every item
/// was sent again. No state, a state that cannot be read and a damaged state are told
/// apart, each in one line, and the daemon refuses the last two.
#[test]
fn a_missing_state_is_told_from_a_damaged_one() {
    let config = support::TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file://{}\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n\n\
             [[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
            repo("tests/fixtures/feeds/rss20.xml")
        ),
    );
    let path = config.path.to_str().expect("utf-8");
    let db = config.state_dir().join("newshound.db");
    std::fs::create_dir_all(&db).expect("a directory where the database goes");
    let status = newshound(&["status", "--config", path], &[]);
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(
        stderr(&status).contains("is not a file"),
        "{}",
        stderr(&status)
    );

    std::fs::remove_dir(&db).expect("rmdir");
    std::fs::write(&db, b"").expect("a database cut to 0 bytes");
    for command in ["status", "once"] {
        let out = newshound(&[command, "--config", path], &[]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("is empty (0 bytes)"), "{command}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{command}: {err}");
    }
    assert!(
        !config.dir.path().join("alerts/new").exists(),
        "nothing was sent again"
    );
    assert_eq!(
        std::fs::metadata(&db).expect("db").len(),
        0,
        "left as found"
    );

    std::fs::write(
        &db,
        b"this is not an SQLite database, it only sits where one goes",
    )
    .expect("garbage");
    let status = newshound(&["status", "--config", path], &[]);
    assert_eq!(status.status.code(), Some(1));
    assert!(
        stderr(&status).contains("not a database"),
        "{}",
        stderr(&status)
    );
}

/// What `test-rules --explain` prints (stdout, then stderr) for a feed `wire` with
/// the labelled items `first`, then a feed `herald` with `later`, under a rule for
/// `keyword` and the `[daemon]` settings `daemon`.
fn explain_stories(first: &[&str], later: &[&str], keyword: &str, daemon: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("wire.xml"), support::story_rss(first)).expect("feed");
    std::fs::write(dir.path().join("herald.xml"), support::story_rss(later)).expect("feed");
    let path = dir.path().join("newshound.toml");
    std::fs::write(
        &path,
        format!(
            "[daemon]\n{daemon}\n\n\
             [[feeds]]\nname = \"wire\"\nurl = \"file:wire.xml\"\n\n\
             [[feeds]]\nname = \"herald\"\nurl = \"file:herald.xml\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
             [[rules]]\nname = \"story\"\nkeywords = [\"{keyword}\"]\nchannels = [\"inbox\"]\n"
        ),
    )
    .expect("config");
    let config = path.to_str().expect("utf-8");
    let out = newshound(&["test-rules", "--explain", "--config", config], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out) + &stderr(&out)
}

/// The lines of `text` that say an item is the same story as one before it.
fn same_story_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("same story as"))
        .collect()
}

#[test]
fn test_rules_explain_says_which_items_are_rewrites_when_merge_rewrites_is_on() {
    let text = explain_stories(
        &["s02-orig"],
        &["s02-rw1", "s02-d"],
        "Haldane",
        "merge_rewrites = true",
    );
    let said = same_story_lines(&text);
    assert_eq!(said.len(), 1, "the rewrite, not the earlier bid:\n{text}");
    assert!(
        said[0].contains(
            "same story as wire: Haldane Motors agrees $4.2 billion deal to buy Corvel \
             Automotive (a rewrite: similarity 0."
        ) && said[0].contains("(rewrite_threshold 0.90), ")
            && said[0].ends_with("names in common, numbers that agree, published close together)"),
        "{text}"
    );
}

/// `test-rules --explain` says which matched items the daemon would merge into an
/// earlier one's alert, and why; a decoy (the same people, another story) stays apart.
#[test]
fn test_rules_explain_says_which_items_are_copies_of_an_earlier_story() {
    let text = explain_stories(&["s01-orig"], &["s01-copy1", "s01-d"], "Kalna", "");
    let said = same_story_lines(&text);
    assert_eq!(said.len(), 1, "{text}");
    assert!(
        said[0].contains(
            "same story as wire: Marovia and Ostria resume Drava dam talks in Geneva (a copy: "
        ) && said[0].ends_with("of their sketches agree (copy_threshold 35%))"),
        "{text}"
    );
    let copy = text
        .find("herald: Ostria offers 2 billion")
        .expect("the copy is shown");
    assert!(
        text.find(said[0]) > Some(copy),
        "said under the copy:\n{text}"
    );
    assert!(text.contains("1 matched items are the same story as one before them"));
}

/// With more than 50 feeds, `status` lists those that need a look under a summary of
/// all of them; `--all` lists every feed.
#[test]
fn status_of_many_feeds_lists_those_that_need_a_look_and_all_with_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = String::from(
        "[daemon]\nstate_dir = \"state\"\n\n[channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
         [[rules]]\nname = \"talks\"\nkeywords = [\"NATO\"]\nchannels = [\"inbox\"]\n",
    );
    for i in 0..60 {
        if i != 7 && i != 42 {
            let rss = format!(
                "<rss version=\"2.0\"><channel><title>f{i}</title><item><guid>f{i}-1</guid>\
                 <title>story {i}</title></item></channel></rss>"
            );
            std::fs::write(dir.path().join(format!("feed{i}.xml")), rss).expect("feed");
        }
        text.push_str(&format!(
            "\n[[feeds]]\nname = \"feed{i}\"\nurl = \"file:feed{i}.xml\"\n"
        ));
    }
    let path = dir.path().join("newshound.toml");
    std::fs::write(&path, text).expect("config");
    let config = path.to_str().expect("utf-8");
    let once = newshound(&["once", "--config", config], &[]);
    assert!(!once.status.success(), "two feeds fail");
    let rows = |out: &Output| {
        stdout(out)
            .lines()
            .filter(|l| l.starts_with("feed"))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let out = newshound(&["status", "--config", config], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rows(&out), ["feed7", "feed42"], "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "60 feeds: 58 ok, 2 failing, 0 stale, 0 never polled; listed: the 2 that need a \
             look; `newshound status --all` lists every feed"
        ),
        "{}",
        stdout(&out)
    );
    let all = newshound(&["status", "--all", "--config", config], &[]);
    assert_eq!(rows(&all).len(), 60);
    assert!(!stdout(&all).contains("--all` lists"));
}

#[test]
fn a_config_given_as_dot_slash_is_not_included_by_its_own_pattern() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("newshound.toml"),
        "include = [\"*.toml\"]\n\n[channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n",
    )
    .expect("main file");
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rules]]\nname = \"talks\"\nkeywords = [\"Lavrov\"]\nchannels = [\"inbox\"]\n",
    )
    .expect("rules file");
    let out = Command::new(env!("CARGO_BIN_EXE_newshound"))
        .current_dir(dir.path())
        .args(["check", "--config", "./newshound.toml"])
        .env_remove("NEWSHOUND_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("newshound runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("rules.toml"), "{}", stdout(&out));
}
