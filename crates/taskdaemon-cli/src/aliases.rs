//! The seed tools' command names: the same binary answers as
//! `task-watchdog` (seed 000) and `task-queue` (seed 002) when it is called
//! by those names, e.g. through the symlinks `install-aliases` makes. Their
//! users keep their scripts; each name's usage text shows that name.
//!
//! Every taskdaemon command works under either name. The one word that
//! means something else is seed 000's `run CMD...` (run a command under
//! supervision), which `task-watchdog` maps to `spawn -- CMD...`;
//! `taskdaemon run` stays the foreground daemon.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// The names the binary answers to besides `taskdaemon`.
pub const ALIASES: [&str; 2] = ["task-watchdog", "task-queue"];

/// The name the binary was called by, when it is one of [`ALIASES`].
pub fn called_as(argv0: &std::ffi::OsStr) -> Option<&'static str> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    ALIASES.into_iter().find(|alias| *alias == name)
}

/// The arguments as taskdaemon reads them, for a binary called `alias`.
pub fn translate(alias: &str, mut args: Vec<OsString>) -> Vec<OsString> {
    if alias != "task-watchdog" {
        return args;
    }
    // The subcommand is the first argument that is not an option (global
    // options before it take a value only in the `--opt=value` form or as
    // the next argument; both are skipped).
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--workspace" || arg == "--database-url" {
            i += 2;
        } else if arg.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    if args.get(i).is_some_and(|a| a == "run") {
        args[i] = OsString::from("spawn");
        let has_separator = args[i + 1..].iter().any(|a| a == "--");
        if !has_separator {
            // `run CMD ARGS...`: everything after is the command.
            let first_command_arg = args[i + 1..]
                .iter()
                .position(|a| !a.to_string_lossy().starts_with('-'))
                .map_or(args.len(), |p| i + 1 + p);
            args.insert(first_command_arg, OsString::from("--"));
        }
    }
    args
}

/// Makes `DIR/task-watchdog` and `DIR/task-queue` symlinks to `exe`. An
/// existing link to `exe` is left as it is; anything else in the way is an
/// error naming it, and nothing is replaced.
pub fn install(dir: &Path, exe: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut made = Vec::new();
    for alias in ALIASES {
        let link = dir.join(alias);
        match std::fs::read_link(&link) {
            Ok(target) if target == exe => continue,
            Ok(target) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} already links to {}; remove it first",
                        link.display(),
                        target.display()
                    ),
                ));
            }
            Err(_) if link.symlink_metadata().is_ok() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a link; remove it first",
                        link.display()
                    ),
                ));
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(exe, &link)?;
        made.push(link);
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn watchdog_run_becomes_spawn() {
        assert_eq!(
            translate("task-watchdog", args(&["tw", "run", "make", "-j4"])),
            args(&["tw", "spawn", "--", "make", "-j4"])
        );
        assert_eq!(
            translate(
                "task-watchdog",
                args(&["tw", "--workspace", "/w", "run", "--tool", "x", "--", "ls"])
            ),
            args(&[
                "tw",
                "--workspace",
                "/w",
                "spawn",
                "--tool",
                "x",
                "--",
                "ls"
            ])
        );
        assert_eq!(
            translate("task-watchdog", args(&["tw", "rehydrate"])),
            args(&["tw", "rehydrate"])
        );
        assert_eq!(
            translate("task-queue", args(&["tq", "run"])),
            args(&["tq", "run"])
        );
    }

    #[test]
    fn aliases_are_recognised_by_file_name() {
        assert_eq!(
            called_as("/usr/local/bin/task-queue".as_ref()),
            Some("task-queue")
        );
        assert_eq!(called_as("taskdaemon".as_ref()), None);
    }
}
