//! Supervision of processes that outlive the daemon.
//!
//! Each supervised command runs under a shim (a hidden subcommand of the same
//! binary) that sits in its own session, starts the command in its own process
//! group with output going to log files, waits for it, and records its exit in
//! the store and in a file beside the logs. The daemon can therefore die, be
//! upgraded or restarted without losing a process or an exit code.
//!
//! This crate owns the Linux specifics: process identity from `/proc`, exit
//! watching with pidfd, group signalling with escalation, resource sampling,
//! and reconciling the store with what really runs.

/// `eprintln!` that cannot panic. A shim's stderr is its log file, and
/// `eprintln!` panics when that write fails (a full disk): the shim, which
/// alone holds its command's exit status, must outlive that.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod group;
pub mod launch;
pub mod limits;
pub mod memory;
pub mod output;
pub mod pidfd;
pub mod procfs;
pub mod reconcile;
pub mod shim;
pub mod spawn;
pub mod standby;

pub use launch::{LaunchError, Launched, SHIM_SUBCOMMAND, launch_detached, launch_shim};
pub use pidfd::PidWatch;
pub use procfs::{Liveness, liveness};
