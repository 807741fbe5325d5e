use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use newshound::cli::{self, Cli};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(cli.default_log_level()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("newshound: {error:#}");
            cli::exit_code(&error)
        }
    }
}
