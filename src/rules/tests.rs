use super::*;
use crate::model::ItemKey;

fn item(title: &str, summary: &str) -> Item {
    Item {
        key: ItemKey("k".into()),
        title: title.into(),
        link: None,
        published: None,
        summary: summary.into(),
        content: String::new(),
    }
}

fn spec(name: &str, keywords: &[&str]) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        feeds: None,
        fields: FieldSet::ALL,
    }
}

fn fires(keywords: &[&str], text: &str) -> bool {
    let rules = RuleSet::compile(&[spec("r", keywords)]).expect("rule compiles");
    !rules.matches("feed", &item(text, "")).is_empty()
}

/// One row per case: keywords, text, whether the rule fires.
#[test]
fn keyword_table() {
    let rows: &[(&[&str], &str, bool)] = &[
        // The seed story and its decoys.
        (
            &["Lavrov", "Blinken", "NATO"],
            "Russia, U.S. Agree to Talk Security Demands Next Week: Lavrov and Blinken meet in Geneva",
            true,
        ),
        (&["NATO"], "Natomas school board meets", false),
        (&["Lavrov"], "Traffic on Lavrovsky Street", false),
        (&["NATO"], "NATO-led mission", true),
        (&["NATO"], "allies of nato.", true),
        // Possessives, straight and typographic.
        (&["Blinken"], "Blinken's trip", true),
        (&["Blinken"], "Blinken\u{2019}s trip", true),
        (&["Blinken"], "Blinkens", false),
        // Case in every script, accents.
        (&["Лавров"], "министр лавров сказал", true),
        (&["лавров"], "ЛАВРОВ", true),
        (&["Лавров"], "Лаврова", false),
        (&["Lavrov"], "Lavróv", true),
        (&["Lavróv"], "LAVROV", true),
        (&["Αθήνα"], "ΑΘΗΝΑ σήμερα", true),
        (&["Σύνοδος"], "η σύνοδος", true),
        (&["müller"], "MULLER", true),
        // Phrases are whole phrases, across any whitespace.
        (&["Sergei Lavrov"], "Sergei\n  Lavrov arrived", true),
        (&["Sergei Lavrov"], "Sergei Lavrovsky", false),
        (&["Sergei Lavrov"], "Lavrov, Sergei", false),
        // Unspaced scripts match inside running text.
        (&["北约"], "北约峰会在日内瓦举行", true),
        (&["ロシア"], "ロシア外相が会談", true),
        // Digits are part of words.
        (&["S-400"], "S-400s delivered", false),
        (&["S-400"], "the S-400 system", true),
        (&["G7"], "G77 summit", false),
        // Invisible characters inside a word do not break it.
        (&["Lavrov"], "Lav\u{200C}rov", true),
        (&["Lavrov"], "", false),
    ];
    for (keywords, text, expected) in rows {
        assert_eq!(
            fires(keywords, text),
            *expected,
            "keywords {keywords:?} on {text:?}"
        );
    }
}

#[test]
fn reports_every_rule_and_term_with_original_spans() {
    let rules = RuleSet::compile(&[
        spec("talks", &["Lavrov", "Blinken", "NATO"]),
        spec("geneva", &["Geneva"]),
        spec("other", &["Kyiv"]),
    ])
    .expect("rules compile");
    let it = item("Lavróv meets Blinken", "In Geneva, Blinken\u{2019}s team");
    let found = rules.matches("feed", &it);
    let names: Vec<&str> = found.iter().map(|m| m.rule.as_str()).collect();
    assert_eq!(names, ["talks", "geneva"]);
    assert_eq!(matched_terms(&found), ["Lavrov", "Blinken", "Geneva"]);
    let lavrov = &found[0].hits[0];
    assert_eq!(lavrov.field, Field::Title);
    assert_eq!(&it.title[lavrov.span.0..lavrov.span.1], "Lavróv");
}

#[test]
fn fields_and_feeds_restrict_a_rule() {
    let mut title_only = spec("t", &["NATO"]);
    title_only.fields = FieldSet::from_fields([Field::Title]);
    let mut one_feed = spec("f", &["NATO"]);
    one_feed.feeds = Some(["wire".to_string()].into());
    let rules = RuleSet::compile(&[title_only, one_feed]).expect("rules compile");
    let in_summary = item("Summit", "NATO allies");
    assert!(rules.matches("blog", &in_summary).is_empty());
    let names = |feed| -> Vec<String> {
        rules
            .matches(feed, &item("NATO", ""))
            .into_iter()
            .map(|m| m.rule)
            .collect()
    };
    assert_eq!(names("wire"), ["t", "f"]);
    assert_eq!(names("blog"), ["t"]);
}

#[test]
fn shared_terms_are_compiled_once() {
    let rules = RuleSet::compile(&[spec("a", &["NATO", "Lavrov"]), spec("b", &["nato"])])
        .expect("rules compile");
    assert_eq!(rules.terms.len(), 2);
    assert_eq!(rules.matches("x", &item("Nato", "")).len(), 2);
}

#[test]
fn bad_rules_are_rejected_with_their_index() {
    let err = RuleSet::compile(&[spec("ok", &["a"]), spec("bad", &["x", " "])])
        .expect_err("empty keyword");
    assert_eq!(err.rule, 1);
    assert_eq!(err.error, RuleError::EmptyKeyword { index: 1 });
    let err = RuleSet::compile(&[spec("none", &[])]).expect_err("no keywords");
    assert_eq!(err.error, RuleError::NoKeywords);
    let mut no_fields = spec("nf", &["a"]);
    no_fields.fields = FieldSet::from_fields([]);
    let err = RuleSet::compile(&[no_fields]).expect_err("no fields");
    assert_eq!(err.error, RuleError::NoFields);
}

#[test]
fn snippet_marks_hits_in_the_original_text() {
    let rules = RuleSet::compile(&[spec("r", &["Lavrov", "NATO"])]).expect("rule compiles");
    let long = format!(
        "{} Sergei Lavróv said NATO must answer. {}",
        "Filler words here. ".repeat(20),
        "More filler follows. ".repeat(20)
    );
    let it = item("Talks", &long);
    let found = rules.matches("x", &it);
    let snip = snippet(&it, &found);
    assert!(snip.text.starts_with('…') && snip.text.ends_with('…'));
    let marked: Vec<&str> = snip
        .highlights
        .iter()
        .map(|&(s, e)| &snip.text[s..e])
        .collect();
    assert_eq!(marked, ["Lavróv", "NATO"]);
}

#[test]
fn snippet_without_hits_in_text_falls_back_to_the_summary_lead() {
    let it = item("t", "short summary");
    assert_eq!(snippet(&it, &[]).text, "short summary");
}
