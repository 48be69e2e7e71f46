//! `taskdaemon service install|uninstall`: a systemd user unit for the daemon.
//!
//! The unit runs `taskdaemon --workspace ROOT __daemon` in the foreground.
//! `KillMode=process` matters: stopping the service must end the daemon
//! only, never the shims and commands it supervises (they share its cgroup).
//! `systemctl --user daemon-reload` is run only when systemctl exists.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use taskdaemon_workspace::{Workspace, write_atomic};

use super::current_exe;
use crate::args::ServiceArgs;
use crate::error::UsageError;

/// The unit's file name.
pub const UNIT_NAME: &str = "taskdaemon.service";

/// The unit text for a workspace and binary.
pub fn unit_text(exe: &Path, workspace: &Workspace) -> String {
    format!(
        "# Written by `taskdaemon service install`; `taskdaemon service uninstall` removes it.\n\
         [Unit]\n\
         Description=taskdaemon for {root}\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exe} --workspace {root} __daemon\n\
         WorkingDirectory={root}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         # Stop the daemon only: supervised processes keep running, as with `taskdaemon stop`.\n\
         KillMode=process\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exe = quote(&exe.display().to_string()),
        root = quote(&workspace.root().display().to_string()),
    )
}

/// systemd splits ExecStart on spaces; quote paths that have any.
fn quote(text: &str) -> String {
    if text.contains([' ', '"', '\\']) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text.to_owned()
    }
}

/// `--unit-dir`, else `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
fn unit_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = arg {
        return Ok(dir.to_owned());
    }
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(config).join("systemd/user"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| UsageError("HOME is not set: pass --unit-dir DIR".to_owned()))?;
    Ok(PathBuf::from(home).join(".config/systemd/user"))
}

fn systemctl_available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("systemctl").is_file()))
}

/// `systemctl --user ARGS`, or a note that it is not there.
fn systemctl(args: &[&str]) {
    if !systemctl_available() {
        println!(
            "systemctl not found: run `systemctl --user {}` where systemd is available",
            args.join(" ")
        );
        return;
    }
    match Command::new("systemctl").arg("--user").args(args).status() {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!(
            "warning: systemctl --user {} exited with {status}",
            args.join(" ")
        ),
        Err(e) => eprintln!("warning: cannot run systemctl: {e}"),
    }
}

pub fn install(workspace: &Workspace, args: ServiceArgs) -> anyhow::Result<u8> {
    let path = unit_dir(args.unit_dir.as_deref())?.join(UNIT_NAME);
    let text = unit_text(&current_exe()?, workspace);
    if args.dry_run {
        println!("would write {}:\n\n{text}", path.display());
        return Ok(0);
    }
    write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    systemctl(&["daemon-reload"]);
    println!("start it now and at login: systemctl --user enable --now {UNIT_NAME}");
    Ok(0)
}

pub fn uninstall(_workspace: &Workspace, args: ServiceArgs) -> anyhow::Result<u8> {
    let path = unit_dir(args.unit_dir.as_deref())?.join(UNIT_NAME);
    if !path.exists() {
        println!("no unit at {}: nothing to remove", path.display());
        return Ok(0);
    }
    if args.dry_run {
        println!("would remove {}", path.display());
        return Ok(0);
    }
    if systemctl_available() {
        systemctl(&["disable", "--now", UNIT_NAME]);
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    println!("removed {}", path.display());
    systemctl(&["daemon-reload"]);
    Ok(0)
}
