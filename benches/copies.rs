//! Copies of a story: pairwise precision and recall of the sketch that finds them, on
//! a labelled set (`tests/fixtures/stories/*.json`: stories each told by an original,
//! syndicated copies, rewrites, a decoy with the same people and a different story,
//! and unrelated items). A pair is merged as the store merges it: the two sketches
//! share a band, and agree on at least the threshold's fraction of their hashes.
//! Prints a row per threshold, the cost of a sketch, and its size; then what finding
//! copies, and copies and rewrites, adds to queueing an alert in the store (SQLite in
//! a temp dir). The `rewrites` bench measures how well rewrites are found.
//!
//!     cargo bench --bench copies                       # both fixture sets
//!     cargo bench --bench copies -- path/to/set.json   # another set, same format

use std::time::Instant;

use newshound::model::{Gist, Sketch};
use newshound::semantic::{Model, Setting};

#[path = "stories/mod.rs"]
mod stories;
use stories::{Labelled, Pair};

fn main() {
    let mut all = Vec::new();
    for (file, items) in stories::read() {
        measure(&file, &items);
        all.extend(items);
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let model = Model::load(&Setting::Builtin).expect("the builtin model");
    let gists = stories::gists(&model, &all);
    let best = runtime.block_on(async {
        // Twice each, in turn, so that none has the warmer cache.
        let mut times = Vec::new();
        for _ in 0..2 {
            for finding in [Finding::Nothing, Finding::Copies, Finding::Rewrites] {
                times.push((finding, queue_time(&all, &gists, finding).await));
            }
        }
        move |f: Finding| {
            times
                .iter()
                .filter(|(t, _)| *t == f)
                .map(|(_, d)| *d)
                .min()
                .expect("timed")
        }
    });
    let per = |f: Finding| best(f).as_secs_f64() * 1e6 / POLLS as f64;
    println!(
        "store: {POLLS} polls of one alert each, 100 at a time: {:.1} µs an alert with nothing \
         looked up; copies looked up {:+.1} µs; copies and rewrites (merge_rewrites, builtin \
         model, its embedding not counted) {:+.1} µs",
        per(Finding::Nothing),
        per(Finding::Copies) - per(Finding::Nothing),
        per(Finding::Rewrites) - per(Finding::Nothing)
    );
}

/// What the store looks for when it queues an alert in [`queue_time`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finding {
    /// The same link or title only.
    Nothing,
    /// Copies too (the items' sketches).
    Copies,
    /// Copies and rewrites (their sketches and gists).
    Rewrites,
}

/// Polls the store records in [`queue_time`].
const POLLS: usize = 2000;

/// How long the store takes to record `POLLS` polls of one alert each (the labelled
/// items in turn, each under a key, link and title of its own), 100 at a time as polls
/// finishing together do, finding what `finding` says.
async fn queue_time(
    items: &[Labelled],
    gists: &[Option<Gist>],
    finding: Finding,
) -> std::time::Duration {
    use newshound::model::{Alert, FeedId, ItemKey, RuleFields, Snippet};
    use newshound::store::{Dedupe, PollRecord, Store};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store");
    let poll = |n: usize| {
        let item = &items[n % items.len()];
        let gist = &gists[n % items.len()];
        let feed = FeedId(format!("f{}", n % 100));
        let alert = Alert {
            feed: feed.clone(),
            key: ItemKey(format!("k{n}")),
            title: format!("{} ({n})", item.title),
            link: Some(format!("https://news.example/{n}")),
            published: None,
            rules: vec!["r".into()],
            terms: Vec::new(),
            snippet: Snippet::default(),
            why: vec![RuleFields {
                rule: "r".into(),
                fields: Vec::new(),
                meaning: None,
            }],
            summary_html: None,
            also_in: Vec::new(),
            sketch: (finding != Finding::Nothing)
                .then(|| Sketch::of(&[&item.title, &item.summary]))
                .flatten(),
            gist: gist.clone().filter(|_| finding == Finding::Rewrites),
            priority: Default::default(),
            feedback: Vec::new(),
        };
        PollRecord {
            new_keys: vec![alert.key.clone()],
            present: vec![alert.key.clone()],
            alerts: vec![("inbox".into(), alert)],
            dedupe: Dedupe {
                window: std::time::Duration::from_secs(24 * 60 * 60),
                copy_threshold: 0.35,
                rewrite_threshold: (finding == Finding::Rewrites)
                    .then_some(newshound::semantic::STATIC_REWRITE_THRESHOLD),
            },
            ..PollRecord::new(feed, chrono::Utc::now())
        }
    };
    let began = Instant::now();
    for batch in (0..POLLS).collect::<Vec<_>>().chunks(100) {
        let polls = batch.iter().map(|n| store.record_poll(poll(*n)));
        for recorded in futures_util::future::join_all(polls).await {
            recorded.expect("recorded");
        }
    }
    began.elapsed()
}

fn measure(file: &str, items: &[Labelled]) {
    let began = Instant::now();
    let sketches: Vec<Option<Sketch>> = items
        .iter()
        .map(|i| Sketch::of(&[&i.title, &i.summary]))
        .collect();
    let per_item = began.elapsed() / items.len() as u32;
    let mut pairs = Vec::new();
    for (i, j, pair) in stories::pairs(items) {
        let (Some(sa), Some(sb)) = (&sketches[i], &sketches[j]) else {
            continue;
        };
        let banded = sa.bands().iter().any(|band| sb.bands().contains(band));
        pairs.push((pair, banded, sa.similarity(sb)));
    }
    let count = |kind: Pair| pairs.iter().filter(|(p, ..)| *p == kind).count();
    println!(
        "{file}: {} items, {} copy pairs, {} rewrite pairs, {} decoy pairs, {} others; \
         a sketch in {per_item:?}, {} bytes and {} band keys",
        items.len(),
        count(Pair::Copies),
        count(Pair::Rewrites),
        count(Pair::Decoy),
        count(Pair::Different),
        newshound::model::sketch::HASHES * 4,
        newshound::model::sketch::BANDS,
    );
    let highest = |kinds: &[Pair]| {
        pairs
            .iter()
            .filter(|(p, ..)| kinds.contains(p))
            .map(|(.., s)| *s)
            .fold(0.0f32, f32::max)
    };
    let lowest_copy = pairs
        .iter()
        .filter(|(p, ..)| *p == Pair::Copies)
        .map(|(.., s)| *s)
        .fold(1.0f32, f32::min);
    println!(
        "similarity: copies {lowest_copy:.2} at the lowest; decoys {:.2} at the highest, \
         other stories {:.2}, rewrites {:.2}",
        highest(&[Pair::Decoy]),
        highest(&[Pair::Different]),
        highest(&[Pair::Rewrites])
    );
    println!(
        "| threshold | copies recall | copies precision | rewrites merged | decoys merged | others merged |"
    );
    println!("|---|---|---|---|---|---|");
    for threshold in [0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7] {
        let merged = |kind: Pair| {
            pairs
                .iter()
                .filter(|(p, banded, s)| *p == kind && *banded && *s >= threshold)
                .count()
        };
        let (copies, rewrites) = (merged(Pair::Copies), merged(Pair::Rewrites));
        let wrong = merged(Pair::Decoy) + merged(Pair::Different);
        println!(
            "| {threshold:.2} | {:.3} | {:.3} | {rewrites} of {} | {} | {} |",
            copies as f64 / count(Pair::Copies).max(1) as f64,
            (copies + rewrites) as f64 / (copies + rewrites + wrong).max(1) as f64,
            count(Pair::Rewrites),
            merged(Pair::Decoy),
            merged(Pair::Different)
        );
    }
}
