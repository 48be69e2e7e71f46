//! The `taskdaemon` binary: parse arguments, run the command, report errors.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = taskdaemon_cli::Cli::parse();
    if !matches!(
        cli.command,
        taskdaemon_cli::Command::Shim { .. } | taskdaemon_cli::Command::Daemon
    ) {
        // `ps | head` should end quietly like any Unix tool. The daemon and
        // shims keep Rust's default (ignored SIGPIPE) so a vanished reader
        // never kills them.
        // SAFETY: called before any thread starts; SIG_DFL is always valid.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    taskdaemon_cli::run(cli)
}
