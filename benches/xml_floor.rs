//! The floor under newshound's parsing: how fast this machine can read every feed file
//! in a folder, walk its XML with quick-xml and look for the watch words in its text
//! (entities decoded, case folded), on all cores; and, for scale, how long feed-rs (newshound's parser) alone takes
//! over the same files. `benches/fetch_cycle.sh` prints both beside newshound's seed.
//!
//!   cargo bench --bench xml_floor -- DIR

use std::path::PathBuf;
use std::time::Instant;

use aho_corasick::AhoCorasick;
use quick_xml::Reader;
use quick_xml::events::Event;

fn main() {
    let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench --bench xml_floor -- DIR");
        std::process::exit(2);
    };
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("a readable folder")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_file())
        .collect();
    // The text is lower-cased before the search, as any match of Cyrillic words must.
    let words = AhoCorasick::new(["lavrov", "blinken", "nato", "лавров"]).expect("an automaton");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let (items, _) = on_all_cores(&files, cores, |f| {
        let bytes = std::fs::read(f).expect("a readable file");
        let entries = feed_rs::parser::parse(bytes.as_slice()).map_or(0, |feed| feed.entries.len());
        (entries, 0)
    });
    let secs = started.elapsed().as_secs_f64();
    println!("feed-rs alone: {items} items in {secs:.3} s on {cores} cores");
    let started = Instant::now();
    let (items, hits) = on_all_cores(&files, cores, |f| scan(f, &words));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "quick-xml floor: {} files, {items} items, {hits} hits in {secs:.3} s on {cores} cores",
        files.len()
    );
}

/// `work` on every file, the files split evenly over `cores` threads; the sums.
fn on_all_cores(
    files: &[PathBuf],
    cores: usize,
    work: impl Fn(&PathBuf) -> (usize, usize) + Sync,
) -> (usize, usize) {
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(files.len().div_ceil(cores).max(1))
            .map(|chunk| scope.spawn(|| chunk.iter().map(&work).fold((0, 0), sum)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .fold((0, 0), sum)
    })
}

fn sum(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0 + b.0, a.1 + b.1)
}

/// Watch words in a piece of text: entities decoded, case folded, searched.
fn count(words: &AhoCorasick, raw: &str) -> usize {
    let text = quick_xml::escape::unescape(raw).unwrap_or(std::borrow::Cow::Borrowed(raw));
    words.find_iter(&text.to_lowercase()).count()
}

/// Reads one file and walks its XML: (items, watch-word hits).
fn scan(path: &PathBuf, words: &AhoCorasick) -> (usize, usize) {
    let bytes = std::fs::read(path).expect("a readable file");
    let mut reader = Reader::from_reader(bytes.as_slice());
    let (mut items, mut hits) = (0, 0);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if matches!(e.local_name().into_inner(), "item" | "entry") => {
                items += 1;
            }
            Ok(Event::Text(t)) => hits += count(words, &t),
            Ok(Event::CData(t)) => hits += count(words, &t),
            Ok(Event::Eof) | Err(_) => return (items, hits),
            Ok(_) => {}
        }
    }
}
