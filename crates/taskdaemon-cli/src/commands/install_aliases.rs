//! `taskdaemon install-aliases [DIR]`: links named like the seed tools.

use std::path::Path;

use anyhow::Context;

use crate::aliases;
use crate::args::InstallAliasesArgs;

/// `install-aliases [DIR]`: the seed tools' names as links to this binary.
pub fn run(args: InstallAliasesArgs) -> anyhow::Result<u8> {
    let exe = super::current_exe()?;
    let dir = match args.dir {
        Some(dir) => dir,
        None => exe
            .parent()
            .map(Path::to_owned)
            .context("cannot tell which folder this binary is in")?,
    };
    let made = aliases::install(&dir, &exe)?;
    for alias in aliases::ALIASES {
        let link = dir.join(alias);
        let state = if made.contains(&link) {
            "made"
        } else {
            "already there"
        };
        println!("{}  ({state})", link.display());
    }
    Ok(0)
}
