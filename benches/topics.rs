//! Topic rules: quality on a labelled set and embedding speed, per model.
//!
//!     cargo bench --bench topics [-- DIR]
//!
//! DIR (default `tests/fixtures/topics`) holds one TOML file per topic: a `[rule]`
//! (`name`, `about`, `like`, `unlike`, and the `keywords` a keyword rule would use)
//! and `[[items]]` (`title`, `summary`, `on_topic`). Every rule is tried on every item
//! of every file; an item is on a rule's topic when its own file says so. For each
//! model the bench prints precision, recall and F1 at the model's default
//! `min_score`, the recall on the on-topic items that contain none of the keywords,
//! the same figures for the keyword rule, and F1 over a range of thresholds (to
//! choose the default). The builtin model always runs; all-MiniLM-L6-v2 runs when
//! `NEWSHOUND_TEST_MINILM` names its directory.
//!
//! Speed: items of a title and a 300-word summary, embedded on one thread and on
//! every core, in items per second.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use newshound::model::{Item, ItemKey};
use newshound::rules::{Embedder, Lists, RuleSet, RuleSpec, TopicSpec};
use newshound::semantic::{Model, Setting};
use serde::Deserialize;

#[derive(Deserialize)]
struct TopicFile {
    rule: LabelledRule,
    items: Vec<LabelledItem>,
}

#[derive(Deserialize)]
struct LabelledRule {
    name: String,
    about: String,
    #[serde(default)]
    like: Vec<String>,
    #[serde(default)]
    unlike: Vec<String>,
    keywords: Vec<String>,
}

#[derive(Deserialize)]
struct LabelledItem {
    title: String,
    summary: String,
    on_topic: bool,
}

struct Labelled {
    topics: Vec<LabelledRule>,
    /// Each item with the index of the topic it is on, if any.
    items: Vec<(Item, Option<usize>)>,
}

fn read(dir: &Path) -> Labelled {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut labelled = Labelled {
        topics: Vec::new(),
        items: Vec::new(),
    };
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read a topic file");
        let file: TopicFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let topic = labelled.topics.len();
        for (i, item) in file.items.into_iter().enumerate() {
            let key = format!("{}-{i}", file.rule.name);
            labelled.items.push((
                Item {
                    key: ItemKey(key),
                    title: item.title,
                    link: None,
                    published: None,
                    summary: item.summary,
                    content: String::new(),
                    author: String::new(),
                    categories: String::new(),
                    html: None,
                    article: String::new(),
                },
                item.on_topic.then_some(topic),
            ));
        }
        labelled.topics.push(file.rule);
    }
    labelled
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
    /// On-topic items without the keywords: found, and all.
    plain_found: usize,
    plain: usize,
}

impl Counts {
    fn add(&mut self, predicted: bool, actual: bool, plain: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
        if actual && plain {
            self.plain += 1;
            self.plain_found += usize::from(predicted);
        }
    }

    fn line(&self) -> String {
        let p = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let r = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        format!(
            "precision {p:.3}  recall {r:.3}  F1 {f1:.3}  recall without the keywords {:.3} ({}/{})  [tp {} fp {} fn {}]",
            self.plain_found as f64 / self.plain.max(1) as f64,
            self.plain_found,
            self.plain,
            self.tp,
            self.fp,
            self.fn_
        )
    }

    fn f1(&self) -> f64 {
        2.0 * self.tp as f64 / (2 * self.tp + self.fp + self.fn_).max(1) as f64
    }
}

fn keyword_rules(set: &Labelled) -> RuleSet {
    let specs: Vec<RuleSpec> = set
        .topics
        .iter()
        .map(|t| {
            let words: Vec<&str> = t.keywords.iter().map(String::as_str).collect();
            RuleSpec::keywords(&t.name, &words)
        })
        .collect();
    RuleSet::compile(&specs, &Lists::new()).expect("keyword rules compile")
}

fn topic_specs(set: &Labelled) -> Vec<RuleSpec> {
    set.topics
        .iter()
        .map(|t| RuleSpec {
            condition: newshound::rules::Condition::Always,
            topic: Some(TopicSpec {
                about: t.about.clone(),
                like: t.like.clone(),
                unlike: t.unlike.clone(),
                min_score: None,
            }),
            ..RuleSpec::keywords(&t.name, &[])
        })
        .collect()
}

fn quality(name: &str, model: Arc<Model>, set: &Labelled, keywords: &RuleSet) {
    let default = model.info().default_min_score;
    let rules = RuleSet::compile_with(&topic_specs(set), &Lists::new(), model as Arc<dyn Embedder>)
        .expect("topic rules compile");
    let mut at_default = Counts::default();
    let mut by_keywords = Counts::default();
    let thresholds: Vec<f32> = (20..=70).map(|t| t as f32 / 100.0).collect();
    let mut swept = vec![Counts::default(); thresholds.len()];
    for (item, on) in &set.items {
        let words: Vec<&str> = keywords.matches("f", item).iter().map(|m| m.rule).collect();
        let scores = rules.topic_scores("f", item);
        for (t, topic) in set.topics.iter().enumerate() {
            let actual = *on == Some(t);
            let plain = !words.contains(&topic.name.as_str());
            let (_, score) = scores
                .iter()
                .find(|(rule, _)| *rule == topic.name)
                .expect("every topic is scored");
            at_default.add(score.matched(), actual, plain);
            by_keywords.add(!plain, actual, plain);
            for (counts, &th) in swept.iter_mut().zip(&thresholds) {
                counts.add(
                    score.vetoed_by.is_none() && score.score >= th,
                    actual,
                    plain,
                );
            }
        }
    }
    println!(
        "{name}, default min_score {default:.2}: {}",
        at_default.line()
    );
    println!("{name}, keyword rules:              {}", by_keywords.line());
    let sweep: Vec<String> = thresholds
        .iter()
        .zip(&swept)
        .filter(|(th, _)| (*th * 100.0).round() as i32 % 2 == 0)
        .map(|(th, c)| format!("{th:.2}:{:.3}", c.f1()))
        .collect();
    println!("{name}, F1 by min_score: {}", sweep.join(" "));
}

/// Items of a title and a 300-word summary, made of the labelled set's own sentences.
fn long_items(set: &Labelled, count: usize) -> Vec<String> {
    let words: Vec<&str> = set
        .items
        .iter()
        .flat_map(|(item, _)| item.summary.split_whitespace())
        .collect();
    (0..count)
        .map(|i| {
            let title = &set.items[i % set.items.len()].0.title;
            let start = (i * 37) % (words.len() - 300);
            format!("{title}\n{}", words[start..start + 300].join(" "))
        })
        .collect()
}

fn speed(name: &str, model: &Model, texts: &[String]) {
    let start = Instant::now();
    for text in texts {
        std::hint::black_box(model.embed(text));
    }
    let one = texts.len() as f64 / start.elapsed().as_secs_f64();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for chunk in texts.chunks(texts.len().div_ceil(threads)) {
            scope.spawn(move || {
                for text in chunk {
                    std::hint::black_box(model.embed(text));
                }
            });
        }
    });
    let all = texts.len() as f64 / start.elapsed().as_secs_f64();
    println!(
        "{name}: {one:.0} items/s on one thread, {all:.0} items/s on {threads} (title + 300-word summary, {} items)",
        texts.len()
    );
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/topics"),
            PathBuf::from,
        );
    let set = read(&dir);
    let on = set.items.iter().filter(|(_, on)| on.is_some()).count();
    println!(
        "{}: {} topics, {} items ({on} on a topic); every rule tried on every item",
        dir.display(),
        set.topics.len(),
        set.items.len()
    );
    let keywords = keyword_rules(&set);
    let mut models = vec![("builtin", Setting::Builtin, 20_000)];
    if let Some(dir) = std::env::var_os("NEWSHOUND_TEST_MINILM") {
        models.push(("all-MiniLM-L6-v2", Setting::Directory(dir.into()), 300));
    } else {
        println!("all-MiniLM-L6-v2: skipped (set NEWSHOUND_TEST_MINILM to its directory)");
    }
    for (name, setting, count) in models {
        let model = Arc::new(Model::load(&setting).expect("the model loads"));
        println!(
            "{name}: loaded in {:.0?}, {} dimensions, {} MB of weights",
            model.info().load_time,
            model.info().dims,
            model.info().bytes >> 20
        );
        quality(name, Arc::clone(&model), &set, &keywords);
        speed(name, &model, &long_items(&set, count));
    }
}
