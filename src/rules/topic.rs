//! Topic clauses (`about`, `like`, `unlike`): an item's vector scored against the
//! vectors of a rule's texts. The vectors come from an [`Embedder`] (the semantic
//! model); nothing here knows how they are made.
//!
//! The score is the mean of the best similarity to the `about`/`like` texts and the
//! average similarity to all of them: on the labelled set in `tests/fixtures/topics`
//! this mix did better than either alone for both the builtin table and MiniLM (the
//! best text alone lets one loose example pull in near misses; the average alone
//! punishes a story that fits one example well). An item more similar to an `unlike`
//! text than to every `about`/`like` text does not match, whatever its score.

use std::fmt;

use super::FieldSet;
use crate::model::{Field, Item};

/// Turns text into a normalised vector: the semantic model, as rules see it.
pub trait Embedder: Send + Sync {
    fn embed(&self, text: &str) -> Vec<f32>;
    /// A topic rule's `min_score` when it gives none.
    fn default_min_score(&self) -> f32;
}

/// A rule's topic, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSpec {
    pub about: String,
    pub like: Vec<String>,
    pub unlike: Vec<String>,
    /// `None`: the model's default.
    pub min_score: Option<f32>,
}

/// A topic with its texts' vectors.
#[derive(Clone)]
pub struct Topic {
    /// `about` first, then the `like` examples.
    positives: Vec<(String, Vec<f32>)>,
    negatives: Vec<(String, Vec<f32>)>,
    pub min_score: f32,
    pub fields: FieldSet,
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("about", &self.positives[0].0)
            .field("min_score", &self.min_score)
            .finish()
    }
}

/// How close an item came to a rule's topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScore<'r> {
    pub score: f32,
    /// The `about` or `like` text nearest the item.
    pub closest: &'r str,
    /// The `unlike` text nearest the item and its similarity, when it is nearer than
    /// every `about`/`like` text (then the rule does not match).
    pub vetoed_by: Option<(&'r str, f32)>,
    pub min_score: f32,
}

impl TopicScore<'_> {
    pub fn matched(&self) -> bool {
        self.vetoed_by.is_none() && self.score >= self.min_score
    }
}

impl Topic {
    pub fn new(spec: &TopicSpec, fields: FieldSet, embedder: &dyn Embedder) -> Topic {
        let embed = |text: &String| (text.clone(), embedder.embed(text));
        Topic {
            positives: std::iter::once(&spec.about)
                .chain(&spec.like)
                .map(embed)
                .collect(),
            negatives: spec.unlike.iter().map(embed).collect(),
            min_score: spec.min_score.unwrap_or(embedder.default_min_score()),
            fields,
        }
    }

    /// Adds an example learned from feedback: one more like the topic (`like`), or an
    /// unlike one, already embedded.
    pub fn learn(&mut self, like: bool, text: &str, vector: Vec<f32>) {
        let examples = if like {
            &mut self.positives
        } else {
            &mut self.negatives
        };
        examples.push((text.to_owned(), vector));
    }

    /// `vector`'s score (the item's, made of [`topic_text`]).
    pub fn score(&self, vector: &[f32]) -> TopicScore<'_> {
        let (closest, best, sum) = self.positives.iter().fold(
            ("", f32::NEG_INFINITY, 0.0),
            |(closest, best, sum), (text, v)| {
                let s = cosine(vector, v);
                if s > best {
                    (text.as_str(), s, sum + s)
                } else {
                    (closest, best, sum + s)
                }
            },
        );
        let vetoed_by = self
            .negatives
            .iter()
            .map(|(text, v)| (text.as_str(), cosine(vector, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|&(_, s)| s > best);
        TopicScore {
            score: 0.5 * best + 0.5 * sum / self.positives.len() as f32,
            closest,
            vetoed_by,
            min_score: self.min_score,
        }
    }
}

/// The text of `item` that a topic over `fields` reads: the title, the summary, the
/// content (unless it only repeats the summary), the article, then author, categories
/// and link when asked for; one paragraph each.
pub fn topic_text(item: &Item, fields: FieldSet) -> String {
    const ORDER: [Field; 7] = [
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Article,
        Field::Author,
        Field::Category,
        Field::Link,
    ];
    let summary = item.summary.trim();
    let repeats_summary = !summary.is_empty()
        && fields.contains(Field::Summary)
        && item.content.trim_start().starts_with(summary);
    let mut out = String::new();
    for field in ORDER {
        let part = field.text(item).trim();
        if part.is_empty()
            || !fields.contains(field)
            || (field == Field::Content && repeats_summary)
        {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(part);
    }
    out
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
