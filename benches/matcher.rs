//! Matching throughput (MB/s of item text) with 10, 1,000 and 10,000 rules.
//!
//! Items are real-world news feeds from `../shared/corpus/sample-feeds` when present
//! (else the repo's fixtures and demo feeds, repeated), parsed by newshound itself.
//! Rules mix the kinds people write: keyword lists, AND/NOT queries, phrases, prefixes
//! and NEAR, over terms of which one in twenty is a name from the news text.
//!
//!     cargo bench --bench matcher
//!
//! Two rule mixes: `news` (every rule's terms drawn as above, so 10,000 rules bring
//! ten times the terms that occur in the text, and ten times the matches, of 1,000)
//! and `fixed` (only the first 1,000 rules draw from the news; the others never
//! match), which shows what the number of rules alone costs.

use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use newshound::model::{Field, Item};
use newshound::rules::{Lists, RuleSet, RuleSpec};

fn load_items() -> Vec<Item> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("../shared/corpus/sample-feeds/content/real-world");
    let mut files = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(&corpus) {
        files.extend(dirs.flatten().map(|d| d.path().join("feed.xml")));
    } else {
        eprintln!(
            "{} is absent: benchmarking on the bundled fixtures",
            corpus.display()
        );
        for dir in ["tests/fixtures/feeds", "config/demo-feeds"] {
            files.extend(
                std::fs::read_dir(root.join(dir))
                    .expect("bundled feeds")
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    files.sort();
    let mut items: Vec<Item> = files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter_map(|bytes| newshound::feed::parse(&bytes, None).ok())
        .flat_map(|feed| feed.items)
        .collect();
    // At least ~2 MB of text per pass, so a pass is long enough to time well.
    let base = items.clone();
    while text_bytes(&items) < 2_000_000 && !base.is_empty() {
        items.extend(base.iter().cloned());
    }
    items
}

fn text_bytes(items: &[Item]) -> u64 {
    items
        .iter()
        .map(|i| {
            [Field::Title, Field::Summary, Field::Content]
                .iter()
                .map(|f| f.text(i).len() as u64)
                .sum::<u64>()
        })
        .sum()
}

/// Words of the news text (so some rules hit) and made-up names (most rules miss, as
/// most watch rules miss most stories).
fn vocabulary(items: &[Item]) -> Vec<String> {
    let mut words: Vec<String> = items
        .iter()
        .flat_map(|i| {
            i.title
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
        // Capitalised words of five letters or more: names and places, what watch
        // rules are about.
        .filter(|w| {
            w.chars().count() >= 5
                && w.chars().all(char::is_alphanumeric)
                && w.starts_with(char::is_uppercase)
        })
        .collect();
    words.sort();
    words.dedup();
    words
}

/// `n` rules; only the first `from_news` of them may use words from the news.
fn rules(n: usize, from_news: usize, vocabulary: &[String]) -> Vec<RuleSpec> {
    let mut rng = fastrand::Rng::with_seed(n as u64);
    (0..n)
        .map(|i| rule(i, i < from_news, vocabulary, &mut rng))
        .collect()
}

fn rule(i: usize, from_news: bool, vocabulary: &[String], rng: &mut fastrand::Rng) -> RuleSpec {
    let term = |rng: &mut fastrand::Rng| -> String {
        if from_news && rng.u8(0..20) == 0 && !vocabulary.is_empty() {
            vocabulary[rng.usize(0..vocabulary.len())].clone()
        } else {
            format!("Zorv{}ex{}", rng.u32(0..1_000_000), rng.u16(..))
        }
    };
    let name = format!("rule-{i}");
    if i == 0 && !vocabulary.is_empty() {
        // Every set watches at least one word that occurs, as real ones do: a set of
        // made-up words only would let the automaton's prefilter skip the whole text.
        return RuleSpec::keywords(&name, &[&vocabulary[0], &term(rng)]);
    }
    match i % 5 {
        0 => RuleSpec::keywords(&name, &[&term(rng), &term(rng), &term(rng)]),
        1 => RuleSpec::query(
            &name,
            &format!("\"{}\" AND NOT \"{}\"", term(rng), term(rng)),
        ),
        2 => RuleSpec::query(
            &name,
            &format!("\"{} {}\" OR {}*", term(rng), term(rng), term(rng)),
        ),
        3 => RuleSpec::query(
            &name,
            &format!("\"{}\" NEAR/5 \"{}\"", term(rng), term(rng)),
        ),
        _ => RuleSpec::query(
            &name,
            &format!(
                "title:\"{}\" (\"{}\" OR \"{}\")",
                term(rng),
                term(rng),
                term(rng)
            ),
        ),
    }
}

fn matching(c: &mut Criterion) {
    let items = load_items();
    let vocabulary = vocabulary(&items);
    let bytes = text_bytes(&items);
    eprintln!(
        "{} items, {:.1} MB of text, {} vocabulary words",
        items.len(),
        bytes as f64 / 1e6,
        vocabulary.len()
    );
    for (mix, from_news) in [("news", usize::MAX), ("fixed", 1_000)] {
        let mut group = c.benchmark_group(format!("match-{mix}"));
        group.throughput(Throughput::Bytes(bytes));
        group.sample_size(10);
        for n in [10, 1_000, 10_000] {
            let set = RuleSet::compile(&rules(n, from_news, &vocabulary), &Lists::new())
                .expect("rules compile");
            let fired: usize = items.iter().map(|i| set.matches("feed", i).len()).sum();
            eprintln!("{mix}, {n} rules: {fired} rule matches per pass");
            group.bench_with_input(BenchmarkId::new("rules", n), &set, |b, set| {
                b.iter(|| {
                    items
                        .iter()
                        .map(|i| set.matches("feed", i).len())
                        .sum::<usize>()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, matching);
criterion_main!(benches);
