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
    if let Some(cli) = shim_command_line(&args) {
        return cli;
    }
    let alias = args.first().and_then(|argv0| aliases::called_as(argv0));
    let (args, command) = match alias {
        Some(alias) => (
            aliases::translate(alias, args),
            Cli::command().name(alias).bin_name(alias),
        ),
        None => (args, Cli::command()),
    };
    // Never freed: the tree is of no use once parsed, and freeing its
    // thousands of small allocations cost a sixth of a `--version`; the
    // process exit returns the memory anyway.
    let mut command = std::mem::ManuallyDrop::new(command);
    let matches = command
        .try_get_matches_from_mut(args)
        .unwrap_or_else(|e| e.exit());
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The command line the daemon starts a shim with, exactly
/// (`taskdaemon --workspace DIR __shim ID`, see
/// [`taskdaemon_supervisor::launch_shim`], or `... __shim-standby`, see
/// [`taskdaemon_supervisor::standby`]), read without clap: a busy queue
/// starts hundreds of shims a second, and building the model of every
/// subcommand costs each of them more than parsing it. Anything else
/// (another order, more arguments, text that is not UTF-8) goes to clap.
fn shim_command_line(args: &[std::ffi::OsString]) -> Option<Cli> {
    let (dir, command) = match args {
        [_, flag, dir, subcommand, id]
            if flag == "--workspace" && subcommand == taskdaemon_supervisor::SHIM_SUBCOMMAND =>
        {
            let id = id.to_str()?.to_owned();
            (dir, Command::Shim { id })
        }
        // A standby shim (`--workspace DIR __shim-standby`), started as often.
        [_, flag, dir, subcommand]
            if flag == "--workspace"
                && subcommand == taskdaemon_supervisor::standby::STANDBY_SUBCOMMAND =>
        {
            (dir, Command::ShimStandby)
        }
        _ => return None,
    };
    // As clap reads it: from the environment, an empty value being none.
    let database_url = match std::env::var_os(taskdaemon_service::open::DATABASE_URL_ENV) {
        Some(url) if url.is_empty() => None,
        Some(url) => Some(url.into_string().ok()?),
        None => None,
    };
    Some(Cli {
        workspace: Some(dir.into()),
        database_url,
        command,
    })
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

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::Parser;

    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_shim_command_line_reads_as_clap_reads_it() {
        for line in [
            args(&["taskdaemon", "--workspace", "/tmp/w s", "__shim", "task-1"]),
            args(&["taskdaemon", "--workspace", "/tmp/w s", "__shim-standby"]),
        ] {
            let fast = shim_command_line(&line).expect("the daemon's shim line");
            let parsed = Cli::try_parse_from(&line).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{parsed:?}"));
        }
    }

    #[test]
    fn other_command_lines_go_to_clap() {
        for words in [
            &["taskdaemon", "__shim", "task-1", "--workspace", "/w"][..],
            &[
                "taskdaemon",
                "--workspace",
                "/w",
                "__shim",
                "task-1",
                "extra",
            ],
            &["taskdaemon", "--workspace", "/w", "__daemon", "x"],
            &["taskdaemon", "--workspace", "/w", "__shim-standby", "x"],
            &["taskdaemon", "--workspace", "/w", "status"],
            &["taskdaemon", "--database-url", "/w", "__shim", "task-1"],
            &["taskdaemon", "__shim", "task-1"],
        ] {
            assert!(shim_command_line(&args(words)).is_none(), "{words:?}");
        }
    }
}
