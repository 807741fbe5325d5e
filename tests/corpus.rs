//! Parses every file of the shared external corpus (feedparser, feed-rs, the W3C
//! validator, real captures) when it is present: no panic, and the same ItemKeys when
//! a file is parsed twice. `../shared/corpus` exists in the team's checkout and CI, not
//! on a user's machine; without it this test says so and checks nothing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if is_feed_candidate(&path) {
            out.push(path);
        }
    }
}

/// Everything but the licence texts, READMEs, rss2email's INI configs and mail dumps.
fn is_feed_candidate(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let skipped_ext = [".md", ".config", ".expected", ".txt"];
    !skipped_ext.iter().any(|ext| name.ends_with(ext))
        && !["LICENSE", "COPYING", "README", "LICENSE-MIT"].contains(&name)
}

#[test]
fn every_corpus_file_parses_without_panic_and_with_stable_keys() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        eprintln!(
            "skipped: {} is absent (it exists only in the team's checkout and CI)",
            dir.display()
        );
        return;
    }
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    paths.sort();
    let (mut ok, mut errors, mut items) = (0, 0, 0);
    let mut panics = Vec::new();
    let mut unstable = Vec::new();
    for path in &paths {
        let bytes = std::fs::read(path).expect("corpus file is readable");
        let parse = || catch_unwind(AssertUnwindSafe(|| newshound::feed::parse(&bytes, None)));
        match (parse(), parse()) {
            (Ok(Ok(first)), Ok(Ok(second))) => {
                ok += 1;
                items += first.items.len();
                let keys = |f: &newshound::feed::ParsedFeed| {
                    f.items.iter().map(|i| i.key.clone()).collect::<Vec<_>>()
                };
                if keys(&first) != keys(&second) {
                    unstable.push(path.clone());
                }
            }
            (Ok(Err(_)), Ok(Err(_))) => errors += 1,
            (Ok(_), Ok(_)) => unstable.push(path.clone()),
            _ => panics.push(path.clone()),
        }
    }
    eprintln!(
        "corpus: {} files, {ok} parsed ({items} items), {errors} rejected with an error, {} panics, {} unstable",
        paths.len(),
        panics.len(),
        unstable.len()
    );
    assert!(
        paths.len() > 1000,
        "the corpus should hold thousands of files"
    );
    assert!(panics.is_empty(), "panicked on: {panics:?}");
    assert!(
        unstable.is_empty(),
        "keys differ between two parses of: {unstable:?}"
    );
}
