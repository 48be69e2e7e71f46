//! The pipeline driver: makes approved plans run.
//!
//! It owns *when* each step of a plan happens and the I/O of it: the plan
//! loop (`submit_plan`), the spec loop (`create_spec`, `finish`), then for
//! every ready spec its git worktree, its phase loop (`create_phase`,
//! `finish`), one Ralph loop per phase in order (each succeeded phase
//! committed), and finally rebasing the spec on the plan's target branch,
//! merging it and removing the worktree. The rules it follows live
//! elsewhere: statuses and transitions, the spec DAG, fair ordering and a
//! plan's outcome and which specs are ready in `taskdaemon_core::pipeline`
//! (the store's `ready_specs` applies the same rule in SQL); git in
//! `taskdaemon-git`.
//!
//! - Loops are ordinary loop tasks (the loop manager runs them under its
//!   global semaphore and per-type limits), linked from the plan, spec or
//!   phase they work for before they start; the store charges each
//!   iteration they record to that record, once.
//! - The scheduler ([`scheduler`]) wakes when a step ends, when a person
//!   changes a plan (the `WakePipeline` request) and, while a plan is
//!   open, every `[pipeline] scheduler_interval` (with jitter). With no
//!   plan open it sleeps until the store changes (a plan written by a
//!   process that could not reach the socket, another host's on
//!   PostgreSQL), and so does the target-branch watcher. Each plan and
//!   each spec has at most one task driving it at a time. Under
//!   backpressure ([`backpressure`]) it starts no new model work.
//! - Everything a step needs is read back from the store, so after a crash
//!   the same code resumes every plan where it stood: specs and phases are
//!   created idempotently, a loop that was running resumes at its next
//!   iteration (with its tools; the loop manager leaves these loops to the
//!   driver), a succeeded phase is never run again, and worktrees are
//!   re-attached. At start, worktrees of specs that are no longer open are
//!   removed.

mod backpressure;
mod cascade;
mod delivery;
mod midphase;
mod recovery;
mod resolve;
mod scheduler;
mod view;
mod watcher;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use taskdaemon_core::pipeline::{PlanRecord, SpecRecord};
use taskdaemon_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::scheduler_state::SchedulerState;
use crate::state::Shared;
use recovery::cleanup_orphans;
use scheduler::run;
use view::{View, Work};
use watcher::watch_targets;

pub(crate) use recovery::owned_loops;

/// Loop types that only run under a plan.
pub(crate) const PIPELINE_TYPE_PREFIX: &str = "pipeline-";
/// Held while a spec is rebased on its target and merged into it, as one:
/// specs finishing together would otherwise keep moving the target under
/// each other's rebase. (Git's own worktree bookkeeping has its lock in
/// `taskdaemon-git`.)
static INTEGRATION: Mutex<()> = Mutex::new(());

/// How soon a scheduler held back by backpressure looks again.
const HELD_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a woken scheduler waits for more wake-ups before its pass.
const WAKE_BATCH: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a scheduler woken by a commit (no plan open) waits for more
/// commits before its pass.
const CHANGE_BATCH: std::time::Duration = std::time::Duration::from_millis(200);
/// Rebase-and-merge attempts when the target keeps moving under a spec.
const MERGE_ATTEMPTS: usize = 5;

/// The driver's state in the daemon.
#[derive(Default)]
pub(crate) struct Pipeline {
    /// Wakes the scheduler (a step ended, a plan changed).
    wake: Notify,
    /// Plan and spec ids with a task driving them now.
    busy: Mutex<HashSet<String>>,
    /// The loop running for each plan, spec or phase id, so a Stop or a
    /// cancelled plan can stop it.
    running: Mutex<HashMap<String, String>>,
    /// Running specs whose target branch moved since their last rebase.
    moved: Mutex<HashSet<String>>,
    /// Asks the MainWatcher for a poll now (a spec was merged).
    poke: Notify,
    /// Wakes a MainWatcher that sleeps because no plan ran: the
    /// scheduler's view has a running plan now.
    plans_running: Notify,
    /// The scheduler's first pass is done (it looks at every plan once).
    settled: std::sync::atomic::AtomicBool,
    /// What the scheduler's next pass looks at.
    work: Mutex<Work>,
    /// Open plans and their specs as the driver last wrote or read them.
    view: Mutex<View>,
    /// The scheduler state last published for `status`.
    published: Mutex<Option<SchedulerState>>,
}

impl Pipeline {
    /// Asks the scheduler for a full pass now: a person changed a plan.
    pub(crate) fn wake_full(&self) {
        lock(&self.work).full = true;
        self.wake.notify_one();
    }

    /// Asks for a pass looking at `plan`'s plan-level step and, with
    /// `ready`, at the ready specs (a step of the plan ended, or specs were
    /// created).
    fn wake_plan(&self, plan: &str, ready: bool) {
        {
            let mut work = lock(&self.work);
            work.plans.insert(plan.to_owned());
            work.ready |= ready;
        }
        self.wake.notify_one();
    }

    /// Keeps the view current with a plan the driver wrote or read.
    fn saw_plan(&self, plan: &PlanRecord) {
        lock(&self.view).plan(plan);
    }

    /// Keeps the view current with a spec the driver wrote or created.
    fn saw_spec(&self, spec: &SpecRecord) {
        lock(&self.view).spec(spec);
    }
}

/// Cleans up orphaned worktrees, then runs the scheduler for the daemon's life.
pub(crate) async fn start(daemon: &Shared) {
    let d = daemon.clone();
    let cleaned = blocking(move || cleanup_orphans(&d)).await;
    match cleaned {
        Ok(Ok(removed)) if !removed.is_empty() => {
            tracing::info!(count = removed.len(), "removed orphaned spec worktrees");
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot clean up spec worktrees"),
        Err(e) => tracing::warn!(error = %e, "worktree cleanup panicked"),
    }
    tokio::spawn(run(daemon.clone()));
    tokio::spawn(watch_targets(daemon.clone()));
}

pub(super) fn claim(daemon: &Shared, id: &str) -> bool {
    lock(&daemon.pipeline.busy).insert(id.to_owned())
}

/// A task driving a plan or spec ended: its plan may have a step due, and
/// specs may have become ready (the spec loop created them, or the spec
/// succeeded and others depended on it).
pub(super) fn release(daemon: &Shared, id: &str) {
    lock(&daemon.pipeline.busy).remove(id);
    let plan = id.split('/').next().unwrap_or(id);
    daemon.pipeline.wake_plan(plan, true);
}

/// Runs `work` with the store on a blocking thread.
pub(super) async fn store<T: Send + 'static>(
    daemon: &Shared,
    work: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let d = daemon.clone();
    blocking(move || work(&*d.store).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}
