//! The subcommands: each loads the config, wires the parts together and reports.
//! Together with `main`, the only code that reads the environment and signals.

mod rules;
mod send_test;
mod service;
mod store_commands;
mod test_rules;
mod why;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::daemon::{self, Pipeline};

#[derive(Debug, Parser)]
#[command(
    name = "newshound",
    version,
    about = "Watches feeds for keywords and sends alerts",
    long_about = "Watches RSS, Atom and JSON feeds for keywords and alerts by email, webhook \
or Maildir: every matching story once, promptly, even across crashes and outages.\n\n\
The config file (--config, else $NEWSHOUND_CONFIG, else /etc/newshound/newshound.toml) \
names the feeds, the rules and the channels; /usr/share/doc/newshound/example.toml shows \
every option. State (seen items, feed state, the alert queue) lives in SQLite in \
daemon.state_dir ($STATE_DIRECTORY under systemd).\n\n\
`newshound run` is the daemon: SIGHUP or a change to the config file reloads it (an invalid \
file is logged and the running config stays); SIGTERM or SIGINT stops it after at most 8 s \
of in-flight work. Under systemd it speaks sd_notify (READY, STATUS, WATCHDOG, RELOADING, \
STOPPING).\n\n\
Exit codes: 0 success; 1 a runtime failure; 2 an invalid config or invocation."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How logs are written to stderr: text for people and journald, json for log
    /// shippers
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log more: -v adds what each poll and delivery did (`once` shows only warnings,
    /// errors and its summary by default), -vv debugging detail. RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    /// Print every rule as TOML (included files too); with --learned, with the
    /// examples feedback links taught them
    Rules(rules::RulesArgs),
    /// Tell what became of an item: the filter that dropped it, each rule's verdict,
    /// its alerts and their deliveries
    Why(why::WhyArgs),
    /// Send alerts again: dead letters (--dead), a held flood (--held), or past alerts
    Replay(ReplayArgs),
    /// Send a sample alert through one channel and show what the receiver answered
    SendTest(send_test::SendTestArgs),
    /// Copy the state (feeds, seen items, the alert queue) from the SQLite file in
    /// daemon.state_dir into an empty PostgreSQL database, for [store]
    MigrateState(MigrateStateArgs),
    /// Write a consistent copy of the state to FILE, while the daemon runs
    Backup(FileArgs),
    /// Put the state saved in FILE in place of the current one (the daemon stopped);
    /// the replaced state is kept beside it
    Restore(FileArgs),
    /// Read an OPML subscription list (from a feed reader) into [[feeds]] entries
    ImportOpml(ImportOpmlArgs),
    /// Write the config's feeds as OPML, for a feed reader
    ExportOpml(ConfigArg),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff)
    Man,
}

#[derive(Debug, Args)]
struct ImportOpmlArgs {
    /// The OPML file
    file: PathBuf,
    /// Append the new feeds to the config file (comments and layout kept) instead of
    /// printing them
    #[arg(long)]
    write: bool,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(Debug, Args)]
struct FileArgs {
    /// The backup file
    file: PathBuf,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(Debug, Args)]
struct MigrateStateArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The database: postgres://user[:password]@host:port/database (TLS with
    /// ?sslmode=require); it must hold no newshound state yet
    #[arg(long, value_name = "URL")]
    to: String,
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
    /// List every feed and rule (by default, with more than 50 feeds or rules, only
    /// those that need a look are listed, under a summary)
    #[arg(long)]
    all: bool,
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
    /// Test the items the daemon saw within this long (at most 24h; of a feed's first
    /// poll none, unless daemon.backfill_new_rules), from its state, instead of
    /// fetching
    #[arg(long, group = "source", value_parser = humantime::parse_duration)]
    since: Option<std::time::Duration>,
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
    /// Whether the command's work is what it prints: not `run`, `once` or `send-test`,
    /// whose broken pipes come from a server's connection and are errors.
    pub fn only_prints(&self) -> bool {
        !matches!(
            self.command,
            Command::Run(_) | Command::Once(_) | Command::SendTest(_)
        )
    }

    /// The level of logs shown when `RUST_LOG` does not say: the daemon reports its
    /// work; one-shot commands (`once` too: cron mails whatever a job prints) only
    /// warnings, so their output stays readable; each `-v` one level more.
    pub fn default_log_level(&self) -> &'static str {
        const LEVELS: [&str; 4] = ["warn", "info", "debug", "trace"];
        let base = match self.command {
            Command::Run(_) => 1,
            Command::Once(_)
            | Command::Check(_)
            | Command::TestRules(_)
            | Command::Status(_)
            | Command::Why(_)
            | Command::Rules(_)
            | Command::Replay(_)
            | Command::SendTest(_)
            | Command::MigrateState(_)
            | Command::Backup(_)
            | Command::Restore(_)
            | Command::ImportOpml(_)
            | Command::ExportOpml(_)
            | Command::Completions { .. }
            | Command::Man => 0,
        };
        LEVELS[(base + usize::from(self.verbose)).min(LEVELS.len() - 1)]
    }
}

/// Whether the error is a broken pipe: for a command whose work is what it prints
/// ([`Cli::only_prints`]), that its reader went away (`check | head -1`) having seen
/// what it wanted, which is no failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
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
            runtime()?.block_on(service::run(config, args.config, env))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Once(args) => {
            let config = Config::load(&args.config, &env)?;
            let report = runtime()?.block_on(async {
                let pipeline = Arc::new(Pipeline::new(config).await?);
                daemon::once(pipeline).await
            })?;
            let d = report.delivery;
            let waiting = match d.deferred {
                0 => String::new(),
                n => format!(", {n} waiting for a digest or a rate limit"),
            };
            println!(
                "polled {} feeds ({} failed): {} new items, {} alerts queued; delivered {}, retrying {}, dead {}{waiting}",
                report.feeds_ok + report.feeds_failed,
                report.feeds_failed,
                report.new_items,
                report.alerts,
                d.sent,
                d.retrying,
                d.dead
            );
            for (feed, until) in &report.skipped {
                println!(
                    "skipped {feed}: its server asked to wait until {} (Retry-After)",
                    crate::model::rfc3339(*until)
                );
            }
            let trouble = report.feeds_failed > 0 || d.retrying > 0 || d.dead > 0;
            Ok(if trouble {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::TestRules(args) => {
            let config = Config::load(&args.config.config, &env)?;
            runtime()?.block_on(test_rules::test_rules(&config, &args))
        }
        Command::Status(args) => match Config::load(&args.config.config, &env) {
            Ok(config) => store_commands::status(&config, &args, None),
            // The state is worth seeing while the file is broken; the exit code still
            // says the config is invalid.
            Err(error) => {
                let fallback = Config::defaults_for(&args.config.config, &env);
                store_commands::status(&fallback, &args, Some(&error))?;
                Err(error.into())
            }
        },
        Command::Rules(args) => {
            let config = Config::load(&args.config.config, &env)?;
            runtime()?.block_on(rules::rules(&config, &args))
        }
        Command::Why(args) => {
            let config = Config::load(&args.config.config, &env)?;
            runtime()?.block_on(why::why(&config, &args))
        }
        Command::Replay(args) => {
            store_commands::replay(&Config::load(&args.config.config, &env)?, &args)
        }
        Command::SendTest(args) => {
            let config = Config::load(&args.config.config, &env)?;
            runtime()?.block_on(send_test::send_test(&config, &args.channel))
        }
        Command::MigrateState(args) => {
            let config = Config::load(&args.config.config, &env)?;
            runtime()?.block_on(store_commands::migrate_state(&config, &args.to))
        }
        Command::Backup(args) => {
            store_commands::backup(&Config::load(&args.config.config, &env)?, &args.file)
        }
        Command::Restore(args) => {
            store_commands::restore(&Config::load(&args.config.config, &env)?, &args.file)
        }
        Command::ImportOpml(args) => import_opml(&args, &env),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "newshound",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("cannot write the manual page")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ExportOpml(args) => {
            let config = Config::load(&args.config, &env)?;
            print!("{}", crate::config::opml::export(&config));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `import-opml`: the new feeds as TOML on stdout, or with `--write` appended to the
/// config file (checked first; the file is replaced atomically).
fn import_opml(args: &ImportOpmlArgs, env: &HashMap<String, String>) -> anyhow::Result<ExitCode> {
    use crate::config::opml;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let subscriptions =
        opml::parse(&text).map_err(|e| UsageError(format!("{}: {e}", args.file.display())))?;
    let path = &args.config.config;
    // Without --write, a missing config just means nothing is there yet.
    let current = match std::fs::read_to_string(path) {
        Ok(current) => current,
        Err(_) if !args.write => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let appended = opml::append_feeds(&current, &subscriptions)
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let (updated, added) = (appended.config, appended.names);
    if !args.write {
        print!("{}", appended.entries);
        return Ok(ExitCode::SUCCESS);
    }
    if added.is_empty() {
        println!(
            "nothing to add: every feed of {} is already in {}",
            args.file.display(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    Config::from_toml(path, &updated, env)?;
    let temp = path.with_extension("toml.newshound-import");
    std::fs::write(&temp, &updated).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    println!(
        "added {} feeds to {}: {}; a running daemon picks them up on its own (or: systemctl reload newshound)",
        added.len(),
        path.display(),
        added.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Enough for the daemon's bounded blocking work (parsing and matching, one per core;
/// four store readers) and a few DNS lookups beside it.
const BLOCKING_THREADS: usize = 12;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Blocking threads do the parsing, matching and store reads, each bounded by the
    // daemon to a few at a time; a small pool keeps their memory (a malloc arena
    // each) small too.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")
}

fn check(config: &Config) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: OK", config.file.display())?;
    if !config.include.is_empty() {
        let files: Vec<String> = config
            .included
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let files = match files.is_empty() {
            true => "none yet".to_owned(),
            false => files.join(", "),
        };
        writeln!(out, "included: {files}")?;
    }
    writeln!(out, "state_dir: {}", config.daemon.state_dir.display())?;
    writeln!(
        out,
        "poll_interval: {}, first_poll: {}",
        humantime::format_duration(config.daemon.poll_interval),
        config.daemon.first_poll
    )?;
    // Whole days as such: humantime counts 90 days as `2months 29days 2h 52m 48s`.
    let days = |d: std::time::Duration| match d.as_secs() {
        86_400 => "1 day".to_owned(),
        secs if secs % 86_400 == 0 => format!("{} days", secs / 86_400),
        _ => humantime::format_duration(d).to_string(),
    };
    writeln!(
        out,
        "retention: seen items forgotten {} after they leave their feed; sent alerts kept {}, \
         dead letters and held alerts {}",
        days(config.daemon.forget_after),
        days(config.daemon.keep_sent),
        days(config.daemon.keep_dead)
    )?;
    let d = &config.daemon;
    if d.dedupe_window.is_zero() {
        writeln!(out, "same story: never merged (dedupe_window is 0)")?;
    } else {
        let rewrites = match config.rewrite_threshold() {
            Some(t) => format!("rewrites merged too, at similarity {t:.2} or more"),
            None => "rewrites not merged (merge_rewrites is off)".to_owned(),
        };
        writeln!(
            out,
            "same story: merged into its alert of the last {} when the link or title is the \
             same, or the text a copy (copy_threshold {:.2}); {rewrites}",
            days(d.dedupe_window),
            d.copy_threshold
        )?;
    }
    if let Some(smtp) = &config.smtp {
        let auth = match &smtp.credentials {
            Some((user, password)) => format!("user {user}, password {password}"),
            None => "no AUTH".into(),
        };
        writeln!(
            out,
            "smtp: {}:{} ({}), {auth}, from {}",
            smtp.host, smtp.port, smtp.security, smtp.from
        )?;
    }
    writeln!(out, "feeds: {}", config.feeds.len())?;
    for feed in &config.feeds {
        writeln!(
            out,
            "  {} every {}: {}{}",
            feed.id,
            humantime::format_duration(feed.interval),
            feed.source,
            if feed.fetch_article {
                ", reading each new item's article"
            } else {
                ""
            }
        )?;
    }
    writeln!(out, "channels: {}", config.channels.len())?;
    for (name, channel) in &config.channels {
        let mut detail = channel.transport.describe();
        if let Some(digest) = channel.digest {
            detail.push_str(&format!("; digest {digest}"));
        }
        if let Some(limit) = channel.max_per_minute {
            detail.push_str(&format!("; at most {limit} messages a minute"));
        }
        if channel.templates.is_custom() {
            detail.push_str("; custom templates");
        }
        writeln!(out, "  {name} ({}): {detail}", channel.kind())?;
    }
    writeln!(out, "rules: {}", config.rules.len())?;
    for (rule, channels) in &config.routes {
        let priority = match config.priority_of(rule) {
            crate::model::Priority::Normal => String::new(),
            other => format!(" ({other:?} priority)").to_lowercase(),
        };
        let about = config
            .rule_specs
            .iter()
            .find(|s| s.name == *rule)
            .and_then(|s| s.topic.as_ref())
            .map_or_else(String::new, |t| format!(", about {:?}", t.about));
        writeln!(out, "  {rule} → {}{priority}{about}", channels.join(", "))?;
    }
    if !config.filter_specs.is_empty() {
        writeln!(out, "filters: {}", config.filter_specs.len())?;
        for filter in &config.filter_specs {
            let scope = match &filter.rule.feeds {
                Some(feeds) => feeds.iter().cloned().collect::<Vec<_>>().join(", "),
                None => "every feed".to_owned(),
            };
            writeln!(out, "  {} ({scope})", filter.rule.name)?;
        }
    }
    match &config.semantic {
        Some(model) => {
            let info = model.info();
            writeln!(
                out,
                "semantic model: {} ({}): {} dimensions, {} tokens in its vocabulary, \
                 reads the first {} tokens of an item; loaded in {} ms, {:.1} MB of weights; \
                 default min_score {:.2}, rewrite_threshold {:.2}",
                info.name,
                info.kind,
                info.dims,
                info.vocabulary,
                info.max_tokens,
                info.load_time.as_millis(),
                info.bytes as f64 / (1 << 20) as f64,
                info.default_min_score,
                info.default_rewrite_threshold
            )?;
        }
        None => writeln!(
            out,
            "semantic model: none loaded (no rule has `about`, merge_rewrites is off)"
        )?,
    }
    for warning in config.warnings() {
        writeln!(out, "warning: {warning}")?;
    }
    Ok(ExitCode::SUCCESS)
}
