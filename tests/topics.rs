//! Topic rules end to end: the builtin model through the real binary and the library's
//! pipeline (feeds on a loopback HTTP server or on disk, alerts in a Maildir or at a
//! webhook receiver, state in SQLite), and the BERT path on the real all-MiniLM-L6-v2
//! files when `NEWSHOUND_TEST_MINILM` names them.

mod support;

use std::collections::HashSet;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::Utc;
use newshound::daemon::Pipeline;
use support::{TestConfig, maildir_messages, serve_feed};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ON_TOPIC: (&str, &str) = (
    "Kremlin and Washington open a new round of talks on European security",
    "Deputy foreign ministers met in Geneva to discuss Moscow's demands for limits on troop \
     deployments and a written pledge against eastward expansion of the Western alliance.",
);
const OFF_TOPIC: (&str, &str) = (
    "Wildfire forces thousands to flee homes in southern Spain",
    "Firefighters battled flames through the night as strong winds pushed the blaze toward \
     hillside villages.",
);
const VETOED: (&str, &str) = (
    "Russia and the United States swap prisoners at Abu Dhabi airport",
    "A basketball player and an arms dealer were exchanged on the tarmac after months of \
     quiet contacts between Moscow and Washington.",
);

const TOPIC_RULE: &str = r#"
[[rules]]
name = "security-talks"
about = "Russia and the United States negotiate over security guarantees in Europe"
like = ["Moscow presses Washington for a written pledge on Ukraine", "Kremlin envoy and US diplomats meet in Geneva over troop deployments"]
unlike = ["Russia and the US agree a prisoner swap"]
channels = ["inbox"]
"#;

fn rss(items: &[(&str, &str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title, summary)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><description>{summary}</description></item>"
            )
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>")
}

fn three_items() -> String {
    rss(&[
        ("1", ON_TOPIC.0, ON_TOPIC.1),
        ("2", OFF_TOPIC.0, OFF_TOPIC.1),
        ("3", VETOED.0, VETOED.1),
    ])
}

/// A config reading `news.xml` beside it, alerting into the Maildir `alerts`.
fn file_config(daemon_extra: &str, rules: &str) -> TestConfig {
    let config = TestConfig::write(
        &format!("first_poll = \"alert\"\n{daemon_extra}"),
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n{rules}"
        ),
    );
    std::fs::write(config.dir.path().join("news.xml"), three_items()).expect("feed file");
    config
}

fn newshound(args: &[&str], config: &TestConfig) -> Output {
    Command::new(env!("CARGO_BIN_EXE_newshound"))
        .args(args)
        .arg("--config")
        .arg(&config.path)
        .output()
        .expect("newshound runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_rule_alerts_the_story_told_without_keywords_with_its_score_in_the_footer() {
    let http = MockServer::start().await;
    serve_feed(
        &http,
        "/news",
        three_items().into_bytes(),
        "\"v1\"",
        "application/rss+xml",
    )
    .await;
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"{}/news\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n{TOPIC_RULE}",
            http.uri()
        ),
    );
    // The binary polls the server on loopback, which this test's runtime serves.
    let config = tokio::task::spawn_blocking(move || {
        let out = newshound(&["once"], &config);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        config
    })
    .await
    .expect("once ran");
    let messages = maildir_messages(&config.dir.path().join("alerts"));
    assert_eq!(
        messages.len(),
        1,
        "only the story on the topic: {messages:#?}"
    );
    // Quoted-printable: soft line breaks joined.
    let message = messages[0].replace("=\r\n", "");
    assert!(
        message.contains("security-talks: Kremlin and Washington"),
        "{message}"
    );
    assert!(
        message.contains("rule security-talks matched by meaning (score 0."),
        "{message}"
    );
    assert!(message.contains("closest to: \""), "{message}");
}

#[test]
fn test_rules_explain_shows_scores_threshold_closest_text_and_the_veto() {
    let config = file_config("", TOPIC_RULE);
    let out = newshound(&["test-rules", "--explain"], &config);
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed}");
    let on_topic = printed
        .split("news: ")
        .find(|block| block.starts_with(ON_TOPIC.0))
        .expect("the story on the topic is shown");
    assert!(
        on_topic.contains("rule security-talks: matched by meaning, score 0."),
        "{on_topic}"
    );
    assert!(on_topic.contains("(min_score 0.52)"), "{on_topic}");
    assert!(on_topic.contains("closest: \""), "{on_topic}");
    let vetoed = printed
        .split("news: ")
        .find(|block| block.starts_with(VETOED.0))
        .expect("the vetoed story is shown");
    assert!(
        vetoed.contains("rule security-talks: vetoed, score"),
        "{vetoed}"
    );
    assert!(
        vetoed.contains("nearer unlike: \"Russia and the US agree a prisoner swap\""),
        "{vetoed}"
    );
    assert!(
        !printed.contains(OFF_TOPIC.0),
        "far from the topic: {printed}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("3 items, 1 matched"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = newshound(&["test-rules", "--json"], &config);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["rules"], serde_json::json!(["security-talks"]));
    let score = lines[0]["score"].as_f64().expect("a score");
    assert!((0.52..=1.0).contains(&score), "{score}");
}

#[tokio::test]
async fn a_not_this_vote_teaches_test_rules_and_a_state_it_cannot_read_is_left_out() {
    let config = file_config("", TOPIC_RULE);
    let state = config.state_dir();
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join(newshound::store::DB_FILE), "not a database").expect("junk");
    let out = newshound(&["test-rules"], &config);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the examples learned from feedback are left out"),
        "{stderr}"
    );
    assert!(stdout(&out).contains(ON_TOPIC.0), "{stderr}");
    std::fs::remove_file(state.join(newshound::store::DB_FILE)).expect("junk removed");

    // The alert of a real poll, and what a "not this" vote on it teaches: the story's
    // title alone is not as near the story as the rule's closest `like`.
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    let feed = p.config().feeds[0].clone();
    assert_eq!(p.poll(&feed).await.expect("polled").alerts, 1);
    let recent = p.store().recent_alerts(10).await.expect("alerts");
    let alert = &recent.first().expect("the story on the topic").alert;
    assert_eq!(alert.title, ON_TOPIC.0);
    p.store()
        .learn(newshound::store::Learned {
            rule: "security-talks".into(),
            feed: alert.feed.clone(),
            key: alert.key.clone(),
            alert: recent[0].id,
            vote: newshound::model::Vote::Not,
            text: alert.example(),
            at: Utc::now(),
        })
        .await
        .expect("learned");
    drop(p);

    let out = newshound(&["test-rules", "--explain"], &config);
    let printed = stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("3 items, 0 matched"), "{stderr}\n{printed}");
    let on_topic = printed
        .split("news: ")
        .find(|block| block.starts_with(ON_TOPIC.0))
        .expect("the story is shown as vetoed");
    assert!(
        on_topic.contains("rule security-talks: vetoed")
            && on_topic.contains(&format!("nearer unlike: \"{} — ", ON_TOPIC.0)),
        "{on_topic}"
    );
}

#[test]
fn check_prints_the_model_and_each_rules_topic() {
    let config = file_config("", TOPIC_RULE);
    let out = newshound(&["check"], &config);
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("semantic model: builtin (static table distilled from all-MiniLM-L6-v2 (builtin)): 256 dimensions, 30522 tokens in its vocabulary"),
        "{printed}"
    );
    assert!(printed.contains("default min_score 0.52"), "{printed}");
    assert!(
        printed.contains("security-talks → inbox, about \"Russia and the United States"),
        "{printed}"
    );
}

#[test]
fn a_missing_model_directory_is_a_config_error_naming_it() {
    let config = file_config(
        "",
        &format!("\n[semantic]\nmodel = \"models/nowhere\"\n{TOPIC_RULE}"),
    );
    let out = newshound(&["check"], &config);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("semantic.model: ") && err.contains("models/nowhere: no such directory"),
        "{err}"
    );
}

#[tokio::test]
async fn about_with_a_query_needs_the_words_and_the_webhook_body_carries_the_score() {
    support::init();
    let http = MockServer::start().await;
    let geneva = ("1", ON_TOPIC.0, ON_TOPIC.1);
    let elsewhere = (
        "4",
        "Moscow and Washington trade proposals on limiting missiles in Europe",
        "Negotiators exchanged written proposals on troop ceilings and missile deployments, \
         officials in both capitals said, with no date set for the next round.",
    );
    serve_feed(
        &http,
        "/news",
        rss(&[geneva, elsewhere]).into_bytes(),
        "\"v1\"",
        "application/rss+xml",
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&http)
        .await;
    let rule = TOPIC_RULE.replace(
        "channels = [\"inbox\"]",
        "query = \"Geneva\"\nchannels = [\"hook\"]",
    );
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"{}/news\"\n\n\
             [channels.hook]\ntype = \"webhook\"\nurl = \"{}/hook\"\n{rule}",
            http.uri(),
            http.uri()
        ),
    );
    let p = Arc::new(Pipeline::new(config.load()).await.expect("pipeline"));
    let feed = p.config().feeds[0].clone();
    let outcome = p.poll(&feed).await.expect("poll");
    assert_eq!((outcome.new_items, outcome.alerts), (2, 1));
    p.dispatch_due(Utc::now()).await.expect("dispatch");
    let posts: Vec<serde_json::Value> = http
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path() == "/hook")
        .map(|r| serde_json::from_slice(&r.body).expect("JSON body"))
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["title"], ON_TOPIC.0);
    assert_eq!(posts[0]["terms"], serde_json::json!(["Geneva"]));
    let score = posts[0]["score"].as_f64().expect("score");
    assert!((0.52..=1.0).contains(&score), "{score}");
}

#[tokio::test]
async fn a_topic_rule_added_later_is_tried_on_the_items_of_the_last_day() {
    support::init();
    let config = file_config(
        "backfill_new_rules = true",
        "\n[[rules]]\nname = \"fires\"\nkeywords = [\"Wildfire\"]\nchannels = [\"inbox\"]\n",
    );
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    let feed = p.config().feeds[0].clone();
    assert_eq!(p.poll(&feed).await.expect("poll").alerts, 1);

    let text = std::fs::read_to_string(&config.path).expect("config") + TOPIC_RULE;
    std::fs::write(&config.path, text).expect("write config");
    let reloaded = Pipeline::with_store(config.load(), Arc::clone(p.store())).expect("pipeline");
    let queued = reloaded
        .backfill(&HashSet::from(["security-talks"]))
        .await
        .expect("backfill");
    assert_eq!(queued, 1, "only the story on the topic");
    reloaded.dispatch_due(Utc::now()).await.expect("dispatch");
    let subjects: Vec<String> = maildir_messages(&config.dir.path().join("alerts"))
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Subject:"))
                .map(str::to_owned)
        })
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("security-talks: Kremlin")),
        "{subjects:?}"
    );
}

#[test]
fn a_first_poll_under_mark_seen_alerts_nothing_and_later_items_are_matched() {
    let config = TestConfig::write(
        "",
        &format!(
            "[[feeds]]\nname = \"news\"\nurl = \"file:news.xml\"\n\n\
             [channels.inbox]\ntype = \"maildir\"\npath = \"alerts\"\n{TOPIC_RULE}"
        ),
    );
    let news = config.dir.path().join("news.xml");
    std::fs::write(&news, rss(&[("2", OFF_TOPIC.0, OFF_TOPIC.1)])).expect("feed file");
    assert!(newshound(&["once"], &config).status.success());
    std::fs::write(&news, three_items()).expect("feed file");
    assert!(newshound(&["once"], &config).status.success());
    let messages = maildir_messages(&config.dir.path().join("alerts"));
    assert_eq!(messages.len(), 1, "{messages:#?}");
}

#[test]
fn minilm_directory_matches_the_story_told_without_keywords() {
    let Some(dir) = newshound::semantic::testing::minilm_dir() else {
        return;
    };
    let config = file_config(
        "",
        &format!(
            "\n[semantic]\nmodel = {:?}\n{TOPIC_RULE}",
            dir.display().to_string()
        ),
    );
    let out = newshound(&["check"], &config);
    let printed = stdout(&out);
    assert!(
        printed.contains("(BERT sentence encoder): 384 dimensions, 30522 tokens in its vocabulary, reads the first 128 tokens"),
        "{printed}"
    );
    assert!(printed.contains("default min_score 0.37"), "{printed}");
    let out = newshound(&["test-rules", "--json"], &config);
    let titles: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            line["title"].as_str().expect("title").to_owned()
        })
        .collect();
    assert_eq!(titles, [ON_TOPIC.0]);
}
