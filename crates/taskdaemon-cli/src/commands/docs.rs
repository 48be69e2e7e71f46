//! `taskdaemon completions SHELL` and `taskdaemon man [-o DIR]`: shell
//! completion scripts and man pages, both generated from the argument
//! definitions in `args.rs`, so they never drift from the real commands.

use std::io::Write;

use anyhow::Context;

use crate::args::{CompletionsArgs, ManArgs, full_command};

/// The name the binary is installed under.
const BIN: &str = "taskdaemon";

pub fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut without_hidden(full_command()),
        BIN,
        &mut script,
    );
    write_stdout(&script)?;
    Ok(0)
}

pub fn man(args: ManArgs) -> anyhow::Result<u8> {
    match args.output {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(full_command(), &dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
            println!(
                "wrote {BIN}.1 and its subcommand pages to {}",
                dir.display()
            );
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(full_command())
                .render(&mut page)
                .context("cannot render the man page")?;
            write_stdout(&page)?;
        }
    }
    Ok(0)
}

/// The command line without its hidden subcommands (`__shim`, `__daemon`):
/// some shells' generators offer hidden subcommands, and nobody types these.
fn without_hidden(cli: clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut cmd = clap::Command::new(BIN)
        .args(cli.get_arguments().cloned())
        .subcommands(visible);
    if let Some(about) = cli.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}
