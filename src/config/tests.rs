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
            "/etc/nh/newshound.toml:18: feeds[1].name: duplicate feed name \"moscow-times\" (also feeds[0]); names must be unique",
        ),
        (
            "name = \"geneva\"",
            "name = \"talks\"",
            "/etc/nh/newshound.toml:35: rules[1].name: duplicate rule name \"talks\"; names must be unique",
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
fn a_webhook_secret_must_be_a_whsec_key_from_the_environment() {
    let text = "[channels.team]\ntype = \"webhook\"\nurl = \"https://hooks.example.org/x\"\nsecret_env = \"HOOK_KEY\"\n";
    let config = load(
        text,
        &[("HOOK_KEY", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
    )
    .expect("valid");
    let Transport::Webhook(kinds::Webhook { secret, .. }) = &config.channels["team"].transport
    else {
        panic!("a webhook channel");
    };
    assert!(secret.as_ref().and_then(Secret::webhook_key).is_some());
    assert!(!format!("{config:?}").contains("MfKQ9r8"), "never printed");
    let err = load(text, &[("HOOK_KEY", "hunter2")]).expect_err("not a key");
    assert_eq!(
        err.to_string(),
        "/etc/nh/newshound.toml:4: channels.team.secret_env: HOOK_KEY is not a signing key: expected whsec_ and base64"
    );
    let err = load(text, &[]).expect_err("unset");
    assert!(
        err.to_string()
            .ends_with("environment variable HOOK_KEY is not set"),
        "{err}"
    );
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
fn channels_take_a_digest_a_rate_limit_and_templates() {
    let text = VALID.replacen(
        "to = [\"me@example.org\"]",
        "to = [\"me@example.org\"]\ndigest = \"daily 08:00\"\n\
         [channels.me.templates]\nsubject = \"{{ count }} for {{ channel }}\"",
        1,
    );
    let text = text.replacen(
        "path = \"alerts\"",
        "path = \"alerts\"\ndigest = \"30m\"\nmax_per_minute = 5",
        1,
    );
    let config = load(&text, &[("SMTP_PW", "x")]).expect("valid");
    let me = &config.channels["me"];
    let time = chrono::NaiveTime::from_hms_opt(8, 0, 0).expect("time");
    assert_eq!(me.digest, Some(Digest::Daily(time)));
    assert!(me.templates.is_custom());
    let inbox = &config.channels["inbox"];
    assert_eq!(inbox.digest, Some(Digest::Every(Duration::from_secs(1800))));
    assert_eq!(inbox.max_per_minute, Some(5));
    assert!(!inbox.templates.is_custom());
}

#[test]
fn a_digest_period_ends_on_the_local_clock() {
    use chrono::{FixedOffset, TimeZone, Utc};
    let zone = FixedOffset::east_opt(2 * 3600).expect("UTC+2");
    let local = |h: u32, m: u32| {
        zone.with_ymd_and_hms(2026, 3, 10, h, m, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    };
    let hourly = Digest::Every(Duration::from_secs(3600));
    assert_eq!(hourly.period_end_in(local(9, 15), &zone), local(10, 0));
    assert_eq!(hourly.period_end_in(local(10, 0), &zone), local(11, 0));
    let half = Digest::Every(Duration::from_secs(1800));
    assert_eq!(half.period_end_in(local(9, 15), &zone), local(9, 30));

    let daily = Digest::Daily(chrono::NaiveTime::from_hms_opt(8, 0, 0).expect("time"));
    assert_eq!(daily.period_end_in(local(7, 59), &zone), local(8, 0));
    let next_morning = zone
        .with_ymd_and_hms(2026, 3, 11, 8, 0, 0)
        .single()
        .expect("time")
        .with_timezone(&Utc);
    assert_eq!(daily.period_end_in(local(8, 0), &zone), next_morning);
    assert_eq!(daily.period_end_in(local(23, 30), &zone), next_morning);
    assert_eq!(daily.to_string(), "daily at 08:00");
    assert_eq!(hourly.to_string(), "every 1h");
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
fn a_web_feed_inheriting_a_too_short_poll_interval_names_both() {
    let text = "[daemon]\npoll_interval = \"10s\"\n\n[[feeds]]\nname = \"local\"\nurl = \"file:a.xml\"\n\n\
                [[feeds]]\nname = \"wire\"\nurl = \"https://wire.example.org/rss\"\n";
    let err = load(text, &[]).expect_err("too often for the web");
    assert_eq!(
        err.to_string(),
        "/etc/nh/newshound.toml:2: daemon.poll_interval: 10s is under the 30s minimum for a feed \
         on the web (feeds[1], wire, has no interval of its own); did you mean minutes, like \"5m\"?"
    );
    let typo = "[[feeds]]\nname = \"local\"\nurl = \"file:a.xml\"\ninterval = \"1ns\"\n";
    assert_eq!(
        load(typo, &[])
            .expect_err("too often even for a file")
            .to_string(),
        "/etc/nh/newshound.toml:4: feeds[0].interval: 1ns is under the 100ms minimum"
    );
    let files_only =
        "[daemon]\npoll_interval = \"10s\"\n\n[[feeds]]\nname = \"local\"\nurl = \"file:a.xml\"\n";
    assert!(
        load(files_only, &[]).is_ok(),
        "a local file may be read often"
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
        let err = load(&with_store(store), &[("SMTP_PW", "x"), ("PG_PW", "y")])
            .expect_err(expected)
            .to_string();
        assert!(
            err.contains(expected),
            "expected {expected:?}\n     got {err:?}"
        );
    }
}

/// `max_age` is set once under `[daemon]` and may be set per feed; zero is refused.
#[test]
fn max_age_is_inherited_by_feeds_and_must_be_more_than_zero() {
    let text = "[daemon]\nmax_age = \"7d\"\n\n[[feeds]]\nname = \"a\"\nurl = \"file:a.xml\"\n\n\
                [[feeds]]\nname = \"b\"\nurl = \"file:b.xml\"\nmax_age = \"1h\"\n";
    let config = load(text, &[]).expect("valid");
    let ages: Vec<Option<u64>> = config
        .feeds
        .iter()
        .map(|f| f.max_age.map(|a| a.as_secs()))
        .collect();
    assert_eq!(ages, [Some(7 * 24 * 3600), Some(3600)]);
    let none = load("[[feeds]]\nname = \"a\"\nurl = \"file:a.xml\"\n", &[]).expect("valid");
    assert_eq!(none.feeds[0].max_age, None, "no limit by default");
    let err = load(&text.replace("\"1h\"", "\"0s\""), &[]).expect_err("zero");
    assert!(
        err.to_string()
            .contains("feeds[1].max_age: must be more than 0s"),
        "{err}"
    );
}

/// How a feed is asked for: the daemon's user agent, headers and proxy as defaults, a
/// feed's own over them (headers added, its own winning), basic auth per feed with the
/// password from the environment or a file, header values from either too.
#[test]
fn feeds_take_http_options_from_the_daemon_and_their_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("token"), "t-file\n").expect("token");
    let text = "[daemon]\nuser_agent = \"watcher/2\"\nproxy = \"http://proxy.internal:3128\"\n\
                headers = { Accept = \"application/rss+xml\", X-Team = \"news\" }\n\n\
                [[feeds]]\nname = \"open\"\nurl = \"https://a.example.org/rss\"\n\n\
                [[feeds]]\nname = \"private\"\nurl = \"https://b.example.org/rss\"\n\
                username = \"reader\"\npassword_env = \"FEED_PW\"\nproxy = \"socks5://127.0.0.1:1080\"\n\
                headers = { X-Team = \"desk\", X-Api-Key = { env = \"API_KEY\" }, X-Token = { file = \"token\" } }\n";
    let config = Config::from_toml(
        &dir.path().join("n.toml"),
        text,
        &env(&[("FEED_PW", "s3cret"), ("API_KEY", "k-1")]),
    )
    .expect("valid");
    let (open, private) = (&config.feeds[0].request, &config.feeds[1].request);
    assert_eq!(open.user_agent.as_deref(), Some("watcher/2"));
    assert_eq!(open.proxy.as_deref(), Some("http://proxy.internal:3128"));
    assert_eq!(open.basic_auth, None);
    assert_eq!(
        private.basic_auth,
        Some(("reader".to_owned(), "s3cret".to_owned()))
    );
    assert_eq!(private.proxy.as_deref(), Some("socks5://127.0.0.1:1080"));
    let headers: Vec<(&str, &str)> = private
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("Accept", "application/rss+xml"),
            ("X-Api-Key", "k-1"),
            ("X-Team", "desk"),
            ("X-Token", "t-file"),
        ]
    );
    let shown = format!("{private:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("k-1"),
        "{shown}"
    );
}

#[test]
fn bad_http_options_are_refused_with_what_to_write() {
    for (feed, expected) in [
        (
            "url = \"https://reader:pw@b.example.org/rss\"",
            "feeds[0].url: credentials in the URL are not used; write username = \"…\" and password_file or password_env in the feed instead",
        ),
        (
            "url = \"https://b.example.org/rss\"\nusername = \"reader\"",
            "feeds[0].username: a username needs password_file or password_env",
        ),
        (
            "url = \"https://b.example.org/rss\"\nproxy = \"ftp://proxy\"",
            "feeds[0].proxy: \"ftp://proxy\" is not a proxy URL",
        ),
        (
            "url = \"https://b.example.org/rss\"\nheaders = { \"Bad Name\" = \"x\" }",
            "feeds[0].headers.Bad Name: \"Bad Name\" is not a header name",
        ),
        (
            "url = \"https://b.example.org/rss\"\nheaders = { X-Key = { env = \"UNSET_VAR\" } }",
            "feeds[0].headers.X-Key.env: environment variable UNSET_VAR is not set",
        ),
    ] {
        let text = format!("[[feeds]]\nname = \"f\"\n{feed}\n");
        let err = load(&text, &[]).expect_err(expected).to_string();
        assert!(
            err.contains(expected),
            "expected {expected:?}\n     got {err:?}"
        );
    }
}

#[test]
fn an_exec_channel_names_a_program_and_a_timeout_above_zero() {
    let rule = "[[rules]]\nname = \"r\"\nkeywords = [\"x\"]\nchannels = [\"run\"]\n";
    let config = load(
        &format!("[channels.run]\ntype = \"exec\"\ncommand = [\"/usr/local/bin/page\", \"--urgent\"]\n\n{rule}"),
        &[],
    )
    .expect("valid");
    assert_eq!(config.channels["run"].kind(), "exec");
    for (channel, expected) in [
        (
            "command = []",
            "channels.run.command: name the program to run",
        ),
        (
            "command = [\"/bin/true\"]\ntimeout = \"0s\"",
            "channels.run.timeout: must be more than 0s",
        ),
    ] {
        let text = format!("[channels.run]\ntype = \"exec\"\n{channel}\n\n{rule}");
        let err = load(&text, &[]).expect_err(expected).to_string();
        assert!(
            err.contains(expected),
            "expected {expected:?}\n     got {err:?}"
        );
    }
}

#[test]
fn a_webhooks_own_method_and_body_are_checked_at_load() {
    let rule = "[[rules]]\nname = \"r\"\nkeywords = [\"x\"]\nchannels = [\"api\"]\n";
    for (channel, expected) in [
        (
            "method = \"GET\"",
            "channels.api.method: \"GET\" does not carry a body",
        ),
        (
            "format = \"slack\"\nbody = '{}'",
            "channels.api.body: a body of your own replaces the format's",
        ),
        (
            "body = '{{ alerts[0].titel | tojson }}'",
            "channels.api.body: template error: undefined value",
        ),
    ] {
        let text = format!(
            "[channels.api]\ntype = \"webhook\"\nurl = \"https://api.example.org/v1\"\n{channel}\n\n{rule}"
        );
        let err = load(&text, &[]).expect_err(expected).to_string();
        assert!(
            err.contains(expected),
            "expected {expected:?}\n     got {err:?}"
        );
    }
}

#[test]
fn an_atom_channel_keeps_between_one_and_ten_thousand_entries() {
    let rule = "[[rules]]\nname = \"r\"\nkeywords = [\"x\"]\nchannels = [\"reader\"]\n";
    let config = load(
        &format!("[channels.reader]\ntype = \"atom\"\npath = \"m.atom\"\n\n{rule}"),
        &[],
    )
    .expect("valid");
    let reader = &config.channels["reader"];
    assert_eq!((reader.kind(), reader.max_in_flight), ("atom", 1));
    let err = load(
        &format!("[channels.reader]\ntype = \"atom\"\npath = \"m.atom\"\nentries = 0\n\n{rule}"),
        &[],
    )
    .expect_err("zero entries")
    .to_string();
    assert!(
        err.contains("channels.reader.entries: must be from 1 to 10000"),
        "{err}"
    );
}

/// A service channel reads its token from the environment or a file and checks its
/// addresses; a rule's priority is one of three words.
#[test]
fn service_channels_take_tokens_from_outside_and_rules_a_priority() {
    let rule =
        "[[rules]]\nname = \"r\"\nkeywords = [\"x\"]\nchannels = [\"push\"]\npriority = \"high\"\n";
    let config = load(
        &format!("[channels.push]\ntype = \"telegram\"\ntoken_env = \"TG\"\nchat_id = \"@newsroom\"\n\n{rule}"),
        &[("TG", "1:abc")],
    )
    .expect("valid");
    assert_eq!(config.channels["push"].kind(), "telegram");
    assert_eq!(config.priority_of("r"), crate::model::Priority::High);
    assert!(
        !format!("{config:?}").contains("1:abc"),
        "the token is not shown"
    );
    for (channel, expected) in [
        (
            "type = \"telegram\"\nchat_id = 1",
            "channels.push.token_env: set token_env or token_file",
        ),
        (
            "type = \"telegram\"\ntoken_env = \"TG\"\nchat_id = \"\"",
            "channels.push.chat_id: give the chat's number or the channel's @name",
        ),
        (
            "type = \"matrix\"\nhomeserver = \"https://m.example.org\"\nroom_id = \"#news:example.org\"\naccess_token_env = \"TG\"",
            "channels.push.room_id: \"#news:example.org\" is not a room id",
        ),
        (
            "type = \"gotify\"\nurl = \"gotify.example.org\"\ntoken_env = \"TG\"",
            "channels.push.url: \"gotify.example.org\" is not an http(s) URL",
        ),
        (
            "type = \"pushover\"\nuser = \"u\"\ntoken_env = \"TG\"\nchat_id = 1",
            "unknown field `chat_id`",
        ),
    ] {
        let text = format!("[channels.push]\n{channel}\n\n{rule}");
        let err = load(&text, &[("TG", "1:abc")])
            .expect_err(expected)
            .to_string();
        assert!(
            err.contains(expected),
            "expected {expected:?}\n     got {err:?}"
        );
    }
    let urgent = format!(
        "[channels.push]\ntype = \"apprise\"\nurl = \"http://apprise.test/notify\"\n\n{rule}"
    )
    .replace("\"high\"", "\"urgent\"");
    let err = load(&urgent, &[]).expect_err("not a priority").to_string();
    assert!(err.contains("priority"), "{err}");
}

const TOPIC: &str = r#"
[channels.inbox]
type = "maildir"
path = "alerts"

[[rules]]
name = "talks"
about = "Russia and the United States negotiate over security guarantees in Europe"
like = ["Moscow presses Washington for a written pledge"]
unlike = ["Russia and the US agree a prisoner swap"]
min_score = 0.45
channels = ["inbox"]
"#;

#[test]
fn a_topic_rule_loads_the_builtin_model_and_keeps_it_across_loads() {
    let config = load(TOPIC, &[]).expect("valid");
    let model = config.semantic.clone().expect("a model for the topic rule");
    assert_eq!(model.info().name, "builtin");
    let spec = &config.rule_specs[0];
    assert_eq!(spec.condition, crate::rules::Condition::Always);
    let topic = spec.topic.as_ref().expect("a topic");
    assert_eq!(topic.min_score, Some(0.45));
    assert_eq!(topic.unlike, ["Russia and the US agree a prisoner swap"]);
    let again = load(TOPIC, &[]).expect("valid");
    assert!(std::sync::Arc::ptr_eq(
        &model,
        again.semantic.as_ref().expect("a model")
    ));
}

#[test]
fn without_topic_rules_no_model_is_loaded() {
    let config = load(VALID, &[("SMTP_PW", "x")]).expect("valid");
    assert!(config.semantic.is_none());
    assert!(!config.rules.has_topics());
}

#[test]
fn about_with_a_query_needs_both() {
    let text = TOPIC.replace("min_score = 0.45", "min_score = 0.45\nquery = \"Geneva\"");
    let config = load(&text, &[]).expect("valid");
    assert_eq!(
        config.rule_specs[0].condition,
        crate::rules::Condition::Query("Geneva".into())
    );
}

/// One row per broken topic rule: what to replace in `TOPIC`, and the error line.
#[test]
fn invalid_topic_rules_name_the_line_and_key() {
    let rows: &[(&str, &str, &str)] = &[
        (
            "about = \"Russia and the United States negotiate over security guarantees in Europe\"",
            "about = \"  \"",
            "/etc/nh/newshound.toml:8: rules[0].about: `about` is empty; say in a sentence what the rule is about",
        ),
        (
            "min_score = 0.45",
            "min_score = 1.5",
            "/etc/nh/newshound.toml:11: rules[0].min_score: 1.5 is outside 0 to 1; a similarity threshold such as 0.45",
        ),
        (
            "min_score = 0.45",
            "min_score = -0.1",
            "/etc/nh/newshound.toml:11: rules[0].min_score: -0.1 is outside 0 to 1",
        ),
        (
            "about = \"Russia and the United States negotiate over security guarantees in Europe\"",
            "keywords = [\"Lavrov\"]",
            "/etc/nh/newshound.toml:9: rules[0].like: `like` belongs to a topic rule; add `about = \"...\"` saying what the rule is about",
        ),
        (
            "like = [\"Moscow presses Washington for a written pledge\"]",
            "like = [\"Moscow presses Washington\", \"\"]",
            "/etc/nh/newshound.toml:9: rules[0].like[1]: an empty example; write a headline or a sentence",
        ),
        (
            "[[rules]]",
            "[semantic]\nmodel = \"/nonexistent/all-MiniLM-L6-v2\"\n\n[[rules]]",
            "/etc/nh/newshound.toml:7: semantic.model: /nonexistent/all-MiniLM-L6-v2: no such directory; point it at a model directory, or write \"builtin\"",
        ),
        (
            "[[rules]]",
            "[semantic]\nmodel = \"\"\n\n[[rules]]",
            "/etc/nh/newshound.toml:7: semantic.model: empty; write \"builtin\" or the path of a model directory",
        ),
    ];
    fails_with(TOPIC, rows, &[]);
}

#[test]
fn a_model_directory_without_a_model_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = TOPIC.replace(
        "[[rules]]",
        &format!("[semantic]\nmodel = {:?}\n\n[[rules]]", dir.path()),
    );
    let line = load(&text, &[]).expect_err("no model there").to_string();
    assert!(
        line.contains(&format!(
            "{}: no model here that newshound can read",
            dir.path().display()
        )),
        "{line}"
    );
}
