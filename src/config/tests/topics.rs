//! Topic rules: the model they load, and their keys.

use super::*;

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
