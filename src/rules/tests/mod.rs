use super::*;
use crate::model::{Item, ItemKey};

fn item(title: &str, summary: &str) -> Item {
    Item {
        key: ItemKey("k".into()),
        title: title.into(),
        link: None,
        published: None,
        summary: summary.into(),
        content: String::new(),
        author: String::new(),
        categories: String::new(),
        html: None,
        article: String::new(),
    }
}

fn lists() -> Lists {
    [
        (
            "officials".to_string(),
            vec![
                "Lavrov".into(),
                "Лавров".into(),
                "Peskov".into(),
                "Sergei Ryabkov".into(),
            ],
        ),
        ("empty".to_string(), vec![]),
    ]
    .into()
}

fn compile(specs: &[RuleSpec]) -> RuleSet {
    RuleSet::compile(specs, &lists()).expect("rules compile")
}

fn fires_on(spec: RuleSpec, it: &Item) -> bool {
    !compile(&[spec]).matches("feed", it).is_empty()
}

/// One row per case: keywords, text (as a title), whether the rule fires.
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
        (&["Lavrov"], "Lavro\u{301}v", true),
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
        // Keywords are literal: query syntax means nothing in them.
        (&["NATO OR Kyiv"], "Kyiv", false),
        (&["NATO OR Kyiv"], "nato or kyiv", true),
    ];
    for (keywords, text, expected) in rows {
        assert_eq!(
            fires_on(RuleSpec::keywords("r", keywords), &item(text, "")),
            *expected,
            "keywords {keywords:?} on {text:?}"
        );
    }
}

/// One row per case: query, title, summary, whether the rule fires.
#[test]
fn query_table() {
    let rows: &[(&str, &str, &str, bool)] = &[
        // AND, OR, NOT, adjacency and precedence.
        ("Lavrov AND Blinken", "Lavrov meets Blinken", "", true),
        ("Lavrov AND Blinken", "Lavrov meets Wang", "", false),
        ("Lavrov Blinken", "Blinken, then Lavrov", "", true),
        ("Lavrov OR Blinken", "Blinken alone", "", true),
        ("Lavrov Geneva OR Kyiv", "Kyiv", "", true),
        ("Lavrov Geneva OR Kyiv", "Lavrov in Vienna", "", false),
        ("Lavrov (Geneva OR Kyiv)", "Lavrov in Kyiv", "", true),
        ("Lavrov (Geneva OR Kyiv)", "Kyiv", "", false),
        (
            "\"Sergei Lavrov\" AND NOT Kyiv",
            "Sergei Lavrov in Geneva",
            "",
            true,
        ),
        (
            "\"Sergei Lavrov\" AND NOT Kyiv",
            "Sergei Lavrov in Kyiv",
            "",
            false,
        ),
        ("Lavrov -Kyiv", "Lavrov in Kyiv", "", false),
        ("NOT Kyiv", "Anything else", "", true),
        ("NOT NOT Kyiv", "Kyiv", "", true),
        ("and", "this and that", "", true),
        // Prefixes, whole-word on the left only.
        ("sanction*", "New sanctions announced", "", true),
        ("sanction*", "Sanctioned banks", "", true),
        ("sanction*", "desanctioned", "", false),
        ("санкци*", "Новые САНКЦИИ", "", true),
        // Regex: case-insensitive unless the rule says otherwise.
        (r"/\bS-?400s?\b/", "Turkey bought s400s", "", true),
        (r"/\bS-?400s?\b/", "S-4000", "", false),
        (r"/\d{4}-\d{2}-\d{2}/", "due 2022-01-21", "", true),
        // Fields.
        ("title:NATO", "NATO summit", "", true),
        ("title:NATO", "Summit", "NATO allies", false),
        ("summary:NATO", "Summit", "NATO allies", true),
        ("title:(NATO OR OTAN)", "L'OTAN se réunit", "", true),
        ("title:NATO Lavrov", "NATO", "Lavrov", true),
        (
            "title:(Blinken NEAR/2 Lavrov)",
            "Blinken and Lavrov",
            "",
            true,
        ),
        (
            "title:(Blinken NEAR/2 Lavrov)",
            "Blinken",
            "and Lavrov",
            false,
        ),
        // NEAR: both within n words, either order, same field.
        ("Blinken NEAR/3 Lavrov", "Blinken met Lavrov", "", true),
        (
            "Blinken NEAR/3 Lavrov",
            "Lavrov, then later Blinken",
            "",
            true,
        ),
        (
            "Blinken NEAR/2 Lavrov",
            "Blinken and then met Lavrov",
            "",
            false,
        ),
        ("Blinken NEAR/3 Lavrov", "Blinken", "Lavrov", false),
        (
            "\"Antony Blinken\" NEAR/2 Lavrov",
            "Antony Blinken and Lavrov",
            "",
            true,
        ),
        ("@officials NEAR/1 (NATO OR OTAN)", "NATO Peskov", "", true),
        // Lists.
        ("@officials AND NATO", "Peskov on NATO", "", true),
        ("@officials AND NATO", "ЛАВРОВ о NATO", "", true),
        ("@officials AND NATO", "Sergei Ryabkov said", "", false),
        ("@officials", "Ryabkov", "", false),
        // Possessives and decoys carry over to queries.
        ("Blinken AND NATO", "Blinken\u{2019}s NATO talk", "", true),
        ("NATO", "Natomas", "", false),
    ];
    for (query, title, summary, expected) in rows {
        assert_eq!(
            fires_on(RuleSpec::query("q", query), &item(title, summary)),
            *expected,
            "query {query:?} on title {title:?}, summary {summary:?}"
        );
    }
}

/// Word positions are counted only where a NEAR's two sides are both found: rules
/// sharing a term each see the right distance, in any script.
#[test]
fn near_rules_sharing_a_term_measure_their_own_distance() {
    let set = compile(&[
        RuleSpec::query("lavrov", "Blinken NEAR/1 Lavrov"),
        RuleSpec::query("peskov", "Blinken NEAR/1 Peskov"),
        RuleSpec::query("wide", "Blinken NEAR/3 Лавров"),
    ]);
    let fired = |title: &str| -> Vec<&str> {
        set.matches("feed", &item(title, ""))
            .iter()
            .map(|m| m.rule)
            .collect()
    };
    assert_eq!(fired("Peskov, Blinken met; later Lavrov came"), ["peskov"]);
    assert_eq!(
        fired("Lavrov and Peskov; much later Blinken"),
        [] as [&str; 0]
    );
    assert_eq!(fired("Лавров и Ñandú, Blinken"), ["wide"]);
    assert_eq!(fired("Лавров и Ñandú then met Blinken"), [] as [&str; 0]);
    assert_eq!(fired("Lavrov"), [] as [&str; 0]);
}

#[test]
fn author_category_and_link_fields() {
    let mut it = item("Talks", "");
    it.author = "Jane Roe, John Doe".into();
    it.categories = "Diplomacy, Europe".into();
    it.link = Some("https://www.themoscowtimes.com/2022/01/21/talks".into());
    let fires = |q: &str| fires_on(RuleSpec::query("q", q), &it);
    assert!(fires("author:\"John Doe\""));
    assert!(fires("category:diplomacy"));
    assert!(fires("link:themoscowtimes"));
    assert!(
        !fires("Diplomacy"),
        "unprefixed terms look at title, summary and content"
    );
}

#[test]
fn case_sensitive_and_strict_accent_rules() {
    let sensitive = RuleSpec {
        case_sensitive: true,
        ..RuleSpec::query("cs", "US OR /\\bEU\\b/")
    };
    assert!(fires_on(sensitive.clone(), &item("US sanctions", "")));
    assert!(!fires_on(sensitive.clone(), &item("join us", "")));
    assert!(!fires_on(sensitive, &item("eu rules", "")));
    let strict = RuleSpec {
        strict_accents: true,
        ..RuleSpec::keywords("sa", &["Pérez"])
    };
    assert!(fires_on(strict.clone(), &item("PÉREZ wins", "")));
    assert!(!fires_on(strict, &item("Perez wins", "")));
    // The same word in a folding rule still folds: rules do not leak modes.
    let both = compile(&[
        RuleSpec {
            strict_accents: true,
            ..RuleSpec::keywords("strict", &["Pérez"])
        },
        RuleSpec::keywords("loose", &["Pérez"]),
    ]);
    let names: Vec<&str> = both
        .matches("f", &item("Perez", ""))
        .into_iter()
        .map(|m| m.rule)
        .collect();
    assert_eq!(names, ["loose"]);
}

#[test]
fn reports_every_rule_and_term_with_original_spans() {
    let rules = compile(&[
        RuleSpec::keywords("talks", &["Lavrov", "Blinken", "NATO"]),
        RuleSpec::keywords("geneva", &["Geneva"]),
        RuleSpec::keywords("other", &["Kyiv"]),
    ]);
    let it = item("Lavróv meets Blinken", "In Geneva, Blinken\u{2019}s team");
    let found = rules.matches("feed", &it);
    let names: Vec<&str> = found.iter().map(|m| m.rule).collect();
    assert_eq!(names, ["talks", "geneva"]);
    assert_eq!(matched_terms(&found), ["Lavrov", "Blinken", "Geneva"]);
    let lavrov = found[0]
        .hits
        .iter()
        .find(|h| h.term == "Lavrov")
        .expect("hit");
    assert_eq!(lavrov.field, Field::Title);
    assert_eq!(&it.title[lavrov.span.0..lavrov.span.1], "Lavróv");
}

#[test]
fn hits_of_negated_terms_are_not_reported() {
    let rules = compile(&[RuleSpec::query("q", "Lavrov OR (NATO -Kyiv)")]);
    let found = rules.matches("f", &item("Lavrov in Kyiv", ""));
    let terms: Vec<&str> = found[0].hits.iter().map(|h| h.term).collect();
    assert_eq!(terms, ["Lavrov"]);
}

#[test]
fn regex_and_prefix_hits_carry_spans() {
    let rules = compile(&[RuleSpec::query("q", r"sanction* AND /S-?400/")]);
    let it = item("Sanctions over S-400 deal", "");
    let found = rules.matches("f", &it);
    let marked: Vec<(&str, &str)> = found[0]
        .hits
        .iter()
        .map(|h| (h.term, &it.title[h.span.0..h.span.1]))
        .collect();
    assert_eq!(marked, [("sanction*", "Sanction"), ("/S-?400/", "S-400")]);
}

#[test]
fn fields_and_feeds_restrict_a_rule() {
    let title_only = RuleSpec {
        fields: FieldSet::from_fields([Field::Title]),
        ..RuleSpec::keywords("t", &["NATO"])
    };
    let one_feed = RuleSpec {
        feeds: Some(["wire".to_string()].into()),
        ..RuleSpec::keywords("f", &["NATO"])
    };
    let rules = compile(&[title_only, one_feed]);
    assert!(
        rules
            .matches("blog", &item("Summit", "NATO allies"))
            .is_empty()
    );
    let names = |feed| -> Vec<String> {
        rules
            .matches(feed, &item("NATO", ""))
            .into_iter()
            .map(|m| m.rule.to_owned())
            .collect()
    };
    assert_eq!(names("wire"), ["t", "f"]);
    assert_eq!(names("blog"), ["t"]);
}

#[test]
fn shared_terms_are_compiled_once() {
    let rules = compile(&[
        RuleSpec::keywords("a", &["NATO", "Lavrov"]),
        RuleSpec::keywords("b", &["nato"]),
        RuleSpec::query("c", "NATO AND lavrov"),
    ]);
    assert_eq!(rules.matcher.terms.len(), 2);
    assert_eq!(rules.matcher.automata.len(), 1);
    assert_eq!(rules.matches("x", &item("Nato Lavrov", "")).len(), 3);
}

#[test]
fn bad_rules_are_rejected_with_their_index() {
    let err = RuleSet::compile(
        &[
            RuleSpec::keywords("ok", &["a"]),
            RuleSpec::keywords("bad", &["x", " "]),
        ],
        &lists(),
    )
    .expect_err("empty keyword");
    assert_eq!(err.rule, 1);
    assert_eq!(err.error, RuleError::EmptyKeyword { index: 1 });
    let err =
        RuleSet::compile(&[RuleSpec::keywords("none", &[])], &lists()).expect_err("no keywords");
    assert_eq!(err.error, RuleError::NoKeywords);
    let no_fields = RuleSpec {
        fields: FieldSet::from_fields([]),
        ..RuleSpec::keywords("nf", &["a"])
    };
    let err = RuleSet::compile(&[no_fields], &lists()).expect_err("no fields");
    assert_eq!(err.error, RuleError::NoFields);
}

/// One row per query that parses but cannot compile: the column and the message start.
#[test]
fn compile_errors_point_at_the_column() {
    let rows: &[(&str, usize, &str)] = &[
        (
            "NATO AND @nobody",
            10,
            "unknown list @nobody; [lists] defines: empty, officials",
        ),
        ("@empty", 1, "list @empty is empty"),
        ("NATO /(unclosed/", 1, "invalid regex /(unclosed/:"),
        ("(a AND b) NEAR/3 c", 11, "NEAR needs a word"),
        ("title:a NEAR/3 b", 9, "NEAR needs a word"),
        (
            "\"...\"",
            1,
            "the term \"...\" has no letters or digits to match",
        ),
    ];
    for (query, column, message) in rows {
        let err = RuleSet::compile(&[RuleSpec::query("q", query)], &lists()).expect_err(query);
        let RuleError::Query { error, .. } = &err.error else {
            panic!("{query:?}: {err}");
        };
        assert_eq!(error.column, *column, "{query:?}: {err}");
        assert!(error.message.starts_with(message), "{query:?}: {err}");
    }
}

#[test]
fn snippet_marks_hits_in_the_original_text() {
    let rules = compile(&[RuleSpec::keywords("r", &["Lavrov", "NATO"])]);
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

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "NATO",
            "Lavrov",
            "Лавров",
            "Blinken",
            "Geneva",
            "Natomas",
            "sanctions",
            "Αθήνα",
            "北约",
            "Lavróv",
            "S-400",
            "talks",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        /// `keywords = [k1, k2]` and `query = "\"k1\" OR \"k2\""` always agree.
        #[test]
        fn keywords_and_their_query_agree(
            keywords in prop::collection::vec(prop::collection::vec(word(), 1..3), 1..4),
            text in prop::collection::vec(word(), 0..12),
        ) {
            let keywords: Vec<String> = keywords.iter().map(|k| k.join(" ")).collect();
            let query = keywords.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(" OR ");
            let refs: Vec<&str> = keywords.iter().map(String::as_str).collect();
            let it = item(&text.join(" "), "");
            prop_assert_eq!(
                fires_on(RuleSpec::keywords("k", &refs), &it),
                fires_on(RuleSpec::query("q", &query), &it)
            );
        }

        /// Arbitrary Unicode in any field never makes matching panic, and every
        /// reported span lies on char boundaries of its field.
        #[test]
        fn matching_never_panics(title in any::<String>(), summary in any::<String>(), query_words in prop::collection::vec(word(), 1..4)) {
            let rules = compile(&[
                RuleSpec::query("q", &format!("{} OR sanction* OR /[a-z]+/ OR (x NEAR/2 y)", query_words.join(" OR "))),
                RuleSpec::keywords("k", &["NATO", "ß", "İ"]),
            ]);
            let it = item(&title, &summary);
            for m in rules.matches("f", &it) {
                for hit in m.hits {
                    let text = hit.field.text(&it);
                    prop_assert!(text.is_char_boundary(hit.span.0) && text.is_char_boundary(hit.span.1));
                    prop_assert!(hit.span.0 < hit.span.1);
                }
            }
            let _ = snippet(&it, &rules.matches("f", &it));
        }
    }
}

mod topics;

#[test]
fn explain_says_which_term_or_clause_failed_for_every_rule() {
    let specs = [
        RuleSpec::keywords("people", &["Lavrov", "Blinken"]),
        RuleSpec::query("talks", "Lavrov AND Geneva"),
        RuleSpec::query("no sport", "Lavrov AND NOT football"),
        RuleSpec::query("close", "Lavrov NEAR/2 talks"),
        RuleSpec {
            feeds: Some(["other".to_string()].into()),
            ..RuleSpec::keywords("elsewhere", &["Lavrov"])
        },
        RuleSpec {
            fields: FieldSet::from_fields([Field::Title]),
            ..RuleSpec::keywords("titles", &["Vienna"])
        },
    ];
    let rules = RuleSet::compile(&specs, &Lists::new()).expect("compiles");
    let verdicts: Vec<(String, String)> = rules
        .explain(
            "wire",
            &item(
                "Lavrov watches football in Vienna",
                "Vienna talks were long, then Lavrov left",
            ),
        )
        .into_iter()
        .map(|(rule, v)| (rule.to_owned(), v.to_string()))
        .collect();
    let expected = [
        ("people", "matched"),
        ("talks", "not matched: no \"Geneva\""),
        (
            "no sport",
            "not matched: \"football\" is there, and the rule excludes it (NOT)",
        ),
        (
            "close",
            "not matched: \"Lavrov\" is not within 2 words of \"talks\"",
        ),
        ("elsewhere", "not matched: the rule watches other feeds"),
        ("titles", "matched"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(r, v)| (r.to_string(), v.to_string()))
        .collect();
    assert_eq!(verdicts, expected);
    let keywords = RuleSet::compile(&specs[..1], &Lists::new()).expect("compiles");
    let none = keywords.explain("wire", &item("Talks in Geneva", ""));
    assert_eq!(
        none[0].1.to_string(),
        "not matched: none of \"Lavrov\", \"Blinken\""
    );
    // The summary is read for the other rules, so the term is found there.
    let elsewhere = rules.explain("wire", &item("Talks", "in Vienna"));
    assert_eq!(
        elsewhere[5].1.to_string(),
        "not matched: \"Vienna\" is only in fields the rule does not read"
    );
}
