//! `test-rules`: fetch, parse and match without recording or sending anything, as
//! the daemon matches: after the filters, with what feedback taught the topic rules.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;

use super::{TestRulesArgs, UsageError};
use crate::config::Config;
use crate::daemon;
use crate::feed::{Document, Fetcher};
use crate::model::Validators;
use crate::model::{FeedSource, Gist, Meaning, RequestOptions, Sketch, StoryKeys};
use crate::rules::{self, RuleSet};
use crate::store::Store;

pub(super) async fn test_rules(config: &Config, args: &TestRulesArgs) -> anyhow::Result<ExitCode> {
    let store = state(config, args).await?;
    let rules = taught(config, store.as_ref()).await;
    let mut out = std::io::stdout().lock();
    let (mut items, mut dropped, mut matched, mut failed) = (0, 0, 0, 0);
    let mut stories = Stories::default();
    for (name, parsed) in feeds(config, args, store.as_ref()).await? {
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                eprintln!("{name}: {e:#}");
                failed += 1;
                continue;
            }
        };
        for item in &parsed {
            items += 1;
            if let Some(filter) = config.filters.dropped_by(&name, item) {
                dropped += 1;
                if args.explain && !args.json {
                    report_dropped(&mut out, &rules, filter, &name, item)?;
                }
                continue;
            }
            if report(&mut out, &rules, args, &name, item)? {
                matched += 1;
                let explain = args.explain && !args.json;
                if let Some(why) = explain
                    .then(|| stories.place(config, &name, item))
                    .flatten()
                {
                    writeln!(out, "  {why}")?;
                }
            }
        }
    }
    if stories.merged > 0 {
        eprintln!(
            "{} matched items are the same story as one before them, and would be merged \
             into its alert where they go to the same channel",
            stories.merged
        );
    }
    let dropped = match config.filters.is_empty() {
        true => String::new(),
        false => format!("{dropped} dropped by filters, "),
    };
    eprintln!("{items} items, {dropped}{matched} matched, {failed} feeds failed");
    if failed > 0 {
        bail!("{failed} feed(s) could not be read");
    }
    Ok(ExitCode::SUCCESS)
}

/// The daemon's state where it is wanted: `--since` reads its items there, and topic
/// rules the examples feedback taught them. Without `--since` a state that cannot be
/// read is left out, with a word on stderr.
async fn state(config: &Config, args: &TestRulesArgs) -> anyhow::Result<Option<Store>> {
    if args.since.is_some() {
        return Ok(daemon::open_store(config, daemon::Access::ReadOnly).await?);
    }
    if !config.rules.has_topics() {
        return Ok(None);
    }
    Ok(daemon::open_store(config, daemon::Access::ReadOnly)
        .await
        .unwrap_or_else(|e| {
            eprintln!("the examples learned from feedback are left out: {e}");
            None
        }))
}

/// The rules as the daemon matches with them: with the examples feedback taught their
/// topic rules, where the state holds some.
async fn taught<'a>(config: &'a Config, store: Option<&Store>) -> Cow<'a, RuleSet> {
    let Some(store) = store.filter(|_| config.rules.has_topics()) else {
        return Cow::Borrowed(&config.rules);
    };
    match store.learned().await {
        Ok(learned) if !learned.is_empty() => Cow::Owned(daemon::taught(&config.rules, &learned)),
        Ok(_) => Cow::Borrowed(&config.rules),
        Err(e) => {
            eprintln!("the examples learned from feedback are left out: {e}");
            Cow::Borrowed(&config.rules)
        }
    }
}

type Items = anyhow::Result<Vec<crate::model::Item>>;

/// The items to test, by feed name: fetched from the chosen source(s), or with
/// `--since`, read from the daemon's state.
async fn feeds(
    config: &Config,
    args: &TestRulesArgs,
    store: Option<&Store>,
) -> anyhow::Result<Vec<(String, Items)>> {
    if let Some(since) = args.since {
        if since > crate::store::RECENT {
            return Err(UsageError(format!(
                "--since {}: newshound keeps items for {}",
                humantime::format_duration(since),
                humantime::format_duration(crate::store::RECENT)
            ))
            .into());
        }
        let Some(store) = store else {
            return Ok(Vec::new());
        };
        let from = crate::model::earlier(chrono::Utc::now(), since);
        let mut by_feed: Vec<(String, Items)> = Vec::new();
        for (feed, item) in store.recent_items(from).await? {
            match by_feed.iter_mut().find(|(name, _)| *name == feed.0) {
                Some((_, Ok(items))) => items.push(item),
                _ => by_feed.push((feed.0, Ok(vec![item]))),
            }
        }
        return Ok(by_feed);
    }
    let base = config.file.parent().unwrap_or(std::path::Path::new("."));
    let sources: Vec<(String, FeedSource, RequestOptions)> =
        match (&args.feed, &args.url, &args.file) {
            (Some(name), _, _) => {
                let feed = config
                    .feeds
                    .iter()
                    .find(|f| f.id.0 == *name)
                    .ok_or_else(|| {
                        UsageError(format!("--feed {name:?}: no [[feeds]] entry has that name"))
                    })?;
                vec![(feed.id.0.clone(), feed.source.clone(), feed.request.clone())]
            }
            (_, Some(url), _) => {
                let source =
                    FeedSource::parse(url, base).map_err(|e| UsageError(format!("--url: {e}")))?;
                let name = named_like_config(config, &source, url);
                vec![(name, source, config.daemon.request.clone())]
            }
            (_, _, Some(path)) => {
                let source = FeedSource::File(std::path::absolute(path)?);
                vec![(
                    named_like_config(config, &source, &path.display().to_string()),
                    source,
                    RequestOptions::default(),
                )]
            }
            _ => config
                .feeds
                .iter()
                .map(|f| (f.id.0.clone(), f.source.clone(), f.request.clone()))
                .collect(),
        };
    let fetcher = Fetcher::new(config.daemon.fetch_timeout, config.daemon.max_feed_bytes)?;
    let mut fetched = Vec::with_capacity(sources.len());
    for (name, source, request) in sources {
        let parsed = match fetcher
            .fetch(&source, &Validators::default(), &request)
            .await
        {
            Ok(mut fetched) => match Document::take(&mut fetched, &source) {
                Some(document) => document
                    .parse(config.daemon.max_items_per_feed)
                    .map(|p| p.items)
                    .map_err(anyhow::Error::from),
                None => Err(anyhow::anyhow!("unexpected 304 without validators")),
            },
            Err(e) => Err(e.into()),
        };
        fetched.push((name, parsed));
    }
    Ok(fetched)
}

/// The stories `--explain` has seen, to say which later items the daemon would merge
/// into an earlier one's alert, and why (as the store decides, but for the channel
/// and the window: every item shown is compared with every story before it).
#[derive(Default)]
struct Stories {
    /// Each story's first item: feed, title, what dedupe compares.
    firsts: Vec<First>,
    merged: usize,
}

/// The first item of a story, as `Stories` compares later ones with it.
struct First {
    feed: String,
    title: String,
    keys: StoryKeys,
    sketch: Option<Sketch>,
    gist: Option<Gist>,
}

impl First {
    /// Why `later` is the same story, as the store would find it; `None` if it is not.
    fn retold_by(&self, later: &First, config: &Config) -> Option<String> {
        if later.keys.link.is_some() && later.keys.link == self.keys.link {
            return Some("the same link".to_owned());
        }
        if later.keys.title.is_some() && later.keys.title == self.keys.title {
            return Some("the same title".to_owned());
        }
        let copy = config.daemon.copy_threshold;
        let similarity = later.sketch.as_ref().zip(self.sketch.as_ref());
        if let Some(similarity) = similarity.map(|(a, b)| a.similarity(b))
            && similarity >= copy
        {
            return Some(format!(
                "a copy: {:.0}% of their sketches agree (copy_threshold {:.0}%)",
                similarity * 100.0,
                copy * 100.0
            ));
        }
        let threshold = config.rewrite_threshold()?;
        let likeness = later
            .gist
            .as_ref()?
            .same_story(self.gist.as_ref()?, threshold)?;
        Some(format!(
            "a rewrite: similarity {:.2} (rewrite_threshold {threshold:.2}), {} names in \
             common, numbers that agree, published close together",
            likeness.similarity, likeness.shared_names
        ))
    }
}

impl Stories {
    /// Files a matched item: the line that says which story it is the same as, and
    /// why; `None` for a story of its own.
    fn place(&mut self, config: &Config, feed: &str, item: &crate::model::Item) -> Option<String> {
        let this = First {
            feed: feed.to_owned(),
            title: item.title.clone(),
            keys: StoryKeys::of(item.link.as_deref(), &item.title),
            sketch: Sketch::of(&item.story_texts()),
            gist: config.gist(item),
        };
        let same = self.firsts.iter().find_map(|first| {
            let why = first.retold_by(&this, config)?;
            Some(format!(
                "same story as {}: {} ({why})",
                first.feed, first.title
            ))
        });
        match same {
            Some(line) => {
                self.merged += 1;
                Some(line)
            }
            None => {
                self.firsts.push(this);
                None
            }
        }
    }
}

/// How far below a topic rule's `min_score` an item is still shown by `--explain`,
/// as a near miss, so that a threshold can be chosen from both sides.
const NEAR_MISS: f32 = 0.1;

/// Prints one item's matches (if any) as the arguments ask; says whether it matched.
/// `--explain` also shows an item that a topic rule nearly matched, or vetoed.
fn report(
    out: &mut impl Write,
    rules: &RuleSet,
    args: &TestRulesArgs,
    name: &str,
    item: &crate::model::Item,
) -> anyhow::Result<bool> {
    let matches = rules.matches(name, item);
    let topics = if args.explain {
        rules.topic_scores(name, item)
    } else {
        Vec::new()
    };
    let near = topics.iter().any(|(_, t)| {
        !t.matched() && (t.vetoed_by.is_some() || t.score >= t.min_score - NEAR_MISS)
    });
    if matches.is_empty() && !near {
        return Ok(false);
    }
    let rule_names: Vec<&str> = matches.iter().map(|m| m.rule).collect();
    let terms = rules::matched_terms(&matches);
    if args.json {
        let line = MatchLine {
            feed: name,
            key: &item.key.0,
            title: &item.title,
            link: item.link.as_deref(),
            published: item.published.map(crate::model::rfc3339),
            rules: rule_names,
            terms,
            score: matches
                .iter()
                .filter_map(|m| m.topic.as_ref().map(|t| Meaning::rounded(t.score)))
                .max_by(f32::total_cmp),
            spans: matches
                .iter()
                .flat_map(|m| {
                    m.hits.iter().map(|h| SpanLine {
                        rule: m.rule,
                        term: h.term,
                        field: h.field.name(),
                        start: h.span.0,
                        end: h.span.1,
                    })
                })
                .collect(),
        };
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
    } else {
        heading(out, name, item)?;
        if args.explain {
            explain(out, item, &matches, std::io::stdout().is_terminal())?;
            explain_topics(out, &matches, &topics)?;
        } else {
            writeln!(
                out,
                "  rules: {}   terms: {}",
                rule_names.join(", "),
                terms.join(", ")
            )?;
        }
    }
    Ok(!matches.is_empty())
}

/// Under `--explain`, an item a filter dropped that some rule would have matched:
/// which filter, and which rules.
fn report_dropped(
    out: &mut impl Write,
    rules: &RuleSet,
    filter: &str,
    name: &str,
    item: &crate::model::Item,
) -> std::io::Result<()> {
    let matches = rules.matches(name, item);
    if matches.is_empty() {
        return Ok(());
    }
    let rule_names: Vec<&str> = matches.iter().map(|m| m.rule).collect();
    heading(out, name, item)?;
    writeln!(
        out,
        "  dropped by the filter {filter:?}; without it, rules: {}",
        rule_names.join(", ")
    )
}

/// An item as `test-rules` shows it: its feed and title, then its link.
fn heading(out: &mut impl Write, feed: &str, item: &crate::model::Item) -> std::io::Result<()> {
    writeln!(out, "{feed}: {}", item.title)?;
    match &item.link {
        Some(link) => writeln!(out, "  {link}"),
        None => Ok(()),
    }
}

/// One line of `test-rules --json`: the fields in the order DESIGN.md documents, then
/// where each hit is.
#[derive(serde::Serialize)]
struct MatchLine<'a> {
    feed: &'a str,
    key: &'a str,
    title: &'a str,
    link: Option<&'a str>,
    published: Option<String>,
    rules: Vec<&'a str>,
    terms: Vec<String>,
    /// The best score of the topic rules that matched, if any did.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    spans: Vec<SpanLine<'a>>,
}

/// One hit: byte offsets into the plain text of the field.
#[derive(serde::Serialize)]
struct SpanLine<'a> {
    rule: &'a str,
    term: &'a str,
    field: &'a str,
    start: usize,
    end: usize,
}

/// Each rule with its terms, and per field a passage with the hits highlighted: in
/// colour on a terminal, in [brackets] otherwise.
fn explain(
    out: &mut impl Write,
    item: &crate::model::Item,
    matches: &[rules::RuleMatch],
    colour: bool,
) -> std::io::Result<()> {
    let (open, close) = if colour {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("[", "]")
    };
    // A topic rule without words is explained by its score alone (explain_topics).
    for m in matches
        .iter()
        .filter(|m| !m.hits.is_empty() || m.topic.is_none())
    {
        let terms = rules::matched_terms(std::slice::from_ref(m));
        writeln!(out, "  rule {}: {}", m.rule, terms.join(", "))?;
        for field in crate::model::Field::EVERY {
            let spans: Vec<(usize, usize)> = m
                .hits
                .iter()
                .filter(|h| h.field == field)
                .map(|h| h.span)
                .collect();
            if !spans.is_empty() {
                let passage = rules::passage(field.text(item), spans);
                writeln!(
                    out,
                    "    {:>8}: {}",
                    field.name(),
                    passage.marked(open, close)
                )?;
            }
        }
    }
    Ok(())
}

/// Each topic rule's score against its threshold: the nearest `about`/`like` text,
/// and the `unlike` text that vetoed a match. Topic rules whose words did not hold
/// (an `about` beside a `query`) are marked so.
fn explain_topics(
    out: &mut impl Write,
    matches: &[rules::RuleMatch],
    topics: &[(&str, rules::TopicScore)],
) -> std::io::Result<()> {
    for (rule, t) in topics {
        let verdict = if matches.iter().any(|m| m.rule == *rule) {
            "matched by meaning"
        } else if t.vetoed_by.is_some() {
            "vetoed"
        } else if t.matched() {
            "close enough, but its words did not match"
        } else {
            "no match"
        };
        writeln!(
            out,
            "  rule {rule}: {verdict}, score {:.2} (min_score {:.2})",
            t.score, t.min_score
        )?;
        writeln!(out, "    closest: {:?}", t.closest)?;
        if let Some((unlike, score)) = t.vetoed_by {
            writeln!(out, "    nearer unlike: {unlike:?} ({score:.2})")?;
        }
    }
    Ok(())
}

/// The configured name of a feed with this source, so `feeds = [...]` filters apply;
/// otherwise the URL or path itself.
fn named_like_config(config: &Config, source: &FeedSource, fallback: &str) -> String {
    config
        .feeds
        .iter()
        .find(|f| f.source == *source)
        .map_or_else(|| fallback.to_owned(), |f| f.id.0.clone())
}
