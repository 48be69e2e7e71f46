//! The plan scheduler's state as others read it: `.taskdaemon/pipeline.json`,
//! written by the daemon whenever it changes, so `status` can say why no new
//! spec starts (backpressure: a rate limit used up, a circuit breaker open).
//!
//! A projection of the daemon's memory, not of the store: it means nothing
//! while no daemon runs, and [`read`] then says nothing is held.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use taskdaemon_core::time::Millis;
use taskdaemon_workspace::{Workspace, write_projection};

/// What holds the scheduler back now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Why no new model work starts (`None`: nothing holds it back).
    pub held: Option<String>,
    /// Since when it is held.
    pub held_since: Option<Millis>,
    /// Plans whose next step (a plan or spec loop) waits for it.
    pub waiting_plans: Vec<String>,
    /// Ready specs may wait for it too (the scheduler did not look for them).
    pub specs_waiting: bool,
}

/// The state the running daemon published; the default (nothing held)
/// when no daemon runs or it published nothing readable.
pub fn read(workspace: &Workspace) -> SchedulerState {
    if crate::running_pid(workspace).is_none() {
        return SchedulerState::default();
    }
    std::fs::read(workspace.pipeline_state_path())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Replaces the published state.
pub(crate) fn write(path: &Path, state: &SchedulerState) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_projection(path, &bytes)
}
