use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use newshound::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(cli.default_log_level()));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().with_current_span(true).init(),
        // journald stamps each line itself and shows no colours.
        LogFormat::Text if std::env::var_os("JOURNAL_STREAM").is_some() => {
            logs.without_time().with_ansi(false).init();
        }
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let only_prints = cli.only_prints();
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) if only_prints && cli::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("newshound: {error:#}");
            cli::exit_code(&error)
        }
    }
}
