//! Rewrites of a story: pairwise precision and recall of the gist that finds them, on
//! the labelled sets of the `copies` bench, per model. A pair is merged as the store
//! merges it: the meanings are at the threshold or closer, and the evidence agrees
//! (names in common, numbers, dates); see `newshound::model::gist`.
//!
//! For each model it prints a row per threshold (the model's default marked), then
//! what each signal adds at the default: meaning alone, with names, with numbers, with
//! dates. Precision counts every merged pair that is one story (copies merged here are
//! right too); recall is of the rewrite pairs. The builtin model always runs;
//! all-MiniLM-L6-v2 when `NEWSHOUND_TEST_MINILM` names its directory.
//!
//!     cargo bench --bench rewrites [-- path/to/set.json …]

use std::time::Instant;

use newshound::model::gist::MIN_SHARED_NAMES;
use newshound::semantic::{Model, Setting};

#[path = "stories/mod.rs"]
mod stories;
use stories::{Labelled, Pair};

fn main() {
    let sets = stories::read();
    let mut models = vec![("builtin".to_owned(), Setting::Builtin)];
    match std::env::var_os("NEWSHOUND_TEST_MINILM") {
        Some(dir) => models.push((
            "all-MiniLM-L6-v2".to_owned(),
            Setting::Directory(dir.into()),
        )),
        None => println!("all-MiniLM-L6-v2: skipped (set NEWSHOUND_TEST_MINILM to its directory)"),
    }
    for (name, setting) in models {
        let model = Model::load(&setting).unwrap_or_else(|e| panic!("{name}: {e}"));
        let default = model.info().default_rewrite_threshold;
        for (file, items) in &sets {
            measure(&name, &model, default, file, items);
        }
    }
}

/// One pair as the signals see it.
struct Scored {
    pair: Pair,
    similarity: f32,
    names: bool,
    numbers: bool,
    dates: bool,
}

fn measure(name: &str, model: &Model, default: f32, file: &str, items: &[Labelled]) {
    let began = Instant::now();
    let gists = stories::gists(model, items);
    let per_item = began.elapsed() / items.len() as u32;
    let size = gists.iter().flatten().map(|g| g.to_bytes().len()).max();
    let scored: Vec<Scored> = stories::pairs(items)
        .filter_map(|(i, j, pair)| {
            let (a, b) = (gists[i].as_ref()?, gists[j].as_ref()?);
            Some(Scored {
                pair,
                similarity: a.similarity(b),
                names: a.shared_names(b) >= MIN_SHARED_NAMES,
                numbers: a.numbers_agree(b),
                dates: a.dates_close(b),
            })
        })
        .collect();
    let rewrites = scored.iter().filter(|s| s.pair == Pair::Rewrites).count();
    println!(
        "{name}, {file}: {} items, {rewrites} rewrite pairs; a gist in {per_item:?} \
         (embedding included), {} bytes at most",
        items.len(),
        size.unwrap_or(0)
    );
    let precision = |merged: &dyn Fn(&Scored) -> bool| {
        let merged: Vec<&Scored> = scored.iter().filter(|s| merged(s)).collect();
        let right = merged
            .iter()
            .filter(|s| matches!(s.pair, Pair::Copies | Pair::Rewrites))
            .count();
        (right as f64 / merged.len().max(1) as f64, merged)
    };
    let row = |label: &str, merged: &dyn Fn(&Scored) -> bool| {
        let (precision, merged) = precision(merged);
        let found = merged.iter().filter(|s| s.pair == Pair::Rewrites).count();
        let kind = |p: Pair| merged.iter().filter(|s| s.pair == p).count();
        format!(
            "| {label} | {:.3} | {precision:.3} | {} | {} |",
            found as f64 / rewrites.max(1) as f64,
            kind(Pair::Decoy),
            kind(Pair::Different)
        )
    };
    // The decoys of the fixture sets are all two days or more after their story, so
    // the dates alone tell them apart; a follow-up the next day would not be. The
    // next column is the precision the other signals give on their own; the last,
    // that of meaning and names alone (what is left for texts that give no numbers).
    println!(
        "| threshold | rewrites recall | precision | decoys merged | others merged | \
         precision without dates | meaning and names alone |"
    );
    println!("|---|---|---|---|---|---|---|");
    for step in -6..=4 {
        let threshold = default + step as f32 * 0.025;
        let mark = if step == 0 { " (default)" } else { "" };
        let close = |s: &Scored| s.similarity >= threshold && s.names && s.numbers;
        let (undated, _) = precision(&|s| close(s));
        let (named, _) = precision(&|s| s.similarity >= threshold && s.names);
        let row = row(&format!("{threshold:.3}{mark}"), &|s| close(s) && s.dates);
        println!("{row} {undated:.3} | {named:.3} |");
    }
    println!(
        "| signals at {default:.3} | rewrites recall | precision | decoys merged | others merged |"
    );
    println!("|---|---|---|---|---|");
    let close = |s: &Scored| s.similarity >= default;
    println!("{}", row("meaning alone", &|s| close(s)));
    println!("{}", row("and names", &|s| close(s) && s.names));
    println!(
        "{}",
        row("and names, numbers", &|s| close(s) && s.names && s.numbers)
    );
    println!(
        "{}",
        row("and names, dates", &|s| close(s) && s.names && s.dates)
    );
    println!(
        "{}",
        row("all four", &|s| close(s) && s.names && s.numbers && s.dates)
    );
}
