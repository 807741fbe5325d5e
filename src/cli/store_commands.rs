//! `status`, `replay`, `migrate-state`, `backup` and `restore`: commands that read and
//! change the store directly, so they work whether the daemon runs or not.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{ReplayArgs, StatusArgs};
use crate::config::{Config, ConfigError};
use crate::daemon::{self, FeedReport, RuleReport, Scope, Snapshot};
use crate::store::{self, OutboxState, RULE_DAYS, StateLock, Store};

/// `status`: read straight from the store, so it works whether the daemon runs or not.
/// With `broken` (the config file does not load), `config` holds only defaults and the
/// state directory, and every feed the store knows is shown.
pub(super) fn status(
    config: &Config,
    args: &StatusArgs,
    broken: Option<&ConfigError>,
) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let dir = &config.daemon.state_dir;
    let scope = match broken {
        None => Scope::Configured,
        Some(_) => Scope::Stored,
    };
    let (found, mut snapshot) = super::runtime()?.block_on(read_snapshot(config, scope))?;
    let now = chrono::Utc::now();
    let feeds: Vec<FeedStatus> = std::mem::take(&mut snapshot.feeds)
        .into_iter()
        .map(|feed| feed_status(feed, now, config.daemon.stale_factor))
        .collect();
    let rules = snapshot.rules(config, now);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(
            &mut out,
            &status_json(dir, broken, &feeds, &rules, &snapshot),
        )?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !found {
        writeln!(
            out,
            "no state yet in {}: newshound has not polled with this config",
            dir.display()
        )?;
    }
    if let Some(error) = broken {
        writeln!(
            out,
            "config: {error}\n  (the state database in {} as it is; feeds as the store knows them)",
            dir.display()
        )?;
    }
    if let Some((error, at)) = &snapshot.refused {
        writeln!(
            out,
            "config: the daemon refused a change at {} and runs the previous config: {error}",
            crate::model::rfc3339(*at)
        )?;
    }
    if args.all || feeds.len() <= SUMMARISED_OVER {
        write_table(&mut out, feeds.iter())?;
    } else {
        let needing = feeds.iter().filter(|f| f.needs_a_look());
        write_table(&mut out, needing.clone().take(SUMMARISED_OVER))?;
        write_summary(&mut out, &feeds, needing.count())?;
    }
    write_rules(&mut out, &rules, args.all)?;
    write_outbox(&mut out, &snapshot, now)?;
    write_instances(&mut out, config, &snapshot, now)?;
    Ok(ExitCode::SUCCESS)
}

/// What each rule caught in the last 30 days, and the last item; with more than
/// [`SUMMARISED_OVER`] rules (and not `all`), only those that need a look, under a
/// summary.
fn write_rules(out: &mut impl Write, rules: &[RuleReport], all: bool) -> std::io::Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    writeln!(out, "rules, items caught in the last {RULE_DAYS} days:")?;
    let listed: Vec<&RuleReport> = match all || rules.len() <= SUMMARISED_OVER {
        true => rules.iter().collect(),
        false => {
            let needing: Vec<&RuleReport> = rules.iter().filter(|r| r.needs_a_look()).collect();
            let dead = rules.iter().filter(|r| r.possibly_dead()).count();
            writeln!(
                out,
                "  {} rules: {} caught something, {dead} nothing; listed: the {} that need a \
                 look; `newshound status --all` lists every rule",
                rules.len(),
                rules.len() - dead,
                needing.len().min(SUMMARISED_OVER)
            )?;
            needing.into_iter().take(SUMMARISED_OVER).collect()
        }
    };
    for rule in listed {
        let today = rule.days.last().map_or(0, |(_, n)| *n);
        let feedback = rule.feedback().map(|f| format!("; feedback: {f}"));
        let feedback = feedback.unwrap_or_default();
        match &rule.last {
            _ if rule.possibly_dead() => writeln!(
                out,
                "  {}: nothing caught: possibly dead (it may watch for what never comes){feedback}",
                rule.rule
            )?,
            Some((title, at)) => writeln!(
                out,
                "  {}: {} ({today} today); last {}: {title}{feedback}",
                rule.rule,
                rule.caught,
                crate::model::rfc3339(*at)
            )?,
            None => writeln!(
                out,
                "  {}: {} ({today} today){feedback}",
                rule.rule, rule.caught
            )?,
        }
        if let Some(hint) = rule.hint() {
            writeln!(out, "    {hint}")?;
        }
    }
    Ok(())
}

/// The instances sharing a `[store]` database, and a warning when their configs
/// differ from each other or from this one.
fn write_instances(
    out: &mut impl Write,
    config: &Config,
    snapshot: &Snapshot,
    now: chrono::DateTime<chrono::Utc>,
) -> std::io::Result<()> {
    if snapshot.instances.is_empty() {
        return Ok(());
    }
    writeln!(out, "instances:")?;
    for i in &snapshot.instances {
        writeln!(
            out,
            "  {}: heartbeat {} s ago, started {}, polling {}, delivering {}, config {}",
            i.name,
            (now - i.heartbeat).num_seconds().max(0),
            crate::model::rfc3339(i.started),
            i.polling,
            i.delivering,
            i.config_hash
        )?;
    }
    if snapshot.configs_differ(config) {
        writeln!(
            out,
            "warning: the instances run different configs (this one is {}); give them the same file",
            config.fingerprint()
        )?;
    }
    Ok(())
}

/// One feed's line in `status`, from its report.
fn feed_status(
    feed: FeedReport,
    now: chrono::DateTime<chrono::Utc>,
    stale_factor: u32,
) -> FeedStatus {
    let FeedReport {
        id,
        source,
        state,
        items_known,
        next_poll,
        new_item_times: times,
    } = feed;
    let stale = daemon::is_stale(&times, now, stale_factor);
    FeedStatus {
        name: id.0,
        url: source.unwrap_or_else(|| "-".to_owned()),
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
        repaired: state.repaired.clone(),
        articles_failed: state.articles_failed,
        article_error: state.article_error.clone(),
        gaps: state.gaps,
        dropped: state.dropped,
        items_known,
    }
}

/// `status --json`: the feeds serialised as they are (a `Value` of each of 100,000
/// feeds took hundreds of megabytes), then the rest.
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    feeds: &'a [FeedStatus],
    #[serde(flatten)]
    rest: serde_json::Value,
}

/// `status --json`.
fn status_json<'a>(
    dir: &std::path::Path,
    broken: Option<&ConfigError>,
    feeds: &'a [FeedStatus],
    rules: &[RuleReport],
    snapshot: &Snapshot,
) -> StatusJson<'a> {
    let counts = &snapshot.outbox;
    StatusJson {
        feeds,
        rest: serde_json::json!({
            "config_error": broken.map(ToString::to_string),
            "config_refused": snapshot.refused
                .as_ref()
                .map(|(error, at)| serde_json::json!({"error": error, "at": crate::model::rfc3339(*at)})),
            "dead_letters": snapshot.dead
                .iter()
                .map(|(id, channel, error)| serde_json::json!({"id": id, "channel": channel, "error": error}))
                .collect::<Vec<_>>(),
            "state_dir": dir,
            "rule_days": rules.first().and_then(|r| Some(serde_json::json!({
                "first": r.days.first()?.0.to_string(),
                "last": r.days.last()?.0.to_string(),
            }))),
            "rules": rules
                .iter()
                .map(|r| serde_json::json!({
                    "rule": r.rule,
                    "caught": r.caught,
                    // One count per day, oldest first: with 10,000 rules, an object per
                    // day took half a gigabyte.
                    "days": r.days.iter().map(|(_, n)| *n).collect::<Vec<u64>>(),
                    "last": r.last.as_ref().map(|(title, at)| serde_json::json!({
                        "title": title,
                        "at": crate::model::rfc3339(*at),
                    })),
                    "possibly_dead": r.possibly_dead(),
                    "feedback": {"more": r.more, "not": r.not},
                }))
                .collect::<Vec<_>>(),
            "outbox": {"pending": counts.pending, "sending": counts.sending, "sent": counts.sent, "dead": counts.dead, "held": counts.held, "merged": counts.merged},
            "state": {
                "seen_items": snapshot.seen_items,
                "bytes": snapshot.state_bytes,
                "last_pruned": snapshot.last_prune.as_ref().map(|(pruned, at)| serde_json::json!({
                    "at": crate::model::rfc3339(*at),
                    "deleted": pruned,
                })),
            },
            "recent_alerts": snapshot.recent
                .iter()
                .map(|r| serde_json::json!({
                    "id": r.id,
                    "channel": r.channel,
                    "state": r.state,
                    "queued": crate::model::rfc3339(r.created),
                    "feed": r.alert.feed,
                    "title": r.alert.title,
                    "link": r.alert.link,
                    "also": r.alert.also_in,
                }))
                .collect::<Vec<_>>(),
            "retrying": snapshot.retrying
                .iter()
                .map(|r| serde_json::json!({
                    "id": r.id,
                    "channel": r.channel,
                    "attempts": r.attempts,
                    "next_attempt": crate::model::rfc3339(r.next_attempt),
                    "error": r.last_error,
                }))
                .collect::<Vec<_>>(),
            "instances": snapshot
                .instances
                .iter()
                .map(|i| serde_json::json!({
                    "name": i.name,
                    "started": crate::model::rfc3339(i.started),
                    "heartbeat": crate::model::rfc3339(i.heartbeat),
                    "config_hash": i.config_hash,
                    "polling": i.polling,
                    "delivering": i.delivering,
                }))
                .collect::<Vec<_>>(),
        }),
    }
}

/// With more feeds than this, `status` lists only those that need a look (at most
/// this many), under a summary of all; `--all` lists every one.
const SUMMARISED_OVER: usize = 50;

/// The line under a summarised table: how the feeds fare, and how many of those that
/// need a look were listed.
fn write_summary(
    out: &mut impl Write,
    feeds: &[FeedStatus],
    needing: usize,
) -> std::io::Result<()> {
    let count = |result: &str| feeds.iter().filter(|f| f.result == result).count();
    let (ok, stale, never) = (count("ok"), count("stale"), count("never polled"));
    let failing = feeds.len() - ok - stale - never;
    let listed = if needing > SUMMARISED_OVER {
        format!("the first {SUMMARISED_OVER} of the {needing} that need a look")
    } else {
        format!("the {needing} that need a look")
    };
    writeln!(
        out,
        "{} feeds: {ok} ok, {failing} failing, {stale} stale, {never} never polled; listed: \
         {listed}; `newshound status --all` lists every feed",
        feeds.len()
    )
}

/// The feeds' table of `status`, each with its problems below it.
fn write_table<'a>(
    out: &mut impl Write,
    feeds: impl Iterator<Item = &'a FeedStatus>,
) -> std::io::Result<()> {
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
    for f in feeds {
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
        if let Some(why) = &f.repaired {
            writeln!(out, "  ill-formed, read once repaired: {why}")?;
        }
        if f.gaps > 0 {
            writeln!(
                out,
                "  {} polls found it had published more than it keeps since the poll before \
                 (items probably missed); polled more often since",
                f.gaps
            )?;
        }
        if f.dropped > 0 {
            writeln!(out, "  {} items dropped by filters", f.dropped)?;
        }
        if f.articles_failed > 0 {
            let last = f.article_error.as_deref().unwrap_or_default();
            writeln!(
                out,
                "  {} articles could not be read, matched on the feed's text; last: {last}",
                f.articles_failed
            )?;
        }
    }
    Ok(())
}

/// The outbox's counts, its retries and its dead letters.
fn write_outbox(
    out: &mut impl Write,
    snapshot: &Snapshot,
    now: chrono::DateTime<chrono::Utc>,
) -> std::io::Result<()> {
    let counts = &snapshot.outbox;
    writeln!(
        out,
        "outbox: {} pending, {} sending, {} sent, {} dead, {} held, {} merged into other alerts",
        counts.pending, counts.sending, counts.sent, counts.dead, counts.held, counts.merged
    )?;
    writeln!(out, "state: {}", snapshot.state_line(now))?;
    for r in &snapshot.retrying {
        writeln!(
            out,
            "  retrying #{} ({}): {} tries, next at {}: {}",
            r.id,
            r.channel,
            r.attempts,
            crate::model::rfc3339(r.next_attempt),
            r.last_error
        )?;
    }
    for (id, channel, error) in &snapshot.dead {
        writeln!(out, "  dead #{id} ({channel}): {error}")?;
    }
    Ok(())
}

/// `replay`: puts chosen outbox rows back in the queue; the daemon (or the next
/// `once`) sends them.
pub(super) fn replay(config: &Config, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(replay_rows(config, args))
}

async fn replay_rows(config: &Config, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let (state, what) = match (args.dead, args.held) {
        (true, _) => (OutboxState::Dead, "dead letters"),
        (_, true) => (OutboxState::Held, "held alerts"),
        _ => (OutboxState::Sent, "sent alerts"),
    };
    let mut out = std::io::stdout().lock();
    let Some(store) = daemon::open_store(config, daemon::Access::Existing)
        .await
        .context("cannot read the state store")?
    else {
        writeln!(
            out,
            "nothing to replay: no state yet in {}",
            config.daemon.state_dir.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let now = chrono::Utc::now();
    let since = args.since.map(|d| crate::model::earlier(now, d));
    let rows: Vec<_> = store
        .replayable(state, since)
        .await?
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
        store.requeue(&ids, now).await?;
        writeln!(
            out,
            "re-queued {} {what}; a running daemon sends them within a minute, or run `newshound once`",
            rows.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether there is a store at all, and what `status` shows of it.
async fn read_snapshot(config: &Config, scope: Scope) -> anyhow::Result<(bool, Snapshot)> {
    let store = daemon::open_store(config, daemon::Access::ReadOnly)
        .await
        .context("cannot read the state store")?;
    let snapshot = Snapshot::read_full(config, store.as_ref(), scope, chrono::Utc::now()).await?;
    Ok((store.is_some(), snapshot))
}

impl FeedStatus {
    /// Whether it is anything but fine: failing, stale, never polled, broken, read
    /// only once repaired, missing articles or items (gaps).
    fn needs_a_look(&self) -> bool {
        self.result != "ok"
            || self.broken_since.is_some()
            || self.repaired.is_some()
            || self.articles_failed > 0
            || self.gaps > 0
    }
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
    /// What was wrong with the last document, read only once made well-formed.
    repaired: Option<String>,
    /// How many articles of its items (`fetch_article`) could not be read, in all.
    articles_failed: u64,
    /// Why the last of them could not be, with its link.
    article_error: Option<String>,
    /// How many polls found it had published more than it keeps since the last.
    gaps: u64,
    /// How many of its items filters dropped, in all.
    dropped: u64,
    last_new_item: Option<String>,
    items_known: u64,
}

/// `migrate-state`: copies the embedded state into an empty PostgreSQL database, with
/// the daemon stopped (its state directory is locked for the move), so that a user
/// moves to `[store]` without alerting again or losing the queue.
pub(super) async fn migrate_state(config: &Config, to: &str) -> anyhow::Result<ExitCode> {
    let dir = &config.daemon.state_dir;
    let _lock = StateLock::acquire(dir)?;
    let Some(from) = Store::open_existing(dir)
        .await
        .context("cannot read the state store")?
    else {
        anyhow::bail!(
            "no state in {}: nothing to move (start newshound with [store] url = {to:?} instead)",
            dir.display()
        );
    };
    let dump = from.dump().await?;
    let into = Store::connect(to, None, "migrate-state")
        .await
        .context("cannot open the database to move into")?;
    into.load(&dump).await?;
    let counts = into.outbox_counts().await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "moved {} feeds, {} seen items and {} alerts ({} pending, {} sent, {} dead, {} held) from {} into the database",
        dump.feeds.len(),
        dump.seen.len(),
        dump.outbox.len(),
        counts.pending,
        counts.sent,
        counts.dead,
        counts.held,
        dir.display()
    )?;
    writeln!(
        out,
        "next: add [store] with url = \"{}\" to {}, and start newshound; the SQLite file is left as it was",
        crate::store::redacted_url(to),
        config.file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `backup FILE`: a consistent copy of the SQLite state, taken while the daemon runs;
/// for a `[store]`, the `pg_dump` command that does it.
pub(super) fn backup(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    if let Some(shared) = &config.store {
        println!(
            "pg_dump --format=custom --file={} '{}'",
            shell_word(file),
            store::redacted_url(&shared.url)
        );
        eprintln!(
            "the state is in PostgreSQL ([store]); nothing was written: back it up with \
             pg_dump, as above (it asks for the password, or reads PGPASSWORD)"
        );
        return Ok(ExitCode::FAILURE);
    }
    let contents = store::backup(&config.daemon.state_dir, file)
        .with_context(|| format!("cannot back up {}", config.daemon.state_dir.display()))?;
    println!("backed up {contents} to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// `restore FILE`: the state saved in FILE put in place of the current one, which is
/// kept; refused while a daemon runs on the state, or when FILE is no whole state.
pub(super) fn restore(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    if let Some(shared) = &config.store {
        eprintln!(
            "the state is in PostgreSQL ([store]); restore a pg_dump backup with: \
             pg_restore --clean --if-exists --dbname='{}' {}",
            store::redacted_url(&shared.url),
            shell_word(file)
        );
        return Ok(ExitCode::FAILURE);
    }
    let dir = &config.daemon.state_dir;
    let lock =
        StateLock::acquire(dir).context("cannot restore while a daemon runs on the state")?;
    let (contents, kept) =
        store::restore(dir, file, &lock, chrono::Utc::now()).context("cannot restore")?;
    println!("restored {contents} from {}", file.display());
    if let Some(kept) = kept {
        println!("the state it replaced is kept as {}", kept.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `path` as one shell word: quoted when it holds anything but plain characters.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
