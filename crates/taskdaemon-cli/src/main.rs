//! The `taskdaemon` binary: parse arguments, run the command, report errors.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = taskdaemon_cli::Cli::parse();
    taskdaemon_cli::run(cli)
}
