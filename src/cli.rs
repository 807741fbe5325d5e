//! The subcommands: each loads the config, wires the parts together and reports.
//! Together with `main`, the only code that reads the environment and signals.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Channel, Config, ConfigError, FeedSource};
use crate::daemon::{self, Pipeline};
use crate::feed::{self, Fetched, Fetcher, Validators};
use crate::rules;
use crate::store::{OutboxState, Store};

#[derive(Debug, Parser)]
#[command(
    name = "newshound",
    version,
    about = "Watches feeds for keywords and sends alerts"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: poll every feed on its interval and deliver alerts
    Run(ConfigArg),
    /// Poll every feed once, deliver what is due, and exit
    Once(ConfigArg),
    /// Validate the config, print a summary, and exit 0 (valid) or 2 (invalid)
    Check(ConfigArg),
    /// Show which items match which rules; sends nothing and marks nothing seen
    TestRules(TestRulesArgs),
    /// Show each feed's last poll, result and next poll, and the alert queue
    Status(StatusArgs),
    /// Send alerts again: dead letters (--dead), a held flood (--held), or past alerts
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Re-queue dead letters (alerts given up on)
    #[arg(long, conflicts_with = "held")]
    dead: bool,
    /// Release alerts held back as a flood
    #[arg(long)]
    held: bool,
    /// Only alerts of this rule
    #[arg(long)]
    rule: Option<String>,
    /// Only alerts queued within this long (e.g. 24h)
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<std::time::Duration>,
    /// Show what would be re-queued, change nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// One JSON object instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The config file
    #[arg(
        long,
        env = "NEWSHOUND_CONFIG",
        default_value = "/etc/newshound/newshound.toml"
    )]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct TestRulesArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Test one configured feed (default: all of them)
    #[arg(long, group = "source")]
    feed: Option<String>,
    /// Test a feed at this URL
    #[arg(long, group = "source")]
    url: Option<String>,
    /// Test a feed file on disk
    #[arg(long, group = "source")]
    file: Option<PathBuf>,
    /// One JSON object per matching item, one per line, with the hits' byte spans
    #[arg(long)]
    json: bool,
    /// Show each matching rule with its terms highlighted in context
    #[arg(long, conflicts_with = "json")]
    explain: bool,
}

/// A mistake in how newshound was invoked (exit code 2), beside config errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

impl Cli {
    /// The level of logs shown when `RUST_LOG` does not say: the daemon reports its
    /// work; one-shot commands only warnings, so their output stays readable.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Run(_) | Command::Once(_) => "info",
            Command::Check(_) | Command::TestRules(_) | Command::Status(_) | Command::Replay(_) => {
                "warn"
            }
        }
    }
}

/// Exit code for an error: 2 for an invalid config or usage, 1 for anything else.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    let usage = error
        .chain()
        .any(|e| e.is::<ConfigError>() || e.is::<UsageError>());
    ExitCode::from(if usage { 2 } else { 1 })
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    // Both reqwest and lettre use rustls; name its crypto provider once for both.
    // An error only means a provider is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Command::Check(args) => check(&Config::load(&args.config, &env)?),
        Command::Run(args) => {
            let config = Config::load(&args.config, &env)?;
            // The SMTP pool starts a task when built, so the pipeline is made inside the runtime.
            runtime()?.block_on(async {
                let pipeline = Arc::new(Pipeline::new(config)?);
                run_until_signal(pipeline).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Once(args) => {
            let config = Config::load(&args.config, &env)?;
            let report = runtime()?.block_on(async {
                let pipeline = Arc::new(Pipeline::new(config)?);
                daemon::once(pipeline).await
            })?;
            let d = report.delivery;
            println!(
                "polled {} feeds ({} failed): {} new items, {} alerts queued; delivered {}, retrying {}, dead {}",
                report.feeds_ok + report.feeds_failed,
                report.feeds_failed,
                report.new_items,
                report.alerts,
                d.sent,
                d.retrying,
                d.dead
            );
            let trouble = report.feeds_failed > 0 || d.retrying > 0 || d.dead > 0;
            Ok(if trouble {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::TestRules(args) => {
            let config = Config::load(&args.config.config, &env)?;
            runtime()?.block_on(test_rules(&config, &args))
        }
        Command::Status(args) => status(&Config::load(&args.config.config, &env)?, args.json),
        Command::Replay(args) => replay(&Config::load(&args.config.config, &env)?, &args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn run_until_signal(pipeline: Arc<Pipeline>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let running = daemon::run(pipeline, shutdown.clone());
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => return result,
        signal = shutdown_signal() => {
            tracing::info!(signal = signal?, "stop requested");
            shutdown.cancel();
        }
    }
    running.await
}

/// Waits for SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

fn check(config: &Config) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: OK", config.file.display())?;
    writeln!(out, "state_dir: {}", config.daemon.state_dir.display())?;
    writeln!(
        out,
        "poll_interval: {}, first_poll: {:?}",
        humantime::format_duration(config.daemon.poll_interval),
        config.daemon.first_poll
    )?;
    if let Some(smtp) = &config.smtp {
        let auth = match &smtp.credentials {
            Some((user, password)) => format!("user {user}, password {password}"),
            None => "no AUTH".into(),
        };
        writeln!(
            out,
            "smtp: {}:{} ({:?}), {auth}, from {}",
            smtp.host, smtp.port, smtp.security, smtp.from
        )?;
    }
    writeln!(out, "feeds: {}", config.feeds.len())?;
    for feed in &config.feeds {
        writeln!(
            out,
            "  {} every {}: {}",
            feed.id,
            humantime::format_duration(feed.interval),
            feed.source
        )?;
    }
    writeln!(out, "channels: {}", config.channels.len())?;
    for (name, channel) in &config.channels {
        let detail = match channel {
            Channel::Email { to } => to.join(", "),
            Channel::Webhook { url } => url.to_string(),
            Channel::Maildir { path } => path.display().to_string(),
        };
        writeln!(out, "  {name} ({}): {detail}", channel.kind())?;
    }
    writeln!(out, "rules: {}", config.rules.len())?;
    for (rule, channels) in &config.routes {
        writeln!(out, "  {rule} → {}", channels.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn test_rules(config: &Config, args: &TestRulesArgs) -> anyhow::Result<ExitCode> {
    let base = config.file.parent().unwrap_or(std::path::Path::new("."));
    let sources: Vec<(String, FeedSource)> = match (&args.feed, &args.url, &args.file) {
        (Some(name), _, _) => {
            let feed = config
                .feeds
                .iter()
                .find(|f| f.id.0 == *name)
                .ok_or_else(|| {
                    UsageError(format!("--feed {name:?}: no [[feeds]] entry has that name"))
                })?;
            vec![(feed.id.0.clone(), feed.source.clone())]
        }
        (_, Some(url), _) => {
            let source =
                FeedSource::parse(url, base).map_err(|e| UsageError(format!("--url: {e}")))?;
            vec![(named_like_config(config, &source, url), source)]
        }
        (_, _, Some(path)) => {
            let source = FeedSource::File(std::path::absolute(path)?);
            vec![(
                named_like_config(config, &source, &path.display().to_string()),
                source,
            )]
        }
        _ => config
            .feeds
            .iter()
            .map(|f| (f.id.0.clone(), f.source.clone()))
            .collect(),
    };
    let fetcher = Fetcher::new(config.daemon.fetch_timeout, config.daemon.max_feed_bytes)?;
    let mut out = std::io::stdout().lock();
    let (mut items, mut matched, mut failed) = (0, 0, 0);
    for (name, source) in sources {
        let parsed = match fetcher.fetch(&source, &Validators::default()).await {
            Ok(Fetched::Body { bytes, charset, .. }) => {
                feed::parse(&bytes, charset.as_deref()).map_err(anyhow::Error::from)
            }
            Ok(Fetched::NotModified { .. }) => {
                Err(anyhow::anyhow!("unexpected 304 without validators"))
            }
            Err(e) => Err(e.into()),
        };
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                eprintln!("{name}: {e:#}");
                failed += 1;
                continue;
            }
        };
        for item in &parsed.items {
            items += 1;
            let matches = config.rules.matches(&name, item);
            if matches.is_empty() {
                continue;
            }
            matched += 1;
            let rule_names: Vec<&str> = matches.iter().map(|m| m.rule).collect();
            let terms = rules::matched_terms(&matches);
            if args.json {
                let line = MatchLine {
                    feed: &name,
                    key: &item.key.0,
                    title: &item.title,
                    link: item.link.as_deref(),
                    published: item.published.map(crate::model::rfc3339),
                    rules: rule_names,
                    terms,
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
                writeln!(out, "{name}: {}", item.title)?;
                if let Some(link) = &item.link {
                    writeln!(out, "  {link}")?;
                }
                if args.explain {
                    explain(&mut out, item, &matches, std::io::stdout().is_terminal())?;
                } else {
                    writeln!(
                        out,
                        "  rules: {}   terms: {}",
                        rule_names.join(", "),
                        terms.join(", ")
                    )?;
                }
            }
        }
    }
    eprintln!("{items} items, {matched} matched, {failed} feeds failed");
    if failed > 0 {
        bail!("{failed} feed(s) could not be read");
    }
    Ok(ExitCode::SUCCESS)
}

/// `status`: read straight from the store, so it works whether the daemon runs or not.
fn status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let dir = &config.daemon.state_dir;
    let store = Store::open_existing(dir).context("cannot read the state store")?;
    let (states, counts, dead) = match &store {
        Some(store) => (
            store.feed_states()?,
            store.outbox_counts()?,
            store.dead_letters()?,
        ),
        None => Default::default(),
    };
    let feeds: Vec<FeedStatus> = config
        .feeds
        .iter()
        .map(|feed| {
            let known = states.iter().find(|(id, ..)| *id == feed.id);
            let state = known.map(|(_, s, _)| s.clone()).unwrap_or_default();
            let next_poll = state.last_attempt.map(|at| {
                let wait = daemon::next_poll_in(
                    feed.interval,
                    state.consecutive_failures,
                    None,
                    config.daemon.max_backoff,
                );
                at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
            });
            let times = match &store {
                Some(store) => store.new_item_times(&feed.id, 20).unwrap_or_default(),
                None => Vec::new(),
            };
            let stale = daemon::is_stale(&times, chrono::Utc::now(), config.daemon.stale_factor);
            FeedStatus {
                name: feed.id.0.clone(),
                url: feed.source.to_string(),
                result: match (&state.last_attempt, &state.last_error_kind) {
                    (None, _) => "never polled".into(),
                    (Some(_), None) if stale => "stale".into(),
                    (Some(_), None) => "ok".into(),
                    (Some(_), Some(kind)) => kind.clone(),
                },
                last_new_item: times.first().copied().map(crate::model::rfc3339),
                error: state.last_error.clone(),
                last_attempt: state.last_attempt.map(crate::model::rfc3339),
                last_success: state.last_success.map(crate::model::rfc3339),
                next_poll: next_poll.map(crate::model::rfc3339),
                etag: state.validators.etag.is_some(),
                consecutive_failures: state.consecutive_failures,
                broken_since: state.broken_since.map(crate::model::rfc3339),
                items_known: known.map_or(0, |(.., n)| *n),
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let report = serde_json::json!({
            "state_dir": dir,
            "feeds": feeds,
            "outbox": {"pending": counts.pending, "sent": counts.sent, "dead": counts.dead, "held": counts.held},
            "dead_letters": dead
                .iter()
                .map(|(id, channel, error)| serde_json::json!({"id": id, "channel": channel, "error": error}))
                .collect::<Vec<_>>(),
        });
        writeln!(out, "{report}")?;
        return Ok(ExitCode::SUCCESS);
    }
    if store.is_none() {
        writeln!(
            out,
            "no state yet in {}: newshound has not polled with this config",
            dir.display()
        )?;
    }
    writeln!(
        out,
        "{:<20} {:<14} {:<20} {:<20} {:<20} {:>5} {:>7} {:>4}",
        "FEED",
        "RESULT",
        "LAST ATTEMPT",
        "LAST SUCCESS",
        "NEXT POLL (ABOUT)",
        "FAILS",
        "ITEMS",
        "ETAG"
    )?;
    let dash = || "-".to_string();
    for f in &feeds {
        writeln!(
            out,
            "{:<20} {:<14} {:<20} {:<20} {:<20} {:>5} {:>7} {:>4}",
            f.name,
            f.result,
            f.last_attempt.clone().unwrap_or_else(dash),
            f.last_success.clone().unwrap_or_else(dash),
            f.next_poll.clone().unwrap_or_else(dash),
            f.consecutive_failures,
            f.items_known,
            if f.etag { "yes" } else { "no" }
        )?;
        if let Some(since) = &f.broken_since {
            writeln!(out, "  broken since {since}")?;
        }
        if let Some(error) = &f.error {
            writeln!(out, "  {error}")?;
        }
    }
    writeln!(
        out,
        "outbox: {} pending, {} sent, {} dead, {} held",
        counts.pending, counts.sent, counts.dead, counts.held
    )?;
    for (id, channel, error) in &dead {
        writeln!(out, "  dead #{id} ({channel}): {error}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `replay`: puts chosen outbox rows back in the queue; the daemon (or the next
/// `once`) sends them.
fn replay(config: &Config, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let (state, what) = match (args.dead, args.held) {
        (true, _) => (OutboxState::Dead, "dead letters"),
        (_, true) => (OutboxState::Held, "held alerts"),
        _ => (OutboxState::Sent, "sent alerts"),
    };
    let mut out = std::io::stdout().lock();
    let Some(store) =
        Store::open_existing(&config.daemon.state_dir).context("cannot read the state store")?
    else {
        writeln!(
            out,
            "nothing to replay: no state yet in {}",
            config.daemon.state_dir.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let now = chrono::Utc::now();
    let since = args
        .since
        .map(|d| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    let rows: Vec<_> = store
        .replayable(state, since)?
        .into_iter()
        .filter(|r| {
            args.rule
                .as_ref()
                .is_none_or(|rule| r.alert.rules.contains(rule))
        })
        .collect();
    for row in &rows {
        writeln!(
            out,
            "#{} {} → {}: {} ({}){}",
            row.id,
            row.alert.feed,
            row.channel,
            row.alert.title,
            crate::model::rfc3339(row.created),
            row.last_error
                .as_deref()
                .map(|e| format!(" last error: {e}"))
                .unwrap_or_default()
        )?;
    }
    if args.dry_run {
        writeln!(
            out,
            "would re-queue {} {what} (dry run: nothing changed)",
            rows.len()
        )?;
    } else {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        store.requeue(&ids, now)?;
        writeln!(
            out,
            "re-queued {} {what}; a running daemon sends them within a minute, or run `newshound once`",
            rows.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One feed in `status`.
#[derive(serde::Serialize)]
struct FeedStatus {
    name: String,
    url: String,
    result: String,
    error: Option<String>,
    last_attempt: Option<String>,
    last_success: Option<String>,
    next_poll: Option<String>,
    etag: bool,
    consecutive_failures: u32,
    broken_since: Option<String>,
    last_new_item: Option<String>,
    items_known: u64,
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
    for m in matches {
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

/// The configured name of a feed with this source, so `feeds = [...]` filters apply;
/// otherwise the URL or path itself.
fn named_like_config(config: &Config, source: &FeedSource, fallback: &str) -> String {
    config
        .feeds
        .iter()
        .find(|f| f.source == *source)
        .map_or_else(|| fallback.to_owned(), |f| f.id.0.clone())
}
