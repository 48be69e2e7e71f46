//! The taskdaemon daemon and its client.
//!
//! One daemon runs per workspace, holding an exclusive lock on
//! `.taskdaemon/daemon.pid`. It serves JSON lines over a Unix socket, launches
//! shims for new processes, re-adopts running ones after its own restart,
//! watches them by pidfd, samples their resource use, raises hang alerts and
//! keeps the registry projection current. Everything it knows is in the
//! store, so it can be killed at any moment and started again.

mod blocking;
pub mod client;
mod follow;
mod gates;
mod handlers;
mod housekeeping;
pub mod lock;
pub mod logging;
mod loop_state;
mod loop_types;
mod loops;
mod pipeline;
pub mod projection;
pub mod protocol;
mod queues;
pub mod registry;
mod request_standby;
pub mod scheduler_state;
mod seed_files;
mod server;
pub mod snapshot;
mod state;
mod store_changes;
mod watchdog;
pub mod worker;

pub use client::{Client, ClientError, start_daemon, start_daemon_with, stop_daemon};
pub use lock::running_pid;
pub use server::{
    CallError, CallHandler, DAEMON_SUBCOMMAND, Extensions, StartHook, run_daemon, run_daemon_with,
    run_foreground,
};
