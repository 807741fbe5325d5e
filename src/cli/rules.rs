//! `newshound rules`: every rule of the config (its included files too) as TOML, and
//! with `--learned`, the examples feedback taught each one added to its `like` and
//! `unlike`, to paste into the config.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{Config, Routes};
use crate::daemon;
use crate::model::{Field, Vote};
use crate::rules::{Condition, FieldSet, RuleSpec};
use crate::store::Learned;

#[derive(Debug, clap::Args)]
pub(super) struct RulesArgs {
    #[command(flatten)]
    pub(super) config: super::ConfigArg,
    /// Add the examples learned from feedback links to each rule's like and unlike
    #[arg(long)]
    learned: bool,
}

pub(super) async fn rules(config: &Config, args: &RulesArgs) -> anyhow::Result<ExitCode> {
    let learned = match args.learned {
        true => {
            let store = daemon::open_store(config, daemon::Access::ReadOnly)
                .await
                .context("cannot read the state store")?;
            match store {
                Some(store) => store.learned().await?,
                None => Vec::new(),
            }
        }
        false => Vec::new(),
    };
    let mut out = std::io::stdout().lock();
    if args.learned {
        writeln!(
            out,
            "# The rules of {}, with the {} examples learned from feedback links added to\n\
             # the like and unlike of topic rules. Replace the rules in your config with\n\
             # these to keep them when the state is lost.",
            config.file.display(),
            learned.len()
        )?;
    }
    for spec in &config.rule_specs {
        let mine: Vec<&Learned> = learned.iter().filter(|l| l.rule == spec.name).collect();
        writeln!(out, "\n{}", rule_toml(spec, &config.routes, &mine))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `spec` as a `[[rules]]` entry, with `learned` added (as comments on a rule that
/// matches by words, which cannot take examples).
fn rule_toml(spec: &RuleSpec, routes: &Routes, learned: &[&Learned]) -> String {
    // toml_edit keeps the keys in the order written: the name first.
    let mut table = toml_edit::Table::new();
    let mut set = |key: &str, value: toml_edit::Value| {
        table.insert(key, toml_edit::Item::Value(value));
    };
    set("name", spec.name.clone().into());
    match &spec.condition {
        Condition::Keywords(words) => set("keywords", strings(words)),
        Condition::Query(query) => set("query", query.clone().into()),
        Condition::Always => {}
    }
    if let Some(feeds) = &spec.feeds {
        set("feeds", strings(feeds));
    }
    if spec.fields != FieldSet::DEFAULT {
        let fields: Vec<&str> = Field::EVERY
            .iter()
            .filter(|f| spec.fields.contains(**f))
            .map(|f| f.name())
            .collect();
        set("fields", strings(fields));
    }
    set(
        "channels",
        strings(routes.get(&spec.name).into_iter().flatten()),
    );
    if spec.case_sensitive {
        set("case_sensitive", true.into());
    }
    if spec.strict_accents {
        set("accents", "strict".into());
    }
    if spec.priority != crate::model::Priority::Normal {
        set(
            "priority",
            format!("{:?}", spec.priority).to_lowercase().into(),
        );
    }
    let texts = |vote: Vote| {
        learned
            .iter()
            .filter(move |l| l.vote == vote)
            .map(|l| &l.text)
    };
    let mut comments = String::new();
    match &spec.topic {
        Some(topic) => {
            set("about", topic.about.clone().into());
            let like: Vec<&String> = topic.like.iter().chain(texts(Vote::More)).collect();
            let unlike: Vec<&String> = topic.unlike.iter().chain(texts(Vote::Not)).collect();
            if !like.is_empty() {
                set("like", strings(like));
            }
            if !unlike.is_empty() {
                set("unlike", strings(unlike));
            }
            if let Some(score) = topic.min_score {
                // As written: f32 → f64 would print 0.550000011920929.
                let score = (f64::from(score) * 1000.0).round() / 1000.0;
                set("min_score", score.into());
            }
        }
        None => {
            for (vote, what) in [(Vote::More, "more like this"), (Vote::Not, "not this")] {
                for text in texts(vote) {
                    let quoted = toml_edit::Value::from(text.as_str());
                    comments.push_str(&format!("# feedback, {what}: {quoted}\n"));
                }
            }
            if !comments.is_empty() {
                comments.push_str(
                    "# (this rule matches by words: narrow its query, or add `about` so that\n\
                     # it learns from examples)\n",
                );
            }
        }
    }
    let mut entries = toml_edit::ArrayOfTables::new();
    entries.push(table);
    let mut document = toml_edit::DocumentMut::new();
    document.insert("rules", toml_edit::Item::ArrayOfTables(entries));
    format!("{comments}{}", document.to_string().trim_end())
}

fn strings<T: ToString>(items: impl IntoIterator<Item = T>) -> toml_edit::Value {
    toml_edit::Value::Array(items.into_iter().map(|s| s.to_string()).collect())
}
