//! Topic clauses, scored with a toy embedder whose dimensions are words: the rules'
//! arithmetic, not a model's quality (the semantic module and the labelled set test
//! that).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Each dimension counts one word; the vector is normalised.
struct Words {
    dims: [&'static str; 4],
    calls: AtomicUsize,
    texts: Mutex<Vec<String>>,
}

impl Words {
    fn new() -> Arc<Words> {
        Arc::new(Words {
            dims: ["talks", "swap", "fire", "geneva"],
            calls: AtomicUsize::new(0),
            texts: Mutex::new(Vec::new()),
        })
    }
}

impl Embedder for Words {
    fn embed(&self, text: &str) -> Vec<f32> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.texts.lock().expect("lock").push(text.to_owned());
        let lower = text.to_lowercase();
        let mut v: Vec<f32> = self
            .dims
            .iter()
            .map(|d| lower.matches(d).count() as f32)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    fn default_min_score(&self) -> f32 {
        0.5
    }
}

fn topic_rule(name: &str, about: &str, like: &[&str], unlike: &[&str]) -> RuleSpec {
    RuleSpec {
        condition: Condition::Always,
        topic: Some(TopicSpec {
            about: about.into(),
            like: like.iter().map(|s| s.to_string()).collect(),
            unlike: unlike.iter().map(|s| s.to_string()).collect(),
            min_score: None,
        }),
        ..RuleSpec::keywords(name, &[])
    }
}

fn compile_topics(specs: &[RuleSpec], words: &Arc<Words>) -> RuleSet {
    RuleSet::compile_with(specs, &lists(), Arc::clone(words) as Arc<dyn Embedder>)
        .expect("rules compile")
}

#[test]
fn a_topic_rule_matches_by_score_and_says_how_close() {
    let words = Words::new();
    let rules = compile_topics(
        &[topic_rule("talks", "talks", &["geneva talks"], &[])],
        &words,
    );
    let matches = rules.matches("f", &item("More talks next week", ""));
    assert_eq!(matches.len(), 1);
    let topic = matches[0].topic.as_ref().expect("scored");
    // Similarity 1 to "talks", 1/√2 to "geneva talks": the mean of best and average.
    let expected = 0.5 * 1.0 + 0.5 * (1.0 + std::f32::consts::FRAC_1_SQRT_2) / 2.0;
    assert!((topic.score - expected).abs() < 1e-6, "{}", topic.score);
    assert_eq!(topic.closest, "talks");
    assert_eq!(topic.min_score, 0.5);
    assert!(matches[0].hits.is_empty());
    assert!(
        rules
            .matches("f", &item("A fire in the hills", ""))
            .is_empty()
    );
}

#[test]
fn an_item_nearer_an_unlike_example_is_vetoed_whatever_its_score() {
    let words = Words::new();
    let rules = compile_topics(
        &[topic_rule("talks", "talks", &[], &["talks on a swap"])],
        &words,
    );
    let swap = item("Talks on a prisoner swap", "the swap talks");
    assert!(rules.matches("f", &swap).is_empty());
    let scores = rules.topic_scores("f", &swap);
    let (rule, score) = &scores[0];
    assert_eq!(*rule, "talks");
    assert!(score.score >= score.min_score, "close enough but vetoed");
    let (unlike, by) = score.vetoed_by.expect("vetoed");
    assert_eq!(unlike, "talks on a swap");
    assert!(by > score.score);
    assert!(!rules.matches("f", &item("Talks resume", "")).is_empty());
}

#[test]
fn about_with_words_needs_both_and_embeds_only_when_the_words_hold() {
    let words = Words::new();
    let spec = RuleSpec {
        condition: Condition::Query("Geneva".into()),
        ..topic_rule("geneva-talks", "talks", &[], &[])
    };
    let rules = compile_topics(&[spec], &words);
    let before = words.calls.load(Ordering::Relaxed);
    assert!(rules.matches("f", &item("Talks in Vienna", "")).is_empty());
    assert_eq!(
        words.calls.load(Ordering::Relaxed),
        before,
        "no embedding without Geneva"
    );
    assert!(
        rules
            .matches("f", &item("A fire near Geneva", ""))
            .is_empty()
    );
    let matched = rules.matches("f", &item("Geneva talks, talks, talks", ""));
    assert_eq!(matched.len(), 1);
    assert_eq!(matched[0].hits.len(), 1);
    assert!(matched[0].topic.is_some());
}

#[test]
fn an_item_is_embedded_once_for_every_topic_rule_reading_the_same_fields() {
    let words = Words::new();
    let rules = compile_topics(
        &[
            topic_rule("a", "talks", &[], &[]),
            topic_rule("b", "fire", &[], &[]),
            RuleSpec {
                fields: FieldSet::from_fields([Field::Title]),
                ..topic_rule("c", "swap", &[], &[])
            },
        ],
        &words,
    );
    words.texts.lock().expect("lock").clear();
    rules.matches("f", &item("Fire talks", "a long summary"));
    assert_eq!(
        *words.texts.lock().expect("lock"),
        ["Fire talks\na long summary", "Fire talks"]
    );
}

#[test]
fn a_topic_rule_for_other_feeds_costs_nothing() {
    let words = Words::new();
    let spec = RuleSpec {
        feeds: Some(["wire".to_string()].into()),
        ..topic_rule("talks", "talks", &[], &[])
    };
    let rules = compile_topics(&[spec], &words);
    let before = words.calls.load(Ordering::Relaxed);
    assert!(rules.matches("blog", &item("Talks", "")).is_empty());
    assert!(rules.topic_scores("blog", &item("Talks", "")).is_empty());
    assert_eq!(words.calls.load(Ordering::Relaxed), before);
    assert_eq!(rules.matches("wire", &item("Talks", "")).len(), 1);
}

#[test]
fn the_text_read_is_title_summary_new_content_and_article() {
    let mut it = item("Title", "The summary.");
    it.content = "The summary. And more of the story.".into();
    it.article = "The article.".into();
    it.author = "A. Writer".into();
    assert_eq!(
        topic_text(&it, FieldSet::DEFAULT),
        "Title\nThe summary.\nThe article."
    );
    it.content = "Another text".into();
    assert_eq!(
        topic_text(&it, FieldSet::DEFAULT),
        "Title\nThe summary.\nAnother text\nThe article."
    );
    assert_eq!(
        topic_text(&it, FieldSet::from_fields([Field::Content, Field::Author])),
        "Another text\nA. Writer"
    );
    it.summary.clear();
    it.content = "Only content".into();
    assert_eq!(
        topic_text(&it, FieldSet::DEFAULT),
        "Title\nOnly content\nThe article."
    );
}

#[test]
fn a_topic_rule_needs_a_model_and_an_about() {
    let spec = topic_rule("t", "talks", &[], &[]);
    let err = RuleSet::compile(std::slice::from_ref(&spec), &lists()).expect_err("an error");
    assert_eq!(err.error, RuleError::NoModel);
    let empty = topic_rule("t", "  ", &[], &[]);
    let err = RuleSet::compile_with(&[empty], &lists(), Words::new() as Arc<dyn Embedder>)
        .expect_err("an error");
    assert_eq!(err.error, RuleError::EmptyAbout);
}

#[test]
fn a_rule_set_without_topics_holds_no_model() {
    let rules = compile_topics(&[RuleSpec::keywords("k", &["NATO"])], &Words::new());
    assert!(!rules.has_topics());
    assert!(rules.embedder.is_none());
}
