//! The `[channels.*]` tables: each kind's keys, pacing and templates.

use super::*;
use crate::model::{Alert, FeedId, ItemKey, Notice};
use crate::notify::Notifier;
use crate::render::MessageKind;

/// A config of channel `name`, its table holding `lines`, and a rule that sends to it.
fn with_channel(name: &str, lines: &str) -> String {
    let rule = format!("[[rules]]\nname = \"r\"\nkeywords = [\"x\"]\nchannels = [\"{name}\"]\n");
    format!("[channels.{name}]\n{lines}\n\n{rule}")
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
fn an_exec_channel_names_a_program_and_a_timeout_above_zero() {
    let config = load(
        &with_channel(
            "run",
            "type = \"exec\"\ncommand = [\"/usr/local/bin/page\", \"--urgent\"]",
        ),
        &[],
    )
    .expect("valid");
    assert_eq!(config.channels["run"].kind(), "exec");
    // Regression: a relative program ran from the directory newshound was started in
    // (`/` under systemd), unlike every other path of the config.
    let config = load(
        &with_channel(
            "run",
            "type = \"exec\"\ncommand = [\"bin/notify.sh\", \"x\"]",
        ),
        &[],
    )
    .expect("valid");
    assert_eq!(
        config.channels["run"].transport.describe(),
        "/etc/nh/bin/notify.sh x (timeout 30s)"
    );
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
        let text = with_channel("run", &format!("type = \"exec\"\n{channel}"));
        refused_with(&text, &[], expected);
    }
}

/// Regression: an exec channel whose program is not there was accepted without a
/// word; every delivery then failed.
#[test]
fn an_exec_channel_whose_program_is_missing_is_warned_about() {
    let warnings = |command: &str| {
        let text = with_channel(
            "run",
            &format!("type = \"exec\"\ncommand = [\"{command}\"]"),
        );
        load(&text, &[]).expect("valid").warnings()
    };
    assert_eq!(warnings("/bin/sh"), [] as [String; 0]);
    assert_eq!(warnings("sh"), [] as [String; 0]);
    assert_eq!(
        warnings("/nonexistent/page"),
        [
            "channels.run.command: /nonexistent/page is not a program newshound can run \
          (yet): deliveries to the channel fail until it is"
        ]
    );
    assert_eq!(
        warnings("no-such-program-anywhere"),
        [
            "channels.run.command: no-such-program-anywhere is not a program newshound can \
          run (yet): deliveries to the channel fail until it is"
        ]
    );
}

#[test]
fn a_webhooks_own_method_and_body_are_checked_at_load() {
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
        let lines = format!("type = \"webhook\"\nurl = \"https://api.example.org/v1\"\n{channel}");
        let text = with_channel("api", &lines);
        refused_with(&text, &[], expected);
    }
}

#[test]
fn an_atom_channel_keeps_between_one_and_ten_thousand_entries() {
    let config = load(
        &with_channel("reader", "type = \"atom\"\npath = \"m.atom\""),
        &[],
    )
    .expect("valid");
    let reader = &config.channels["reader"];
    assert_eq!((reader.kind(), reader.max_in_flight), ("atom", 1));
    let err = load(
        &with_channel("reader", "type = \"atom\"\npath = \"m.atom\"\nentries = 0"),
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
    let high = |lines: &str| with_channel("push", lines) + "priority = \"high\"\n";
    let config = load(
        &high("type = \"telegram\"\ntoken_env = \"TG\"\nchat_id = \"@newsroom\""),
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
        refused_with(&high(channel), &[("TG", "1:abc")], expected);
    }
    let urgent = with_channel(
        "push",
        "type = \"apprise\"\nurl = \"http://apprise.test/notify\"",
    ) + "priority = \"urgent\"\n";
    let err = load(&urgent, &[]).expect_err("not a priority").to_string();
    assert!(err.contains("priority"), "{err}");
}

fn alert(title: &str) -> Alert {
    Alert::from(Notice {
        feed: FeedId("wire".into()),
        key: ItemKey(title.into()),
        title: title.into(),
        link: None,
        rules: vec!["talks".into()],
        text: String::new(),
        at: chrono::Utc::now(),
    })
}

/// The kind that exists in tests only (`notify/kinds/lines.rs`): one file and a
/// line in the table, and the config checks it, paces it, describes it and sends
/// through it.
#[tokio::test]
async fn a_kind_in_one_file_is_checked_paced_described_and_sends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("newshound.toml");
    let text = "[channels.log]\ntype = \"lines\"\npath = \"alerts.txt\"\nmax_per_minute = 5\n";
    let config = Config::from_toml(&file, text, &HashMap::new()).expect("a valid config");
    let channel = &config.channels["log"];
    let written = dir.path().join("alerts.txt");
    assert_eq!(channel.kind(), "lines");
    assert_eq!(channel.max_per_minute, Some(5));
    assert_eq!(
        channel.transport.describe(),
        format!("lines into {}", written.display())
    );

    let typo = Config::from_toml(&file, &text.replace("path", "paht"), &HashMap::new())
        .expect_err("an unknown key");
    assert!(
        typo.to_string()
            .contains("channels.log: unknown field `paht`, expected `path`"),
        "{typo}"
    );

    let notifier = Notifier::new(None).expect("a notifier");
    let alerts = [alert("Talks in Geneva"), alert("Talks end")];
    let receipt = notifier
        .deliver(
            "log",
            &channel.transport,
            &channel.templates,
            &alerts,
            &MessageKind::Alert,
        )
        .await
        .expect("delivered");
    assert_eq!(receipt, "2 lines");
    assert_eq!(
        std::fs::read_to_string(&written).expect("written"),
        "log: Talks in Geneva\nlog: Talks end\n"
    );
}

#[test]
fn a_mistyped_key_lists_the_kinds_own_keys_and_the_shared_ones_it_takes() {
    let gotify = "type = \"gotify\"\nurl = \"https://gotify.test\"\ntoken_env = \"T\"\n";
    let err = load(
        &with_channel("push", &format!("{gotify}max_per_mnute = 3")),
        &[("T", "token")],
    )
    .expect_err("a typo")
    .to_string();
    assert!(
        err.contains(
            "unknown field `max_per_mnute`, expected one of `url`, `token_env`, `token_file`; \
             or one every such channel takes: `digest`, `max_per_minute`, `max_in_flight`, \
             `quiet_hours`"
        ),
        "{err}"
    );
    let atom = with_channel(
        "feed",
        "type = \"atom\"\npath = \"a.xml\"\ndigest = \"daily\"",
    );
    let err = load(&atom, &[])
        .expect_err("an atom feed has no digest")
        .to_string();
    assert!(
        err.contains("unknown field `digest`, expected `path` or `entries`; or one every such channel takes: `quiet_hours`"),
        "{err}"
    );
    let maildir = with_channel(
        "inbox",
        "type = \"maildir\"\npath = \"alerts\"\nsubject = \"x\"",
    );
    let err = load(&maildir, &[])
        .expect_err("templates go in their own table")
        .to_string();
    assert!(
        err.contains("`quiet_hours`, `feedback`, `templates`"),
        "{err}"
    );
}

#[test]
fn feedback_links_need_listen_and_a_public_url() {
    let channel = "[channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\nfeedback = true\n";
    refused_with(
        channel,
        &[],
        "/etc/nh/newshound.toml:4: channels.inbox.feedback: feedback links need daemon.listen",
    );
    let listening = "[daemon]\nlisten = \"127.0.0.1:9185\"\n";
    refused_with(
        &format!("{listening}{channel}"),
        &[],
        "and daemon.public_url (the address people reach it at); set both",
    );
    let full = format!("{listening}public_url = \"https://alerts.example.org/nh\"\n{channel}");
    let config = load(&full, &[]).expect("valid");
    assert!(config.channels["inbox"].feedback);
    assert_eq!(
        config.daemon.public_url.as_ref().map(url::Url::as_str),
        Some("https://alerts.example.org/nh")
    );
    refused_with(
        &full.replace("https://alerts.example.org/nh", "alerts.example.org"),
        &[],
        "daemon.public_url: \"alerts.example.org\" is not an http(s) URL",
    );
}
