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
    if let Some(cycle) = find_cycle(&edges) {
        wrong.push(format!("cycle: {cycle}"));
    }
    assert!(edges.len() > 10, "only {} daemon files read", edges.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A cycle in `edges` (each file and the files it names), as `a → b → a`.
fn find_cycle(edges: &[(String, Vec<String>)]) -> Option<String> {
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
    edges
        .iter()
        .find_map(|(from, _)| visit(from, edges, &mut Vec::new(), &mut done))
}

/// The module a file under `src` holds, as its path: `notify/kinds` for
/// `notify/kinds/mod.rs`, `notify/kinds/email` for `notify/kinds/email.rs`.
fn module_of(relative: &Path) -> String {
    let text = relative
        .with_extension("")
        .to_string_lossy()
        .replace('\\', "/");
    text.strip_suffix("/mod").unwrap_or(&text).to_owned()
}

/// The paths `code` (in `module`) names through `crate::` and `super::`, from the
/// crate's root: `super::c::{d, e::f}` in `a/b` gives `a/c/d` and `a/c/e/f`.
fn named_paths(code: &str, module: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for (at, _) in code.match_indices("::") {
        // Only where a path starts: `crate` or `super` just before, nothing before it.
        let head_start = code[..at].rfind(|c: char| !ident(c)).map_or(0, |i| i + 1);
        let head = &code[head_start..at];
        let starts = head_start == 0 || !matches!(bytes[head_start - 1], b':');
        if !starts || !matches!(head, "crate" | "super") {
            continue;
        }
        let mut base: Vec<&str> = match head {
            "crate" => Vec::new(),
            _ => {
                let mut parts: Vec<&str> = module.split('/').collect();
                parts.pop();
                parts
            }
        };
        let mut rest = &code[at + 2..];
        while let Some(more) = rest.strip_prefix("super::") {
            base.pop();
            rest = more;
        }
        let mut segment = |path: &str, base: &[&str]| {
            let named: Vec<&str> = path
                .split("::")
                .map(|s| s.trim())
                .take_while(|s| !s.is_empty() && s.chars().all(ident))
                .collect();
            found.push([base, &named].concat().join("/"));
        };
        let plain: String = rest.chars().take_while(|&c| ident(c) || c == ':').collect();
        let prefix = plain.trim_end_matches(':');
        let after = &rest[plain.len()..];
        if let Some(group) = after
            .strip_prefix('{')
            .filter(|_| plain.ends_with("::") || plain.is_empty())
        {
            let end = group.find('}').unwrap_or(group.len());
            let mut inner = base.clone();
            inner.extend(prefix.split("::").filter(|s| !s.is_empty()));
            for part in group[..end].split(',') {
                segment(part, &inner);
            }
        } else {
            segment(prefix, &base);
        }
    }
    found
}

/// No file in `src` names one that names it back, through any chain of files. A
/// module's own `mod.rs` declaring and re-exporting its children is not an import;
/// a child using its parent's items is.
#[test]
fn no_file_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: Vec<(String, PathBuf)> = files
        .iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).expect("under src");
            (module_of(relative), path.clone())
        })
        .filter(|(m, _)| !matches!(m.as_str(), "lib" | "main"))
        .filter(|(m, _)| !m.ends_with("tests") && !m.contains("/tests/"))
        .collect();
    let known = |m: &str| modules.iter().any(|(k, _)| k == m);
    // The deepest module a path reaches: `notify/kinds/Key` is in `notify/kinds`.
    let file_of = |path: &str| {
        let mut at = String::new();
        for part in path.split('/') {
            let next = if at.is_empty() {
                part.to_owned()
            } else {
                format!("{at}/{part}")
            };
            if !known(&next) {
                break;
            }
            at = next;
        }
        (!at.is_empty()).then_some(at)
    };
    let mut edges: Vec<(String, Vec<String>)> = Vec::new();
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path).expect("readable");
        // Doc links name other modules too; only code imports.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut to: Vec<String> = named_paths(&code, module)
            .iter()
            .filter_map(|p| file_of(p))
            .filter(|target| target != module && !target.starts_with(&format!("{module}/")))
            .collect();
        to.sort();
        to.dedup();
        edges.push((module.clone(), to));
    }
    assert!(edges.len() > 100, "only {} files read", edges.len());
    assert!(
        edges.iter().map(|(_, to)| to.len()).sum::<usize>() > 200,
        "too few imports found: is the scan broken?"
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!("files that import each other: {cycle}");
    }
}

#[test]
fn the_cycle_scan_resolves_super_and_groups() {
    assert_eq!(
        named_paths(
            "use super::{Key, kinds::Kind};\nuse crate::model::Item;\nlet x = super::super::super::http::get();",
            "notify/kinds/email"
        ),
        [
            "notify/kinds/Key",
            "notify/kinds/kinds/Kind",
            "model/Item",
            "http/get"
        ]
    );
}
