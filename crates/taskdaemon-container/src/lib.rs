//! Container execution through the Docker Engine API (Docker, or Podman's
//! compatible service), with `bollard`.
//!
//! This crate owns everything that talks to the engine: finding its socket
//! (`DOCKER_HOST` or the default), the clear "engine unreachable" error,
//! running one task's container to its end ([`run`]: create with labels,
//! start, stream logs to this process's stdout/stderr, wait, remove), and
//! the calls the daemon and `ps` make on a running one (stop with grace,
//! stats), and the cleanup of the containers a dead runner left
//! ([`reap`]). The supervised process of a container task is the runner
//! (`taskdaemon __container ID`) under the usual shim, so ids, statuses,
//! restarts, log files and re-adoption after a daemon restart are the
//! process machinery's.

mod engine;
mod reap;
mod run;

pub use engine::block_on;
pub use engine::{Engine, EngineError, Usage, default_socket, usage_of_all};
pub use reap::reap;
pub use run::{RunEnd, run, short};

pub use taskdaemon_core::container::RUNNER_SUBCOMMAND;
