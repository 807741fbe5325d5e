//! `newshound why <link | guid | words of a title>`: the fate of an item, from what the
//! store remembers of it and the rules as configured now.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::{Config, FirstPoll};
use crate::daemon;
use crate::model::rfc3339;
use crate::rules::RuleSet;
use crate::store::{Trace, TracedAlert};

#[derive(Debug, clap::Args)]
pub(super) struct WhyArgs {
    #[command(flatten)]
    pub(super) config: super::ConfigArg,
    /// The item's link, its guid, or words of its title
    #[arg(required = true, num_args = 1..)]
    item: Vec<String>,
    /// One JSON object, for scripts
    #[arg(long)]
    json: bool,
}

/// What became of one item, as `why` tells it.
#[derive(Debug, Serialize)]
struct Fate {
    feed: String,
    key: String,
    title: Option<String>,
    link: Option<String>,
    first_seen: Option<String>,
    /// Since when it has been gone from its feed.
    gone_since: Option<String>,
    /// Why it stopped before any rule saw it, if it did.
    stopped: Option<String>,
    /// Each rule, as configured now, and whether it matches the kept item.
    rules: Vec<RuleFate>,
    alerts: Vec<AlertFate>,
    /// What the store no longer remembers of it.
    unknown: Vec<String>,
}

#[derive(Debug, Serialize)]
struct RuleFate {
    rule: String,
    matched: bool,
    /// `matched`, or why not.
    why: String,
}

#[derive(Debug, Serialize)]
struct AlertFate {
    id: i64,
    channel: String,
    state: String,
    rules: Vec<String>,
    attempts: u32,
    last_error: Option<String>,
    queued: String,
    finished: Option<String>,
    merged_into: Option<i64>,
    /// In words: what became of it.
    what: String,
}

pub(super) async fn why(config: &Config, args: &WhyArgs) -> anyhow::Result<ExitCode> {
    let query = args.item.join(" ");
    let store = daemon::open_store(config, daemon::Access::ReadOnly)
        .await
        .context("cannot read the state store")?;
    let (traces, learned) = match &store {
        Some(store) => (store.trace(&query).await?, store.learned().await?),
        None => Default::default(),
    };
    // The rules as the daemon matches with them: with what feedback taught them.
    let rules = daemon::taught(&config.rules, &learned);
    let fates: Vec<Fate> = traces.iter().map(|t| fate(config, &rules, t)).collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = serde_json::json!({ "query": query, "items": fates });
        writeln!(out, "{report}")?;
    } else if fates.is_empty() {
        writeln!(
            out,
            "newshound remembers no item with the link, guid or title words {query:?}: it \
             keeps an item's key until {} after the item left its feed, its text for a day",
            humantime::format_duration(config.daemon.forget_after)
        )?;
    } else {
        for fate in &fates {
            write_fate(&mut out, fate)?;
        }
    }
    Ok(match fates.is_empty() {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}

/// What became of the item `trace` remembers, with `rules` (those of `config`, taught).
fn fate(config: &Config, rules: &RuleSet, trace: &Trace) -> Fate {
    let feed = config.feeds.iter().find(|f| f.id == trace.feed);
    let first_alert = trace.alerts.first().map(|a| &a.alert);
    let mut fate = Fate {
        feed: trace.feed.0.clone(),
        key: trace.key.0.clone(),
        title: trace
            .kept
            .as_ref()
            .map(|(item, _)| item.title.clone())
            .or_else(|| first_alert.map(|a| a.title.clone())),
        link: trace
            .kept
            .as_ref()
            .and_then(|(item, _)| item.link.clone())
            .or_else(|| first_alert.and_then(|a| a.link.clone())),
        first_seen: trace.first_seen.map(rfc3339),
        gone_since: trace.gone_since.map(rfc3339),
        stopped: None,
        rules: Vec::new(),
        alerts: trace.alerts.iter().map(alert_fate).collect(),
        unknown: Vec::new(),
    };
    if trace.first_seen.is_none() {
        fate.unknown.push(format!(
            "when it was first seen: forgotten {} after it left its feed",
            humantime::format_duration(config.daemon.forget_after)
        ));
    }
    // Its alerts may be deleted already.
    let old = trace.first_seen.is_none_or(|seen| {
        chrono::Utc::now() - seen
            > chrono::Duration::from_std(config.daemon.keep_sent).unwrap_or(chrono::Duration::MAX)
    });
    // A first poll under mark-seen alerts nothing (a backfill of a rule added later
    // may), though `backfill_new_rules` keeps its items.
    let marked_seen = trace.first_seen.is_some()
        && trace.first_seen == trace.feed_first_polled
        && config.daemon.first_poll == FirstPoll::MarkSeen
        && trace.alerts.is_empty();
    match (&trace.kept, feed) {
        (_, None) => fate.stopped = Some("its feed is no longer in the config".into()),
        (_, Some(_)) if marked_seen => {
            let since = match old {
                true => "; a backfill of a rule added later may have alerted it since",
                false => "",
            };
            fate.stopped = Some(format!(
                "seen on its feed's first poll, which records what a feed holds without \
                 alerting (first_poll = \"mark-seen\"){since}"
            ));
        }
        (Some((item, dropped_by)), Some(feed)) => {
            let seen = trace.first_seen.unwrap_or_default();
            let too_old = feed
                .max_age
                .filter(|age| item.dated_before(crate::model::earlier(seen, *age)));
            fate.stopped = match (too_old, dropped_by) {
                (Some(age), _) => Some(format!(
                    "older than max_age ({}) when first seen: recorded, never alerted",
                    humantime::format_duration(age)
                )),
                (None, Some(filter)) => Some(format!("dropped by the filter {filter:?}")),
                (None, None) => None,
            };
            if fate.stopped.is_none() {
                fate.rules = rules
                    .explain(&feed.id.0, item)
                    .into_iter()
                    .map(|(rule, verdict)| RuleFate {
                        rule: rule.to_owned(),
                        matched: matches!(verdict, crate::rules::Verdict::Matched(_)),
                        why: verdict.to_string(),
                    })
                    .collect();
            }
        }
        (None, Some(_)) => fate.unknown.push(
            "which rules matched it and why: its text is kept for a day after it is first \
             seen (of a feed's first poll, only those a filter dropped); its alerts, if \
             any, say which rules sent them"
                .into(),
        ),
    }
    if old {
        fate.unknown.push(format!(
            "alerts sent longer than keep_sent ({}) ago, which are deleted",
            humantime::format_duration(config.daemon.keep_sent)
        ));
    }
    fate
}

fn alert_fate(traced: &TracedAlert) -> AlertFate {
    let what = match traced.state.as_str() {
        "sent" => format!(
            "sent {} after {} attempt{}",
            traced.finished.map(rfc3339).unwrap_or_default(),
            traced.attempts,
            if traced.attempts == 1 { "" } else { "s" }
        ),
        "dead" => format!(
            "given up on (a dead letter) after {} attempts: {}; `newshound replay --dead` sends it again",
            traced.attempts,
            traced.last_error.as_deref().unwrap_or("no error recorded")
        ),
        "held" => "held by the flood guard with the rest of its poll; `newshound replay --held` \
                   releases it"
            .to_owned(),
        "merged" => match &traced.merged_into {
            Some((id, into)) => format!(
                "merged into alert {id} about the same story ({}: {})",
                into.feed, into.title
            ),
            None => "merged into an alert about the same story, since deleted".to_owned(),
        },
        state => match &traced.last_error {
            Some(error) => format!(
                "{state}: {} attempts so far, the last failed: {error}",
                traced.attempts
            ),
            None => format!("{state}: waiting to be sent"),
        },
    };
    AlertFate {
        id: traced.id,
        channel: traced.channel.clone(),
        state: traced.state.clone(),
        rules: traced.alert.rules.clone(),
        attempts: traced.attempts,
        last_error: traced.last_error.clone(),
        queued: rfc3339(traced.created),
        finished: traced.finished.map(rfc3339),
        merged_into: traced.merged_into.as_ref().map(|(id, _)| *id),
        what,
    }
}

fn write_fate(out: &mut impl Write, fate: &Fate) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {}",
        fate.feed,
        fate.title.as_deref().unwrap_or("(title no longer known)")
    )?;
    if let Some(link) = &fate.link {
        writeln!(out, "  {link}")?;
    }
    let seen = match (&fate.first_seen, &fate.gone_since) {
        (Some(seen), Some(gone)) => format!("first seen {seen}, gone from its feed since {gone}"),
        (Some(seen), None) => format!("first seen {seen}"),
        (None, _) => "first seen: no longer known".to_owned(),
    };
    writeln!(out, "  key {}, {seen}", fate.key)?;
    if let Some(stopped) = &fate.stopped {
        writeln!(out, "  {stopped}")?;
    }
    if !fate.rules.is_empty() {
        writeln!(out, "  rules, as configured now:")?;
        for rule in &fate.rules {
            writeln!(out, "    {}: {}", rule.rule, rule.why)?;
        }
    }
    for alert in &fate.alerts {
        writeln!(
            out,
            "  alert {} to {} ({}), queued {}: {}",
            alert.id,
            alert.channel,
            alert.rules.join(", "),
            alert.queued,
            alert.what
        )?;
    }
    if fate.alerts.is_empty() && fate.stopped.is_none() {
        writeln!(out, "  no alert")?;
    }
    for unknown in &fate.unknown {
        writeln!(out, "  no longer known: {unknown}")?;
    }
    Ok(())
}
