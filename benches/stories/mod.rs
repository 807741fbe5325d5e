//! The labelled sets of stories (`tests/fixtures/stories/*.json`) that the `copies`
//! and `rewrites` benches measure on: stories each told by an original, syndicated
//! copies and rewrites, a decoy with the same people and a different story, and
//! unrelated items.

use newshound::model::Gist;
use serde::Deserialize;

#[derive(Deserialize)]
struct Set {
    items: Vec<Labelled>,
}

#[derive(Deserialize)]
pub struct Labelled {
    pub story: String,
    pub kind: String,
    pub title: String,
    pub summary: String,
    pub published: chrono::DateTime<chrono::Utc>,
}

/// What a pair is, by its labels.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// Both the original or copies of one story.
    Copies,
    /// One story, one of them rewritten.
    Rewrites,
    /// Different stories, one of them a decoy (the same people).
    Decoy,
    /// Different stories.
    Different,
}

impl Pair {
    pub fn of(a: &Labelled, b: &Labelled) -> Pair {
        let copy = |l: &Labelled| l.kind == "original" || l.kind == "copy";
        if a.story == b.story {
            if copy(a) && copy(b) {
                Pair::Copies
            } else {
                Pair::Rewrites
            }
        } else if a.kind == "decoy" || b.kind == "decoy" {
            Pair::Decoy
        } else {
            Pair::Different
        }
    }
}

/// The sets the command line names (`*.json`), or both fixture sets: each file's
/// name and items.
pub fn read() -> Vec<(String, Vec<Labelled>)> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.ends_with(".json"))
        .collect();
    let files = if args.is_empty() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stories");
        vec![format!("{dir}/dev.json"), format!("{dir}/holdout.json")]
    } else {
        args
    };
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
            let set: Set = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            (file, set.items)
        })
        .collect()
}

/// The gist of each item (title and summary) with `model`, as the daemon makes it.
pub fn gists(model: &newshound::semantic::Model, items: &[Labelled]) -> Vec<Option<Gist>> {
    items
        .iter()
        .map(|i| {
            let vector = model.embed(&format!("{}\n{}", i.title, i.summary));
            Gist::new(&vector, &[&i.title, &i.summary], Some(i.published))
        })
        .collect()
}

/// Every pair of `items` with what it is, once each.
pub fn pairs(items: &[Labelled]) -> impl Iterator<Item = (usize, usize, Pair)> + '_ {
    (0..items.len()).flat_map(move |i| {
        (i + 1..items.len()).map(move |j| (i, j, Pair::of(&items[i], &items[j])))
    })
}
