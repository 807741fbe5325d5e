//! The layers of `src/`, checked: every `crate::…` path in a module's code (tests
//! aside) must point at a module this one may use. Dependencies point one way:
//!
//! ```text
//! cli → daemon → feed / store → config → notify → render / rules / semantic → model
//!                feed, notify → http (a leaf)
//! ```
//!
//! A new edge is a design decision: add it to [`ALLOWED`] with the reason, or move the
//! shared piece down (plain data into `model`, shared helpers into a leaf).

use std::path::{Path, PathBuf};

/// Each top-level module and the modules its code may name.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("http", &[]),
    ("rules", &["model"]),
    // The embedding models: text in, vectors out; nothing of the others'.
    ("semantic", &[]),
    ("render", &["model"]),
    // Config loads the model topic rules name, and compiles them with it; each channel
    // kind (in notify) checks its own table.
    (
        "config",
        &["model", "rules", "render", "semantic", "notify"],
    ),
    ("feed", &["model", "http"]),
    ("store", &["model"]),
    ("notify", &["model", "render", "http"]),
    (
        "daemon",
        &[
            "model", "http", "rules", "render", "semantic", "config", "feed", "store", "notify",
        ],
    ),
    (
        "cli",
        &[
            "model", "http", "rules", "render", "semantic", "config", "feed", "store", "notify",
            "daemon",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names `text` reaches through `crate::`: `crate::a::b` and `crate::{a, b::c}`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
        } else {
            found.push(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    found
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for path in &files {
        let relative = path.strip_prefix(&src).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|c| c.trim_end_matches(".rs"))
            .expect("a file name");
        let is_test = relative.ends_with("tests.rs") || relative.iter().any(|c| c == "tests");
        if matches!(module, "lib" | "main") || is_test {
            continue;
        }
        let allowed = ALLOWED
            .iter()
            .find(|(m, _)| *m == module)
            .map(|(_, allowed)| *allowed)
            .unwrap_or_else(|| panic!("{} is in no layer: add it to ALLOWED", relative.display()));
        let text = std::fs::read_to_string(path).expect("readable");
        // A file's unit tests come last, after `#[cfg(test)]`.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for name in crate_paths(code) {
            checked += 1;
            if name != module
                && modules.contains(&name.as_str())
                && !allowed.contains(&name.as_str())
            {
                wrong.push(format!("{} uses crate::{name}", relative.display()));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} crate:: paths found: is the scan broken?"
    );
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "edges outside the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_reads_plain_and_grouped_paths() {
    assert_eq!(
        crate_paths(
            "use crate::model::Item;\nlet x = crate::feed::parse(b);\nuse crate::{store, rules::RuleSet};"
        ),
        ["model", "feed", "store", "rules"]
    );
}

/// The files of `src/daemon` each name the siblings they use (`super::poll::…`); read
/// bottom-up, they form no cycle, and none reaches back into `daemon/mod.rs`, which
/// only starts the tasks.
#[test]
fn the_daemons_files_import_each_other_without_a_cycle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/daemon");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let name = |p: &Path| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name")
            .to_owned()
    };
    let siblings: Vec<String> = files.iter().map(|p| name(p)).collect();
    let mut edges: Vec<(String, Vec<String>)> = Vec::new();
    let mut wrong = Vec::new();
    for path in &files {
        let from = name(path);
        if from == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut to: Vec<String> = Vec::new();
        for used in code.split("super::").skip(1) {
            let target: String = used
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if siblings.contains(&target) && target != "mod" {
                to.push(target);
            } else {
                wrong.push(format!(
                    "daemon/{from}.rs uses super::{target} from daemon/mod.rs"
                ));
            }
        }
        to.sort();
        to.dedup();
        edges.push((from, to));
    }
    // Depth-first search for a file reached again while it is being read.
    fn visit(
        at: &str,
        edges: &[(String, Vec<String>)],
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|p| p == at) {
            return Some(format!("{} → {at}", path[start..].join(" → ")));
        }
        if done.iter().any(|d| d == at) {
            return None;
        }
        path.push(at.to_owned());
        let next = edges
            .iter()
            .find(|(f, _)| f == at)
            .map(|(_, t)| t.as_slice());
        for to in next.unwrap_or_default() {
            if let Some(cycle) = visit(to, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.push(at.to_owned());
        None
    }
    let mut done = Vec::new();
    for (from, _) in &edges {
        if let Some(cycle) = visit(from, &edges, &mut Vec::new(), &mut done) {
            wrong.push(format!("cycle: {cycle}"));
            break;
        }
    }
    assert!(edges.len() > 10, "only {} daemon files read", edges.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
