//! The daemon drives gates: it evaluates the waiting ones when the store
//! changes (a process or queue task ended, a gate was added) and when a time
//! or command gate falls due, and sleeps otherwise.
//!
//! The rules are core's (`taskdaemon_core::gate`) and the store's
//! (`resolve_gate` re-decides the task); this thread only gathers the facts:
//! an awaited task's status, the clock, a command's exit status. With no
//! gate waiting on a time it wakes only on a commit (the daemon's shared
//! store watch, which also wakes it when the daemon ends), never to poll.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use taskdaemon_core::gate::{
    Gate, GateKind, GateOutcome, GateState, command_backoff, due_at, succeeds_outcome, time_outcome,
};
use taskdaemon_core::time::{Millis, now_millis};
use taskdaemon_store::{Store, StoreError};

use crate::state::Daemon;

/// The longest wait for a gate that falls due, and the pause after a
/// failed evaluation.
const RECHECK: Duration = Duration::from_secs(5);
/// The longest a gate command may run before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running gate command is checked for its exit.
const COMMAND_POLL: Duration = Duration::from_millis(20);
const ACTOR: &str = "daemon:gates";

pub(crate) fn start(daemon: &Arc<Daemon>) {
    let weak = Arc::downgrade(daemon);
    let spawned = std::thread::Builder::new()
        .name("gates".to_owned())
        .spawn(move || run(weak));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the gate evaluator");
    }
}

fn run(daemon: Weak<Daemon>) {
    let Some(mut waiter) = daemon.upgrade().map(|d| d.changes.waiter()) else {
        return;
    };
    let mut changed = true;
    let mut next_due: Option<Millis> = None;
    loop {
        let Some(d) = daemon.upgrade() else { return };
        let due = next_due.is_some_and(|at| at <= now_millis());
        if changed || due {
            next_due = match evaluate(&*d.store, d.workspace.root()) {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot evaluate gates");
                    Some(now_millis() + RECHECK.as_millis() as Millis)
                }
            };
        }
        drop(d);
        changed = waiter.wait(sleep_for(next_due));
    }
}

/// How long to sleep: until the next gate falls due (at most [`RECHECK`],
/// in case the clock jumps), or until a commit when none waits on a time.
fn sleep_for(next_due: Option<Millis>) -> Duration {
    let Some(at) = next_due else {
        return Duration::MAX;
    };
    let ms = (at - now_millis()).clamp(0, RECHECK.as_millis() as Millis);
    Duration::from_millis(ms as u64)
}

/// Decides every waiting gate that can be decided now; returns when the
/// next time or command gate falls due.
pub(crate) fn evaluate(store: &dyn Store, root: &Path) -> Result<Option<Millis>, StoreError> {
    let mut next: Option<Millis> = None;
    for gate in store.shut_gates()? {
        if gate.state() != GateState::Waiting {
            continue;
        }
        let now = now_millis();
        let gate = match decide(store, &gate, root, now)? {
            Some(outcome) => store.resolve_gate(&gate.task_id, gate.seq, &outcome, ACTOR)?,
            None => gate,
        };
        if let Some(at) = due_at(&gate) {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    Ok(next)
}

/// What one waiting gate's facts say now; `None` to keep waiting.
fn decide(
    store: &dyn Store,
    gate: &Gate,
    root: &Path,
    now: Millis,
) -> Result<Option<GateOutcome>, StoreError> {
    let target = gate.target.as_deref().unwrap_or_default();
    Ok(match gate.kind {
        GateKind::UntilSucceeds => match store.task(target) {
            Ok(task) => succeeds_outcome(&task.id, task.status),
            Err(StoreError::NotFound(_)) => Some(GateOutcome::Never(format!("{target} is gone"))),
            Err(other) => return Err(other),
        },
        GateKind::Until => gate.until.and_then(|at| time_outcome(at, now)),
        GateKind::UntilCommand if due_at(gate).is_some_and(|at| at <= now) => {
            Some(if command_succeeds(target, root) {
                GateOutcome::Open
            } else {
                let wait = command_backoff(gate.attempts).as_millis() as Millis;
                GateOutcome::Retry {
                    next_check: now_millis() + wait,
                }
            })
        }
        GateKind::UntilCommand | GateKind::Approval => None,
    })
}

/// Runs a gate command with `sh -c` in the workspace root; true when it
/// exits 0 within [`COMMAND_TIMEOUT`].
fn command_succeeds(command: &str, root: &Path) -> bool {
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!(error = %e, command, "cannot run a gate command");
            return false;
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if started.elapsed() < COMMAND_TIMEOUT => std::thread::sleep(COMMAND_POLL),
            Ok(None) | Err(_) => {
                tracing::warn!(command, "a gate command timed out; it counts as failed");
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
