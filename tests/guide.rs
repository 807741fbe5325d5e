//! The user guide (`doc/guide/`) is checked against the code: every complete example
//! (a ```` ```toml,check ```` block) passes `check`, and the configuration reference
//! lists exactly the keys the config accepts, every key of `config/example.toml`
//! among them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use newshound::config::Config;

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/doc/guide/src");
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/doc/guide/src/configuration.md"
);

/// The guide's pages, in a stable order.
fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(dir).expect("guide directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            pages.extend(self::pages(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The fenced blocks of `text` tagged `toml,check`: the line each starts on, and its
/// text.
fn checked_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    // The open block: the line it starts on, whether it is checked, its text so far.
    let mut open: Option<(usize, bool, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match open.take() {
            None if fence => {
                let info = line.trim_start().trim_start_matches('`').trim();
                open = Some((n + 1, info == "toml,check", String::new()));
            }
            None => {}
            Some((start, true, body)) if fence => blocks.push((start, body)),
            Some(_) if fence => {}
            Some((start, checked, mut body)) => {
                body.push_str(line);
                body.push('\n');
                open = Some((start, checked, body));
            }
        }
    }
    blocks
}

/// The environment a config example expects: every variable it names in a
/// `*_env = "NAME"` key, set.
fn env_for(example: &str) -> std::collections::HashMap<String, String> {
    let mut env = std::collections::HashMap::new();
    for line in example.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim().ends_with("_env") {
            let name = value.trim().trim_matches('"');
            env.insert(name.to_owned(), "guide-example-secret".to_owned());
        }
    }
    env
}

#[test]
fn every_complete_example_in_the_guide_passes_check() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages(Path::new(GUIDE)) {
        let text = std::fs::read_to_string(&page).expect("page");
        for (line, example) in checked_blocks(&text) {
            let dir = tempfile::tempdir().expect("temp dir");
            let file = dir.path().join("newshound.toml");
            std::fs::write(&file, &example).expect("write example");
            checked += 1;
            if let Err(e) = Config::load(&file, &env_for(&example)) {
                failures.push(format!("{}:{line}: {e}", page.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "examples that fail check:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 10, "only {checked} checked examples found");
}

/// The keys the reference documents: the code span that starts each table row.
fn reference_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(REFERENCE).expect("configuration.md");
    text.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect()
}

/// The names a config error lists as expected (after "expected"), in backticks.
fn expected_names(error: &str) -> Vec<String> {
    let Some((_, listed)) = error.split_once("expected") else {
        panic!("no list of expected keys in: {error}");
    };
    listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The error `check` gives for `text`.
fn refusal(text: &str) -> String {
    match Config::from_toml(Path::new("guide.toml"), text, &Default::default()) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

/// Every key the config accepts, named as the reference names it, found by asking
/// each section about a key it does not have.
fn accepted_keys() -> BTreeSet<String> {
    const UNKNOWN: &str = "no_such_key_anywhere = 1\n";
    let mut keys = BTreeSet::new();
    let sections: BTreeMap<&str, &str> = [
        ("daemon.", "[daemon]\n"),
        ("smtp.", "[smtp]\n"),
        ("store.", "[store]\n"),
        ("semantic.", "[semantic]\n"),
        ("feeds[].", "[[feeds]]\n"),
        ("rules[].", "[[rules]]\n"),
        ("filters[].", "[[filters]]\n"),
    ]
    .into();
    for name in expected_names(&refusal(UNKNOWN)) {
        if let Some(header) = sections
            .iter()
            .find(|(p, _)| p.trim_end_matches(['.', '[', ']']) == name)
        {
            for key in expected_names(&refusal(&format!("{}{UNKNOWN}", header.1))) {
                keys.insert(format!("{}{key}", header.0));
            }
        } else if !matches!(name.as_str(), "lists" | "channels") {
            // A key of the file itself, like `include`.
            keys.insert(name);
        }
    }
    keys.insert("lists.<name>".into());
    keys.insert("channels.*.type".into());
    let kinds = expected_names(&refusal("[channels.x]\ntype = \"no_such_kind\"\n"));
    assert!(kinds.len() >= 10, "{kinds:?}");
    for kind in kinds {
        let error = refusal(&format!("[channels.x]\n{UNKNOWN}type = \"{kind}\"\n"));
        let (own, shared) = error
            .split_once("; or one every such channel takes")
            .unwrap_or_else(|| panic!("{kind}: {error}"));
        for key in expected_names(own) {
            keys.insert(format!("channels.{kind}.{key}"));
        }
        for key in shared.split('`').skip(1).step_by(2) {
            if key != "templates" {
                keys.insert(format!("channels.*.{key}"));
            }
        }
    }
    for key in expected_names(&refusal(&format!(
        "[channels.x]\ntype = \"maildir\"\npath = \"inbox\"\n[channels.x.templates]\n{UNKNOWN}"
    ))) {
        keys.insert(format!("channels.*.templates.{key}"));
    }
    keys
}

#[test]
fn the_reference_lists_exactly_the_keys_the_config_accepts() {
    let documented = reference_keys();
    let accepted = accepted_keys();
    let missing: Vec<&String> = accepted.difference(&documented).collect();
    let refused: Vec<&String> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty() && refused.is_empty(),
        "doc/guide/src/configuration.md and the config disagree:\n\
         accepted by the config but not in the reference: {missing:?}\n\
         in the reference but refused by the config: {refused:?}"
    );
}

/// The keys `config/example.toml` sets or shows commented out, named as the reference
/// names them.
fn example_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
        .expect("example config");
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    let mut kind = String::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(header) = line
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .filter(|h| !h.contains(' '))
        {
            section = header.trim_matches(['[', ']']).to_owned();
            if !section.ends_with(".templates") {
                kind.clear();
            }
            continue;
        }
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        // Prose in a comment ("story = same link …") is no TOML value.
        let toml_value = toml::from_str::<toml::Table>(&format!("v = {value}")).is_ok();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') || !toml_value
        {
            continue;
        }
        let name = match section.split('.').collect::<Vec<_>>()[..] {
            [] | [""] => key.to_owned(),
            ["feeds"] => format!("feeds[].{key}"),
            ["rules"] => format!("rules[].{key}"),
            ["filters"] => format!("filters[].{key}"),
            ["lists"] => "lists.<name>".to_owned(),
            ["channels", _] if key == "type" => {
                kind = value.trim_matches('"').to_owned();
                "channels.*.type".to_owned()
            }
            ["channels", _] => format!("channels.{kind}.{key}"),
            ["channels", _, "templates"] => format!("channels.*.templates.{key}"),
            [top, ..] => format!("{top}.{key}"),
        };
        keys.insert(name);
    }
    keys
}

#[test]
fn every_key_of_the_example_config_is_in_the_reference() {
    let documented = reference_keys();
    let shared = |key: &str| {
        key.strip_prefix("channels.")
            .and_then(|rest| rest.split_once('.'))
            .map(|(_, key)| format!("channels.*.{key}"))
    };
    let keys = example_keys();
    assert!(
        keys.len() >= 60,
        "only {} keys read from the example: {keys:?}",
        keys.len()
    );
    let missing: Vec<String> = keys
        .into_iter()
        .filter(|key| {
            !documented.contains(key) && !shared(key).is_some_and(|s| documented.contains(&s))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys of config/example.toml missing from doc/guide/src/configuration.md: {missing:?}"
    );
}

/// The relative link targets of a Markdown `text` (`](target)`), without anchors;
/// web and mail links left out.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')'))
        .map(|(target, _)| target.split('#').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}

#[test]
fn every_relative_link_of_the_guide_and_the_readme_leads_to_a_file() {
    let readme = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let mut broken = Vec::new();
    for page in pages(Path::new(GUIDE)).into_iter().chain([readme]) {
        let text = std::fs::read_to_string(&page).expect("page");
        let dir = page.parent().expect("a folder");
        for target in relative_links(&text) {
            if !dir.join(&target).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
}
