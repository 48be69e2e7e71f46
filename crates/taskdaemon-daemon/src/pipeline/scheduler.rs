//! The scheduler: finds the next step of every open plan and spec and
//! starts one task for each, at most one per plan or spec.
//!
//! Two kinds of pass. A full pass (at start, every `scheduler_interval`
//! while a plan is open, on any commit to the store while none is, and
//! when a person changes a plan) reads every open plan from the store,
//! rebuilds the [`View`], stops loops of work that ended under them and
//! dead-letters messages to ended specs. The passes in between, woken when
//! a step ends or a spec loop creates specs, decide from the view alone,
//! ready specs included: they read nothing from the store.
//!
//! While the LLM rate limiter is saturated or a circuit breaker is open
//! (backpressure), no new model work starts: ready specs and plan or spec
//! loops wait, and what the pass could not do is kept for the next one.

use taskdaemon_core::pipeline::{Delivery, PlanTree, fair_order};
use taskdaemon_core::time::now_millis;
use taskdaemon_store::{MessageFilter, PlanFilter, Store, StoreError};

use super::backpressure::{Held, held_now, publish};
use super::cascade::{drive_plan, drive_spec};
use super::view::{PlanStep, Work};
use super::{CHANGE_BATCH, HELD_RETRY, WAKE_BATCH, claim, release};
use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::state::{ACTOR, Shared};

pub(super) async fn run(daemon: Shared) {
    let interval = daemon.config.pipeline.scheduler_interval;
    let mut changes = daemon.changes.subscribe();
    // The first pass looks at every plan: loops a crash interrupted resume.
    lock(&daemon.pipeline.work).full = true;
    loop {
        // A commit from here on comes after this pass's reads: it wakes
        // the next (when the scheduler sleeps on commits).
        changes.borrow_and_update();
        let held = schedule(&daemon).await;
        // With no plan open there is nothing to tick for: only a commit
        // (another process's or host's new plan) or a wake-up can give the
        // scheduler work, so it sleeps until one comes.
        let (idle, running) = {
            let view = lock(&daemon.pipeline.view);
            (!held && view.len() == 0, view.any_running())
        };
        if running {
            daemon.pipeline.plans_running.notify_one();
        }
        // Up to a fifth more, so daemons of many workspaces do not tick together.
        let jitter = interval.mul_f64(f64::from((now_millis() % 200) as u32) / 1000.0);
        let tick = if held {
            HELD_RETRY.min(interval)
        } else {
            interval + jitter
        };
        tokio::select! {
            _ = daemon.pipeline.wake.notified() => {
                // Steps often end in bursts (50 specs finishing a phase):
                // one pass serves them all.
                tokio::time::sleep(WAKE_BATCH).await;
            }
            _ = tokio::time::sleep(tick), if !idle => {
                if !held {
                    lock(&daemon.pipeline.work).full = true;
                }
            }
            Ok(()) = changes.changed(), if idle => {
                // Commits come in bursts too (a process's start is
                // several); a busy store costs one look per batch.
                tokio::time::sleep(CHANGE_BATCH).await;
                lock(&daemon.pipeline.work).full = true;
            }
        }
    }
}

/// One pass over what the wake-ups asked for; returns whether backpressure
/// held work back (the scheduler then looks again soon).
async fn schedule(daemon: &Shared) -> bool {
    let started = std::time::Instant::now();
    let work = std::mem::take(&mut *lock(&daemon.pipeline.work));
    if work.is_empty() {
        return false;
    }
    let held = held_now(daemon);
    let full = work.full;
    let (started_tasks, left) = if full {
        full_pass(daemon, held.as_ref()).await
    } else {
        incremental_pass(daemon, work, held.as_ref()).await
    };
    let held_back = !left.is_empty();
    publish(daemon, held.as_ref(), &left).await;
    lock(&daemon.pipeline.work).merge(left);
    tracing::debug!(
        full,
        plans = lock(&daemon.pipeline.view).len(),
        started = started_tasks,
        held = held_back,
        micros = started.elapsed().as_micros() as u64,
        "scheduler pass"
    );
    held_back
}

/// Reads every open plan, rebuilds the view and starts what is due: each
/// plan's plan-level step (every plan's on the first pass, to resume), specs
/// left running (a restart), and ready specs. Returns the tasks started and
/// the work backpressure held back.
async fn full_pass(daemon: &Shared, held: Option<&Held>) -> (usize, Work) {
    let d = daemon.clone();
    let read = blocking(move || {
        let open = PlanFilter {
            open_only: true,
            limit: None,
        };
        let mut trees = Vec::new();
        for plan in d.store.plans(&open)? {
            let tree = d.store.plan_tree(&plan.id)?;
            dead_letter_ended(&*d.store, &tree)?;
            trees.push(tree);
        }
        Ok::<_, StoreError>(trees)
    })
    .await;
    let trees = match read {
        Ok(Ok(trees)) => trees,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "scheduler cannot read plans");
            return (0, Work::default());
        }
        Err(e) => {
            tracing::warn!(error = %e, "scheduler panicked");
            return (0, Work::default());
        }
    };
    sweep(daemon, &trees);
    lock(&daemon.pipeline.view).rebuild(&trees);
    let first = !daemon
        .pipeline
        .settled
        .swap(true, std::sync::atomic::Ordering::SeqCst);
    let mut left = Work::default();
    let mut started = 0;
    for tree in &trees {
        let id = &tree.plan.id;
        let due = lock(&daemon.pipeline.view).step_due(id);
        if first || due == Some(PlanStep::Outcome) {
            started += spawn_plan(daemon, id);
        } else if due == Some(PlanStep::Loop) {
            if held.is_some() {
                left.plans.insert(id.clone());
            } else {
                started += spawn_plan(daemon, id);
            }
        }
        if tree.plan.status != taskdaemon_core::pipeline::PipelineStatus::Running {
            continue;
        }
        for spec in &tree.specs {
            if spec.spec.status == taskdaemon_core::pipeline::PipelineStatus::Running {
                started += spawn_spec(daemon, &spec.spec.id);
            }
        }
    }
    let (ready, ready_left) = start_ready(daemon, held);
    left.ready = ready_left;
    (started + ready, left)
}

/// Decides from the view: the plan-level steps of the plans named, and the
/// ready specs when some may have become ready.
async fn incremental_pass(daemon: &Shared, work: Work, held: Option<&Held>) -> (usize, Work) {
    let mut left = Work::default();
    let mut started = 0;
    for plan in &work.plans {
        let due = lock(&daemon.pipeline.view).step_due(plan);
        match due {
            Some(PlanStep::Loop) if held.is_some() => {
                left.plans.insert(plan.clone());
            }
            Some(_) => started += spawn_plan(daemon, plan),
            None => {}
        }
    }
    if work.ready {
        let (ready, ready_left) = start_ready(daemon, held);
        started += ready;
        left.ready = ready_left;
    }
    (started, left)
}

/// Starts every ready spec, fairly ordered, as the view has them (kept
/// current by the driver's writes, rebuilt by every full pass: no store
/// read); under backpressure none (and says the look is still owed).
fn start_ready(daemon: &Shared, held: Option<&Held>) -> (usize, bool) {
    if held.is_some() {
        return (0, true);
    }
    let ready = lock(&daemon.pipeline.view).ready();
    let started = fair_order(ready)
        .iter()
        .map(|spec| spawn_spec(daemon, &spec.id))
        .sum();
    (started, false)
}

fn spawn_plan(daemon: &Shared, id: &str) -> usize {
    if !claim(daemon, id) {
        return 0;
    }
    let (d, id) = (daemon.clone(), id.to_owned());
    tokio::spawn(async move {
        if let Err(e) = drive_plan(&d, &id).await {
            tracing::warn!(plan = id, error = e, "plan step failed");
        }
        release(&d, &id);
    });
    1
}

/// Stops the loops working for `target` (a plan, spec or phase id) and
/// everything under it.
pub(super) fn stop_loops(daemon: &Shared, target: &str) {
    let prefix = format!("{target}/");
    let loops: Vec<String> = lock(&daemon.pipeline.running)
        .iter()
        .filter(|(link, _)| *link == target || link.starts_with(&prefix))
        .map(|(_, id)| id.clone())
        .collect();
    let active = lock(&daemon.loops.active);
    for id in loops {
        if let Some(token) = active.get(&id) {
            tracing::info!(target, loop_id = id, "stopping a pipeline loop");
            token.cancel();
        }
    }
}

/// Stops loops of plans and specs that ended under them (`plan cancel`, a
/// Stop message), and moves messages for ended specs to the dead letters.
pub(super) fn sweep(daemon: &Shared, trees: &[PlanTree]) {
    let links: Vec<String> = lock(&daemon.pipeline.running).keys().cloned().collect();
    for link in links {
        let plan = link.split('/').next().unwrap_or_default();
        let Some(tree) = trees.iter().find(|t| t.plan.id == plan) else {
            stop_loops(daemon, plan);
            continue;
        };
        if let Some(spec) = tree.specs.iter().find(|s| {
            !s.spec.status.is_open()
                && (link == s.spec.id || link.starts_with(&format!("{}/", s.spec.id)))
        }) {
            stop_loops(daemon, &spec.spec.id);
        }
    }
}

/// Moves pending messages addressed to ended specs to the dead letters.
pub(super) fn dead_letter_ended(store: &dyn Store, tree: &PlanTree) -> Result<(), StoreError> {
    if tree.specs.iter().all(|s| s.spec.status.is_open()) {
        return Ok(());
    }
    let pending = store.messages(&MessageFilter {
        plan: Some(tree.plan.id.clone()),
        delivery: vec![Delivery::Pending],
        ..MessageFilter::default()
    })?;
    if pending.is_empty() {
        // Nothing pending, so no broadcast to settle either: a full pass
        // writes nothing (and waits behind no loop's write).
        return Ok(());
    }
    for message in pending {
        let Some(spec) = tree
            .specs
            .iter()
            .find(|s| s.spec.name == message.to && !s.spec.status.is_open())
        else {
            continue;
        };
        let reason = format!(
            "spec {} has ended ({}): no loop of it will read this",
            spec.spec.name, spec.spec.status
        );
        store.dead_letter(&message.id, &reason, ACTOR)?;
    }
    store.settle_broadcasts(&tree.plan.id, ACTOR)?;
    Ok(())
}

pub(super) fn spawn_spec(daemon: &Shared, id: &str) -> usize {
    if !claim(daemon, id) {
        return 0;
    }
    let (d, id) = (daemon.clone(), id.to_owned());
    tokio::spawn(async move {
        if let Err(e) = drive_spec(&d, &id).await {
            tracing::warn!(spec = id, error = e, "spec step failed");
        }
        release(&d, &id);
    });
    1
}
