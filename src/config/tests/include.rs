//! `include`: rules, feeds, filters, lists and channels from other files.

use super::*;

/// A folder holding `files` (name, text); the first is the main config.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("folder");
        std::fs::write(path, text).expect("write");
    }
    dir
}

const MAIN: &str = r#"include = ["rules.d/*.toml", "feeds.d/*.toml"]

[[feeds]]
name = "main-feed"
url = "file:main.xml"

[channels.inbox]
type = "maildir"
path = "alerts"

[[rules]]
name = "main-rule"
keywords = ["Lavrov"]
channels = ["inbox"]
"#;

fn load_in(dir: &tempfile::TempDir) -> Result<Config, ConfigError> {
    Config::load(&dir.path().join("newshound.toml"), &HashMap::new())
}

#[test]
fn included_files_add_feeds_rules_filters_lists_and_channels_in_sorted_order() {
    let dir = folder(&[
        ("newshound.toml", MAIN),
        (
            "rules.d/b.toml",
            "[[rules]]\nname = \"b-rule\"\nquery = \"@places\"\nchannels = [\"team\"]\n",
        ),
        (
            "rules.d/a.toml",
            "[lists]\nplaces = [\"Geneva\", \"Vienna\"]\n\n[channels.team]\ntype = \"maildir\"\npath = \"team\"\n\n\
             [[rules]]\nname = \"a-rule\"\nkeywords = [\"NATO\"]\nchannels = [\"team\"]\n",
        ),
        (
            "feeds.d/wire.toml",
            "[[feeds]]\nname = \"wire\"\nurl = \"file:wire.xml\"\ndrop = \"sport\"\n\n\
             [[filters]]\nname = \"no ads\"\ndrop = \"sponsored\"\n",
        ),
        ("rules.d/notes.txt", "not toml, and not matched"),
    ]);
    let config = load_in(&dir).expect("valid");
    let rules: Vec<&str> = config.rule_specs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rules, ["main-rule", "a-rule", "b-rule"]);
    let feeds: Vec<&str> = config.feeds.iter().map(|f| f.id.0.as_str()).collect();
    assert_eq!(feeds, ["main-feed", "wire"]);
    assert!(config.channels.contains_key("team"));
    assert_eq!(config.lists["places"], ["Geneva", "Vienna"]);
    let filters: Vec<&str> = config
        .filter_specs
        .iter()
        .map(|f| f.rule.name.as_str())
        .collect();
    assert_eq!(filters, ["no ads", "drop of feed wire"]);
    let included: Vec<String> = config
        .included
        .iter()
        .map(|p| {
            p.strip_prefix(dir.path())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        included,
        ["rules.d/a.toml", "rules.d/b.toml", "feeds.d/wire.toml"]
    );
}

#[test]
fn an_error_in_an_included_file_names_that_file_its_line_and_key() {
    let dir = folder(&[
        ("newshound.toml", MAIN),
        (
            "rules.d/a.toml",
            "[[rules]]\nname = \"ok\"\nkeywords = [\"x\"]\nchannels = [\"inbox\"]\n\n\
             [[rules]]\nname = \"bad\"\nkeywords = [\"x\"]\nchannels = [\"nowhere\"]\n",
        ),
    ]);
    let file = dir.path().join("rules.d/a.toml");
    assert_eq!(
        load_in(&dir).expect_err("unknown channel").to_string(),
        format!(
            "{}:9: rules[1].channels[0]: unknown channel \"nowhere\"; define it as [channels.nowhere]",
            file.display()
        )
    );
    std::fs::write(
        &file,
        "[[rules]]\nname = \"x\"\nkeywords = [\"x\"]\nchannels = [\"inbox\"]\ncolour = \"red\"\n",
    )
    .expect("write");
    let err = load_in(&dir).expect_err("unknown key").to_string();
    assert!(
        err.starts_with(&format!(
            "{}:5: rules[0].colour: unknown field `colour`",
            file.display()
        )),
        "{err}"
    );
    std::fs::write(&file, "[[rules]\nname = 1\n").expect("write");
    let err = load_in(&dir).expect_err("not TOML").to_string();
    assert!(err.starts_with(&format!("{}:1:", file.display())), "{err}");
}

#[test]
fn a_name_defined_twice_across_files_names_both_places() {
    for (file, text, expected) in [
        (
            "rules.d/a.toml",
            "\n[[rules]]\nname = \"main-rule\"\nkeywords = [\"x\"]\nchannels = [\"inbox\"]\n",
            "rules.d/a.toml:3: rules[0].name: duplicate rule name \"main-rule\" (also rules[0].name (MAIN:12)); names must be unique",
        ),
        (
            "feeds.d/f.toml",
            "[[feeds]]\nname = \"main-feed\"\nurl = \"file:x.xml\"\n",
            "feeds.d/f.toml:2: feeds[0].name: duplicate feed name \"main-feed\" (also feeds[0].name (MAIN:4)); names must be unique",
        ),
        (
            "rules.d/c.toml",
            "\n\n[channels.inbox]\ntype = \"maildir\"\npath = \"x\"\n",
            "rules.d/c.toml:3: channels.inbox: defined twice: here and at channels.inbox (MAIN:7); names must be unique",
        ),
    ] {
        let dir = folder(&[("newshound.toml", MAIN), (file, text)]);
        let main_path = dir.path().join("newshound.toml").display().to_string();
        let expected = format!(
            "{}/{}",
            dir.path().display(),
            expected.replace("MAIN", &main_path)
        );
        assert_eq!(load_in(&dir).expect_err(file).to_string(), expected);
    }
    // Between two included files, the first one read is the first place.
    let dir = folder(&[
        ("newshound.toml", MAIN),
        ("rules.d/a.toml", "[lists]\nx = [\"a\"]\n"),
        ("rules.d/b.toml", "[lists]\nx = [\"b\"]\n"),
    ]);
    let (a, b) = (
        dir.path().join("rules.d/a.toml"),
        dir.path().join("rules.d/b.toml"),
    );
    assert_eq!(
        load_in(&dir).expect_err("twice").to_string(),
        format!(
            "{}:2: lists.x: defined twice: here and at lists.x ({}:2); names must be unique",
            b.display(),
            a.display()
        )
    );
}

#[test]
fn daemon_smtp_store_and_nested_includes_belong_in_the_main_file() {
    for (text, top) in [
        ("[daemon]\npoll_interval = \"5m\"\n", "[daemon] belongs in"),
        (
            "[smtp]\nhost = \"x\"\nfrom = \"a@b\"\n",
            "[smtp] belongs in",
        ),
        ("[store]\nurl = \"postgres://x/y\"\n", "[store] belongs in"),
        ("include = [\"more/*.toml\"]\n", "includes do not nest"),
    ] {
        let dir = folder(&[("newshound.toml", MAIN), ("rules.d/a.toml", text)]);
        let err = load_in(&dir).expect_err(top).to_string();
        let file = dir.path().join("rules.d/a.toml");
        assert!(err.starts_with(&format!("{}:1:", file.display())), "{err}");
        assert!(err.contains(top), "{err}");
        assert!(
            err.contains("newshound.toml, not in an included one"),
            "{err}"
        );
    }
}

#[test]
fn a_pattern_that_matches_nothing_is_no_error_and_a_bad_pattern_is() {
    let dir = folder(&[("newshound.toml", MAIN)]);
    let config = load_in(&dir).expect("nothing included yet");
    let beside = folder(&[
        (
            "newshound.toml",
            &MAIN.replace("\"rules.d/*.toml\"", "\"*.toml\""),
        ),
        ("more.toml", "[lists]\nx = [\"a\"]\n"),
    ]);
    let config_beside = load_in(&beside).expect("the main file is not read twice");
    assert_eq!(config_beside.included.len(), 1);
    assert!(config.included.is_empty());
    assert_eq!(config.include.len(), 2);
    let dir = folder(&[("newshound.toml", "include = [\"rules.d/[*.toml\"]\n")]);
    let err = load_in(&dir).expect_err("bad pattern").to_string();
    assert!(
        err.contains("newshound.toml:1: include[0]: \"rules.d/[*.toml\" is not a file pattern"),
        "{err}"
    );
}

#[test]
fn the_main_file_is_not_read_again_through_another_path_to_it() {
    let dir = folder(&[(
        "newshound.toml",
        &MAIN.replace(
            "include = [\"rules.d/*.toml\", \"feeds.d/*.toml\"]",
            "include = [\"*.toml\"]",
        ),
    )]);
    std::os::unix::fs::symlink(
        dir.path().join("newshound.toml"),
        dir.path().join("linked.toml"),
    )
    .expect("symlink");
    let config = Config::load(&dir.path().join("linked.toml"), &HashMap::new())
        .expect("the file behind the link is the main file, read once");
    assert_eq!(config.rule_specs.len(), 1);
}

#[test]
fn hidden_files_are_not_included_and_brackets_in_the_folder_name_are_no_pattern() {
    let dir = folder(&[
        ("app[1]/newshound.toml", MAIN),
        (
            "app[1]/rules.d/a.toml",
            "[[rules]]\nname = \"a-rule\"\nkeywords = [\"NATO\"]\nchannels = [\"inbox\"]\n",
        ),
        (
            "app[1]/rules.d/._a.toml",
            "\u{0}\u{5} resource fork, not TOML",
        ),
    ]);
    let config = Config::load(
        &dir.path().join("app[1]").join("newshound.toml"),
        &HashMap::new(),
    )
    .expect("valid");
    let rules: Vec<&str> = config.rule_specs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rules, ["main-rule", "a-rule"]);
}
