//! The scheduler: finds the next step of every open plan and spec and
//! starts one task for each, at most one per plan or spec.

use taskdaemon_core::pipeline::{
    Delivery, PipelineStatus, PlanTree, SpecRecord, fair_order, plan_outcome,
};
use taskdaemon_core::time::now_millis;
use taskdaemon_store::{MessageFilter, PlanFilter, Store, StoreError};

use super::cascade::{drive_plan, drive_spec};
use super::{READY_LIMIT, WAKE_BATCH, claim, release};
use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::state::{ACTOR, Shared};

pub(super) async fn run(daemon: Shared) {
    let interval = daemon.config.pipeline.scheduler_interval;
    loop {
        schedule(&daemon).await;
        // Up to a fifth more, so daemons of many workspaces do not tick together.
        let jitter = interval.mul_f64(f64::from((now_millis() % 200) as u32) / 1000.0);
        tokio::select! {
            _ = daemon.pipeline.wake.notified() => {
                // Steps often end in bursts (50 specs finishing a phase):
                // one pass serves them all.
                tokio::time::sleep(WAKE_BATCH).await;
            }
            _ = tokio::time::sleep(interval + jitter) => {}
        }
    }
}

/// One scheduler pass: a task for each open plan's next plan-level step,
/// for each spec left running (a restart), and for each ready spec.
pub(super) async fn schedule(daemon: &Shared) {
    let started = std::time::Instant::now();
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
        let ready = d.store.ready_specs(READY_LIMIT)?;
        Ok::<_, StoreError>((trees, ready))
    })
    .await;
    let (trees, ready) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "scheduler cannot read plans");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "scheduler panicked");
            return;
        }
    };
    sweep(daemon, &trees);
    let first = !daemon
        .pipeline
        .settled
        .swap(true, std::sync::atomic::Ordering::SeqCst);
    let mut started_tasks = 0;
    for tree in &trees {
        if (first || needs_plan_step(tree)) && claim(daemon, &tree.plan.id) {
            started_tasks += 1;
            let (d, id) = (daemon.clone(), tree.plan.id.clone());
            tokio::spawn(async move {
                if let Err(e) = drive_plan(&d, &id).await {
                    tracing::warn!(plan = id, error = e, "plan step failed");
                }
                release(&d, &id);
            });
        }
        if tree.plan.status != PipelineStatus::Running {
            continue;
        }
        for spec in &tree.specs {
            if spec.spec.status == PipelineStatus::Running {
                started_tasks += spawn_spec(daemon, &spec.spec.id);
            }
        }
    }
    for spec in fair_order(ready) {
        started_tasks += spawn_spec(daemon, &spec.id);
    }
    tracing::debug!(
        plans = trees.len(),
        started = started_tasks,
        micros = started.elapsed().as_micros() as u64,
        "scheduler pass"
    );
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
    Ok(())
}

/// Whether a plan has a plan-level step to take, judged from its tree. A
/// running plan whose specs are under way has none: its spec loop ended in
/// the task that ran it, which then stopped. (The first pass after a start
/// looks at every plan, so a spec loop a crash interrupted is resumed.)
pub(super) fn needs_plan_step(tree: &PlanTree) -> bool {
    match tree.plan.status {
        PipelineStatus::Draft => tree.plan.body.is_none(),
        PipelineStatus::Pending => true,
        PipelineStatus::Running => {
            let specs: Vec<SpecRecord> = tree.specs.iter().map(|s| s.spec.clone()).collect();
            specs.is_empty() || plan_outcome(&specs).is_some()
        }
        _ => false,
    }
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
