use super::*;

const VALID: &str = r#"
[daemon]
state_dir = "state"
poll_interval = "5m"

[smtp]
host = "smtp.example.org"
username = "alerts@example.org"
password_env = "SMTP_PW"
from = "newshound <alerts@example.org>"

[[feeds]]
name = "moscow-times"
url = "https://www.themoscowtimes.com/rss/news"
interval = "2m"

[[feeds]]
name = "local"
url = "file://feeds/local.xml"

[channels.me]
type = "email"
to = ["me@example.org"]

[channels.inbox]
type = "maildir"
path = "alerts"

[[rules]]
name = "talks"
keywords = ["Lavrov", "Blinken", "NATO"]
channels = ["me", "inbox"]

[[rules]]
name = "geneva"
keywords = ["Geneva"]
feeds = ["moscow-times"]
fields = ["title", "summary"]
channels = ["inbox"]
"#;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("/etc/nh/newshound.toml"), text, &env(pairs))
}

/// Each row breaks `base` (replaces its first `from` by `to`); the config must then
/// fail with one line starting with `expected`.
fn fails_with(base: &str, rows: &[(&str, &str, &str)], pairs: &[(&str, &str)]) {
    for (from, to, expected) in rows {
        assert!(
            base.contains(from),
            "row pattern {from:?} not in the base config"
        );
        let text = base.replacen(from, to, 1);
        let err = load(&text, pairs).expect_err(expected);
        let line = err.to_string();
        assert!(
            line.starts_with(expected),
            "expected {expected:?}\n     got {line:?}"
        );
        assert!(!line.contains('\n'), "one line: {line:?}");
    }
}

/// Loading `text` must fail with an error that says `expected`.
fn refused_with(text: &str, pairs: &[(&str, &str)], expected: &str) {
    let err = load(text, pairs).expect_err(expected).to_string();
    assert!(
        err.contains(expected),
        "expected {expected:?}\n     got {err:?}"
    );
}

#[test]
fn a_valid_file_is_checked_into_config() {
    let config = load(VALID, &[("SMTP_PW", "hunter2")]).expect("valid config");
    assert_eq!(config.daemon.state_dir, Path::new("/etc/nh/state"));
    assert_eq!(config.daemon.poll_interval, Duration::from_secs(300));
    assert_eq!(config.daemon.first_poll, FirstPoll::MarkSeen);
    assert_eq!(config.feeds[0].interval, Duration::from_secs(120));
    assert_eq!(config.feeds[1].interval, Duration::from_secs(300));
    assert_eq!(
        config.feeds[1].source,
        FeedSource::File(PathBuf::from("/etc/nh/feeds/local.xml"))
    );
    assert_eq!(
        config.channels["inbox"].transport,
        Transport::Maildir(kinds::Maildir {
            path: PathBuf::from("/etc/nh/alerts")
        })
    );
    assert_eq!(config.rules.len(), 2);
    assert_eq!(config.routes["talks"], ["me", "inbox"]);
    let smtp = config.smtp.expect("smtp section");
    assert_eq!(smtp.port, 587);
    assert_eq!(smtp.security, Security::Starttls);
    let (_, password) = smtp.credentials.expect("credentials");
    assert_eq!(password.expose(), "hunter2");
}

#[test]
fn queries_use_lists_and_rule_options() {
    let text = VALID.replace(
        "keywords = [\"Geneva\"]",
        "query = \"@officials NEAR/5 Geneva\"\ncase_sensitive = true\naccents = \"strict\"",
    ) + "\n[lists]\nofficials = [\"Lavrov\", \"Peskov\"]\n";
    let config = load(&text, &[("SMTP_PW", "x")]).expect("valid config");
    assert_eq!(config.rules.len(), 2);
}

#[test]
fn the_password_never_shows_in_debug_output() {
    let config = load(VALID, &[("SMTP_PW", "hunter2")]).expect("valid config");
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("********"));
}

#[test]
fn environment_overrides_keys() {
    let config = load(
        VALID,
        &[
            ("SMTP_PW", "x"),
            ("NEWSHOUND__SMTP__HOST", "relay.internal"),
            ("NEWSHOUND__SMTP__PORT", "2525"),
            ("NEWSHOUND__DAEMON__FIRST_POLL", "alert"),
        ],
    )
    .expect("valid config");
    let smtp = config.smtp.expect("smtp section");
    assert_eq!(smtp.host, "relay.internal");
    assert_eq!(smtp.port, 2525);
    assert_eq!(config.daemon.first_poll, FirstPoll::Alert);
}

#[test]
fn state_dir_defaults_to_systemd_then_next_to_the_file() {
    let text = "[daemon]\npoll_interval = \"1m\"\n";
    let config = load(text, &[("STATE_DIRECTORY", "/var/lib/newshound")]).expect("valid");
    assert_eq!(config.daemon.state_dir, Path::new("/var/lib/newshound"));
    let config = load(text, &[]).expect("valid");
    assert_eq!(config.daemon.state_dir, Path::new("/etc/nh/state"));
}

/// One row per broken config: what to replace in `VALID`, and the exact error line.
#[test]
fn invalid_configs_name_the_line_and_key() {
    let rows: &[(&str, &str, &str)] = &[
        (
            "poll_interval = \"5m\"",
            "poll_interval = \"5m\"\npoll_intervall = \"1m\"",
            "/etc/nh/newshound.toml:5: daemon.poll_intervall: unknown field `poll_intervall`, expected one of",
        ),
        (
            "interval = \"2m\"",
            "interval = \"two minutes\"",
            "/etc/nh/newshound.toml:15: feeds[0].interval: invalid value: string \"two minutes\"",
        ),
        (
            "channels = [\"me\", \"inbox\"]",
            "channels = [\"me\", \"pager\"]",
            "/etc/nh/newshound.toml:32: rules[0].channels[1]: unknown channel \"pager\"; define it as [channels.pager]",
        ),
        (
            "feeds = [\"moscow-times\"]",
            "feeds = [\"moscow-tims\"]",
            "/etc/nh/newshound.toml:37: rules[1].feeds[0]: unknown feed \"moscow-tims\"; it must be the name of a [[feeds]] entry",
        ),
        (
            "name = \"local\"",
            "name = \"moscow-times\"",
            "/etc/nh/newshound.toml:18: feeds[1].name: duplicate feed name \"moscow-times\" (also feeds[0].name (/etc/nh/newshound.toml:13)); names must be unique",
        ),
        (
            "name = \"geneva\"",
            "name = \"talks\"",
            "/etc/nh/newshound.toml:35: rules[1].name: duplicate rule name \"talks\" (also rules[0].name (/etc/nh/newshound.toml:30)); names must be unique",
        ),
        (
            "keywords = [\"Lavrov\", \"Blinken\", \"NATO\"]",
            "keywords = [\"Lavrov\", \"\", \"NATO\"]",
            "/etc/nh/newshound.toml:31: rules[0].keywords[1]: keyword 1 is empty (or only punctuation that matching ignores)",
        ),
        (
            "type = \"maildir\"",
            "type = \"pigeon\"",
            "/etc/nh/newshound.toml:26: channels.inbox.type: unknown variant `pigeon`, expected one of `email`, `webhook`, `maildir`",
        ),
        (
            "url = \"https://www.themoscowtimes.com/rss/news\"",
            "url = \"ftp://example.org/feed\"",
            "/etc/nh/newshound.toml:14: feeds[0].url: unsupported scheme \"ftp\" in \"ftp://example.org/feed\"; use http, https or file",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"not an address\"]",
            "/etc/nh/newshound.toml:23: channels.me.to[0]: \"not an address\" is not an email address",
        ),
        // Regression: `interval = "1ns"` passed and polled a publisher ~335 times a second.
        (
            "interval = \"2m\"",
            "interval = \"5ms\"",
            "/etc/nh/newshound.toml:15: feeds[0].interval: 5ms is under the 30s minimum for a feed on the web; did you mean minutes, like \"5m\"?",
        ),
        (
            "poll_interval = \"5m\"",
            "poll_interval = \"1ns\"",
            "/etc/nh/newshound.toml:4: daemon.poll_interval: 1ns is under the 100ms minimum",
        ),
        (
            "poll_interval = \"5m\"",
            "poll_interval = \"0s\"",
            "/etc/nh/newshound.toml:4: daemon.poll_interval: must be more than 0s",
        ),
        (
            "password_env = \"SMTP_PW\"",
            "password_env = \"MISSING_PW\"",
            "/etc/nh/newshound.toml:9: smtp.password_env: environment variable MISSING_PW is not set",
        ),
        (
            "host = \"smtp.example.org\"",
            "host = \"smtp.example.org\"\nsecurity = \"none\"",
            "/etc/nh/newshound.toml:8: smtp.security: \"none\" would send mail and password in clear",
        ),
        (
            "[channels.me]",
            "[channels.me",
            "/etc/nh/newshound.toml:21: ",
        ),
        (
            "keywords = [\"Geneva\"]",
            "query = \"Geneva AND (Lavrov OR\"",
            "/etc/nh/newshound.toml:36: rules[1].query: \"Geneva AND (Lavrov OR\": column 22: the query ends too early",
        ),
        (
            "keywords = [\"Geneva\"]",
            "query = \"@diplomats NEAR/3 Geneva\"",
            "/etc/nh/newshound.toml:36: rules[1].query: \"@diplomats NEAR/3 Geneva\": column 1: unknown list @diplomats; [lists] defines: none",
        ),
        (
            "keywords = [\"Geneva\"]",
            "keywords = [\"Geneva\"]\nquery = \"Geneva\"",
            "/etc/nh/newshound.toml:37: rules[1].query: a rule has `keywords` or `query`, not both",
        ),
        (
            "poll_interval = \"5m\"",
            "poll_interval = \"5m\"\nhealth_channel = \"pager\"",
            "/etc/nh/newshound.toml:5: daemon.health_channel: unknown channel \"pager\"; define it as [channels.pager]",
        ),
        (
            "keywords = [\"Geneva\"]",
            "accents = \"loose\"",
            "/etc/nh/newshound.toml:36: rules[1].accents: unknown variant `loose`, expected `fold` or `strict`",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\ndigest = \"weekly\"",
            "/etc/nh/newshound.toml:24: channels.me.digest: \"weekly\" is not a digest period; use a duration like \"1h\" or a time like \"daily 08:00\"",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\ndigest = \"daily 8am\"",
            "/etc/nh/newshound.toml:24: channels.me.digest: \"8am\" is not a time of day; write it as HH:MM, like \"daily 08:00\"",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\nmax_per_minute = 0",
            "/etc/nh/newshound.toml:24: channels.me.max_per_minute: must be at least 1; leave it out for no limit",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\nmax_in_flight = 0",
            "/etc/nh/newshound.toml:24: channels.me.max_in_flight: must be from 1 to 64",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\nmax_in_flight = 65",
            "/etc/nh/newshound.toml:24: channels.me.max_in_flight: must be from 1 to 64",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\n[channels.me.templates]\nsubject = \"{{ alert.title\"",
            "/etc/nh/newshound.toml:25: channels.me.templates.subject: template error: syntax error: unexpected end of input, expected end of variable block at \"title\" (line 1)",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\n[channels.me.templates]\nhtml = \"<p>{{ alert.titel }}</p>\"",
            "/etc/nh/newshound.toml:25: channels.me.templates.html: template error: undefined value: `alert.titel` is undefined (line 1)",
        ),
        (
            "to = [\"me@example.org\"]",
            "to = [\"me@example.org\"]\n[channels.me.templates]\ntext = \"{{ alert.title|shout }}\"",
            "/etc/nh/newshound.toml:25: channels.me.templates.text: template error: unknown filter: filter shout is unknown (line 1)",
        ),
        (
            "path = \"alerts\"",
            "path = \"alerts\"\n[channels.inbox.templates]\nsubjects = \"x\"",
            "/etc/nh/newshound.toml:25: channels.inbox: unknown field `subjects`, expected one of `subject`, `text`, `html`",
        ),
    ];
    fails_with(VALID, rows, &[("SMTP_PW", "x")]);
}

#[test]
fn a_bad_environment_override_is_blamed_on_the_environment() {
    let err = load(
        VALID,
        &[
            ("SMTP_PW", "x"),
            ("NEWSHOUND__DAEMON__FIRST_POLL", "sometimes"),
        ],
    )
    .expect_err("bad override");
    let line = err.to_string();
    assert!(line.contains("sometimes"), "{line}");
    assert!(line.contains("NEWSHOUND__ environment variable"), "{line}");
}

#[test]
fn a_missing_file_says_how_to_point_at_one() {
    let err = Config::load(Path::new("/nonexistent/newshound.toml"), &HashMap::new())
        .expect_err("missing file");
    assert!(
        err.to_string()
            .starts_with("cannot read config file /nonexistent/newshound.toml:")
    );
    assert!(err.to_string().contains("--config"));
}

#[test]
fn a_ca_file_must_hold_a_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("ca.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let text = VALID.replacen(
        "from = \"newshound <alerts@example.org>\"",
        &format!(
            "from = \"newshound <alerts@example.org>\"\nca_file = \"{}\"",
            garbage.display()
        ),
        1,
    );
    let err = load(&text, &[("SMTP_PW", "x")]).expect_err("no certificate");
    assert_eq!(
        err.to_string(),
        format!(
            "/etc/nh/newshound.toml:11: smtp.ca_file: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            garbage.display()
        )
    );
}

#[test]
fn a_tls_fingerprint_is_read_as_openssl_prints_it_and_checked() {
    let with = |line: &str| {
        VALID.replacen(
            "from = \"newshound <alerts@example.org>\"",
            &format!("from = \"newshound <alerts@example.org>\"\n{line}"),
            1,
        )
    };
    let hex = "AB:".repeat(31) + "CD";
    for written in [
        format!("sha256 Fingerprint={hex}"),
        format!("SHA256:{hex}"),
        hex.replace(':', "").to_lowercase(),
    ] {
        let config = load(
            &with(&format!("tls_fingerprint = \"{written}\"")),
            &[("SMTP_PW", "x")],
        )
        .expect("a fingerprint");
        let mut expected = [0xAB; 32];
        expected[31] = 0xCD;
        assert_eq!(
            config.smtp.expect("smtp").pinned,
            Some(expected),
            "{written}"
        );
    }
    let err =
        load(&with("tls_fingerprint = \"AB:CD\""), &[("SMTP_PW", "x")]).expect_err("too short");
    assert!(
        err.to_string()
            .starts_with("/etc/nh/newshound.toml:11: smtp.tls_fingerprint: \"AB:CD\" is not a SHA-256 fingerprint"),
        "{err}"
    );
}

/// `[store]` takes a PostgreSQL URL, with its password in the URL or beside it (not
/// both); anything else is refused with what to write instead.
#[test]
fn a_store_is_a_postgres_url_with_one_password() {
    let with_store = |store: &str| format!("{VALID}\n[store]\n{store}\n");
    let config = load(
        &with_store("url = \"postgres://nh@db.internal:5432/newshound\"\npassword_env = \"PG_PW\""),
        &[("SMTP_PW", "x"), ("PG_PW", "s3cret")],
    )
    .expect("valid");
    let store = config.store.expect("a store");
    assert_eq!(store.url, "postgres://nh@db.internal:5432/newshound");
    assert_eq!(
        store.password.map(|p| p.expose().to_owned()).as_deref(),
        Some("s3cret")
    );
    assert!(
        load(VALID, &[("SMTP_PW", "x")])
            .expect("valid")
            .store
            .is_none()
    );

    for (store, expected) in [
        (
            "url = \"mysql://db/newshound\"",
            "store.url: not a PostgreSQL URL; write it as \"postgres://user@host:5432/database\"",
        ),
        (
            "url = \"postgres://nh:pw@db/newshound\"\npassword_env = \"PG_PW\"",
            "store.url: the URL holds a password and so does password_file or password_env; keep one",
        ),
        (
            "url = \"postgres://nh@db/newshound\"\npassword_env = \"PG_PW\"\npassword_file = \"pw\"",
            "store.password_env: set password_file or password_env, not both",
        ),
        (
            "url = \"postgres://nh@db/newshound\"\npassword_env = \"NOT_SET\"",
            "store.password_env: environment variable NOT_SET is not set",
        ),
    ] {
        refused_with(
            &with_store(store),
            &[("SMTP_PW", "x"), ("PG_PW", "y")],
            expected,
        );
    }
}

/// `max_age` is set once under `[daemon]` and may be set per feed; zero is refused.
mod channels;
mod feeds;
mod filters;
mod include;
mod topics;

#[test]
fn retention_has_defaults_refuses_to_forget_what_dedupe_reads_and_warns_when_short() {
    let config = load(VALID, &[("SMTP_PW", "x")]).expect("valid");
    let day = Duration::from_secs(24 * 60 * 60);
    assert_eq!(
        (
            config.daemon.forget_after,
            config.daemon.keep_sent,
            config.daemon.keep_dead
        ),
        (90 * day, 30 * day, 90 * day)
    );
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());

    let short = VALID.replace(
        "poll_interval = \"5m\"",
        "poll_interval = \"5m\"\nforget_after = \"10m\"\nkeep_sent = \"2h\"\nkeep_dead = \"30s\"\ndedupe_window = \"1h\"",
    );
    let config = load(&short, &[("SMTP_PW", "x")]).expect("short retention is valid");
    assert_eq!(config.daemon.forget_after, Duration::from_secs(600));
    assert_eq!(
        config.warnings(),
        [
            "daemon.forget_after is 10m: after so short a time an item that leaves its feed and \
             comes back is alerted again; meant for tests, not a service",
            "daemon.keep_dead is 30s: after so short a time dead letters and held alerts are \
             deleted before anyone replays them; meant for tests, not a service",
        ]
    );

    refused_with(
        &VALID.replace(
            "poll_interval = \"5m\"",
            "poll_interval = \"5m\"\nkeep_sent = \"12h\"",
        ),
        &[("SMTP_PW", "x")],
        "/etc/nh/newshound.toml:5: daemon.keep_sent: 12h is shorter than dedupe_window (1day)",
    );
    refused_with(
        &VALID.replace(
            "poll_interval = \"5m\"",
            "poll_interval = \"5m\"\nforget_after = \"0s\"",
        ),
        &[("SMTP_PW", "x")],
        "daemon.forget_after: must be more than 0s",
    );
}

#[test]
fn merge_rewrites_loads_the_builtin_model_and_takes_its_threshold_unless_one_is_set() {
    let config = load(VALID, &[("SMTP_PW", "x")]).expect("valid");
    assert_eq!(config.rewrite_threshold(), None, "off by default");
    let on = |extra: &str| {
        VALID.replace(
            "poll_interval = \"5m\"",
            &format!("poll_interval = \"5m\"\nmerge_rewrites = true\n{extra}"),
        )
    };
    let config = load(&on(""), &[("SMTP_PW", "x")]).expect("valid");
    assert_eq!(
        config.rewrite_threshold(),
        Some(crate::semantic::STATIC_REWRITE_THRESHOLD)
    );
    assert_eq!(config.semantic.expect("a model").info().name, "builtin");
    let config = load(&on("rewrite_threshold = 0.8"), &[("SMTP_PW", "x")]).expect("valid");
    assert_eq!(config.rewrite_threshold(), Some(0.8));
    refused_with(
        &on("rewrite_threshold = 1.2"),
        &[("SMTP_PW", "x")],
        "/etc/nh/newshound.toml:6: daemon.rewrite_threshold: 1.2 is not a fraction: \
         it must be more than 0 and at most 1",
    );
}

#[test]
fn merge_rewrites_with_a_model_directory_that_is_not_there_is_refused() {
    let text = VALID.replace(
        "poll_interval = \"5m\"",
        "poll_interval = \"5m\"\nmerge_rewrites = true",
    ) + "\n[semantic]\nmodel = \"/nonexistent/minilm\"\n";
    let err = load(&text, &[("SMTP_PW", "x")]).expect_err("no model there");
    assert!(
        err.to_string()
            .contains("semantic.model: /nonexistent/minilm: no such directory"),
        "{err}"
    );
}

#[test]
fn a_rewrite_threshold_without_merge_rewrites_is_warned_about() {
    let text = VALID.replace(
        "poll_interval = \"5m\"",
        "poll_interval = \"5m\"\nrewrite_threshold = 0.8",
    );
    let config = load(&text, &[("SMTP_PW", "x")]).expect("valid");
    assert_eq!(config.rewrite_threshold(), None);
    assert_eq!(
        config.warnings(),
        [
            "daemon.rewrite_threshold is set but merge_rewrites is off, so rewrites are not \
          merged; add merge_rewrites = true"
        ]
    );
}

/// Regression: an SMTP timeout of 0s and a password variable set but empty were
/// accepted; every delivery would then have failed.
#[test]
fn a_zero_smtp_timeout_and_an_empty_password_are_refused() {
    refused_with(
        &VALID.replace(
            "password_env = \"SMTP_PW\"",
            "password_env = \"SMTP_PW\"\ntimeout = \"0s\"",
        ),
        &[("SMTP_PW", "x")],
        "smtp.timeout: must be more than 0s",
    );
    refused_with(
        VALID,
        &[("SMTP_PW", "")],
        "/etc/nh/newshound.toml:9: smtp.password_env: environment variable SMTP_PW is empty",
    );
}

/// Regression: `max_per_minute` beside `digest` was accepted without a word, and
/// does nothing (the digest already makes one message per period).
#[test]
fn max_per_minute_beside_a_digest_is_warned_about() {
    let text = VALID.replace(
        "type = \"maildir\"\npath = \"alerts\"",
        "type = \"maildir\"\npath = \"alerts\"\ndigest = \"1h\"\nmax_per_minute = 5",
    );
    let config = load(&text, &[("SMTP_PW", "x")]).expect("valid");
    assert_eq!(
        config.warnings(),
        [
            "channels.inbox.max_per_minute does nothing beside digest, which already sends \
             one message per period; remove one of them"
        ]
    );
}

#[test]
fn copy_threshold_defaults_to_the_measured_value_and_must_be_a_fraction() {
    let config = load(VALID, &[("SMTP_PW", "x")]).expect("valid");
    assert_eq!(config.daemon.copy_threshold, 0.35);
    for (bad, shown) in [("0", "0"), ("1.5", "1.5"), ("-0.2", "-0.2")] {
        refused_with(
            &VALID.replace(
                "poll_interval = \"5m\"",
                &format!("poll_interval = \"5m\"\ncopy_threshold = {bad}"),
            ),
            &[("SMTP_PW", "x")],
            &format!(
                "/etc/nh/newshound.toml:5: daemon.copy_threshold: {shown} is not a fraction: \
                 it must be more than 0 and at most 1"
            ),
        );
    }
    let strict = VALID.replace(
        "poll_interval = \"5m\"",
        "poll_interval = \"5m\"\ncopy_threshold = 1.0",
    );
    let config = load(&strict, &[("SMTP_PW", "x")]).expect("1 is a fraction");
    assert_eq!(config.daemon.copy_threshold, 1.0);
}
