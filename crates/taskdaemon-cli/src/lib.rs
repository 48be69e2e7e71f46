//! The taskdaemon command line: argument definitions and one function per command.
//!
//! Read commands (`status`, `ps`, `logs`, `wait`, `rehydrate`) open the store
//! directly, so they answer in milliseconds and work while the daemon is down.
//! Commands that change supervised processes go through the daemon, starting
//! it when needed.

mod aliases;
mod args;
mod commands;
mod error;
mod output;

use std::process::ExitCode;

pub use args::{Cli, Command};

/// Parses the process's arguments, as `taskdaemon` or as one of the seed
/// tools' names (see [`aliases`]); exits with usage on bad arguments.
pub fn parse_args() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let alias = args.first().and_then(|argv0| aliases::called_as(argv0));
    let (args, command) = match alias {
        Some(alias) => (
            aliases::translate(alias, args),
            Cli::command().name(alias).bin_name(alias),
        ),
        None => (args, Cli::command()),
    };
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs a parsed command line and turns its outcome into an exit code.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(url) = &cli.database_url {
        // Everything this command starts (the daemon, shims) must use the
        // same store, and reads it from the variable.
        // SAFETY: called from `main` before any thread is started.
        unsafe { std::env::set_var(taskdaemon_service::open::DATABASE_URL_ENV, url) };
    }
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            error::report(&err);
            ExitCode::from(error::exit_code(&err))
        }
    }
}
