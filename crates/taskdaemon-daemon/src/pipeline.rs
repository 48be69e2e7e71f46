//! The pipeline driver: makes approved plans run.
//!
//! It owns *when* each step of a plan happens and the I/O of it: the plan
//! loop (`submit_plan`), the spec loop (`create_spec`, `finish`), then for
//! every ready spec its git worktree, its phase loop (`create_phase`,
//! `finish`), one Ralph loop per phase in order (each succeeded phase
//! committed), and finally rebasing the spec on the plan's target branch,
//! merging it and removing the worktree. The rules it follows live
//! elsewhere: statuses and transitions, the spec DAG, fair ordering and a
//! plan's outcome in `taskdaemon_core::pipeline`; which specs are ready in
//! the store; git in `taskdaemon-git`.
//!
//! - Loops are ordinary loop tasks (the loop manager runs them under its
//!   global semaphore and per-type limits), linked from the plan, spec or
//!   phase they work for; their spending is added to that record when they end.
//! - The scheduler wakes when a step ends and every `[pipeline]
//!   scheduler_interval` (with jitter); an idle daemon sleeps. Each plan
//!   and each spec has at most one task driving it at a time.
//! - Everything a step needs is read back from the store, so after a crash
//!   the same code resumes every plan where it stood: specs and phases are
//!   created idempotently, a loop that was running resumes at its next
//!   iteration (with its tools; the loop manager leaves these loops to the
//!   driver), a succeeded phase is never run again, and worktrees are
//!   re-attached. At start, worktrees of specs that are no longer open are
//!   removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use taskdaemon_core::pipeline::{
    BROADCAST, Delivery, HUMAN, MessageKind, MessageRecord, NewMessage, NewPhase, NewSpec,
    PhaseRecord, PipelineCost, PipelineStatus, PlanContent, PlanRecord, PlanTree, SpecRecord,
    fair_order, plan_outcome, validate_spec_set,
};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{LoopEnd, LoopRecord};
use taskdaemon_git::{MainWatcher, MergeOutcome, MergeStrategy, RebaseOutcome, Repo};
use taskdaemon_llm::{
    CallContext, CommandSpec, LoopSpec, PipelineCall, PipelineHandler, PipelineLoop, PipelineTools,
};
use taskdaemon_looptypes::Overrides;
use taskdaemon_store::{MessageFilter, PlanFilter, Store, StoreError};
use taskdaemon_workspace::MergeMode;
use tokio::sync::{Notify, oneshot};

use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::loops::{Owner, run_owned};
use crate::state::{ACTOR, Shared};

/// Loop types that only run under a plan.
pub(crate) const PIPELINE_TYPE_PREFIX: &str = "pipeline-";
/// Ready specs looked at per scheduler pass.
const READY_LIMIT: usize = 256;
/// Held while git's worktree records change or are read (adding, listing,
/// removing worktrees; merging, which looks for the target's checkout):
/// `git worktree list` fails on a worktree another process is half-way
/// through adding ("failed to read .git/worktrees/X/commondir").
static WORKTREE_ADMIN: Mutex<()> = Mutex::new(());

/// How long a woken scheduler waits for more wake-ups before its pass.
const WAKE_BATCH: std::time::Duration = std::time::Duration::from_millis(20);
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
    /// The scheduler's first pass is done (it looks at every plan once).
    settled: std::sync::atomic::AtomicBool,
}

impl Pipeline {
    /// Asks the scheduler for a pass now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Loop tasks linked from plans, each with whether its plan is still open:
/// the driver resumes those of open plans itself, and those of ended plans
/// are not resumed at all.
pub(crate) fn owned_loops(store: &dyn Store) -> Result<HashMap<String, bool>, StoreError> {
    let mut owned = HashMap::new();
    for plan in store.plans(&PlanFilter::default())? {
        let open = plan.status.is_open();
        owned.extend(
            store
                .pipeline_loops(&plan.id)?
                .into_iter()
                .map(|(_, id)| (id, open)),
        );
    }
    Ok(owned)
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

/// The MainWatcher: polls the target branch of every running plan every
/// `[pipeline] main_poll` and when poked, and marks the running specs of a
/// plan whose target moved, so they are rebased before their next phase.
async fn watch_targets(daemon: Shared) {
    let interval = daemon.config.pipeline.main_poll;
    let mut watchers: HashMap<String, MainWatcher> = HashMap::new();
    loop {
        tokio::select! {
            _ = daemon.pipeline.poke.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
        let d = daemon.clone();
        let mut taken = std::mem::take(&mut watchers);
        let polled = blocking(move || {
            let moved = poll_targets(&d, &mut taken);
            (taken, moved)
        })
        .await;
        let moved = match polled {
            Ok((kept, moved)) => {
                watchers = kept;
                moved
            }
            Err(e) => {
                tracing::warn!(error = %e, "target branch poll panicked");
                continue;
            }
        };
        match moved {
            Ok(specs) if !specs.is_empty() => {
                tracing::info!(
                    specs = specs.len(),
                    "target branch moved: specs will rebase"
                );
                lock(&daemon.pipeline.moved).extend(specs);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = e, "cannot poll target branches"),
        }
    }
}

/// One poll: the running specs of plans whose target branch moved.
fn poll_targets(
    daemon: &Shared,
    watchers: &mut HashMap<String, MainWatcher>,
) -> Result<Vec<String>, String> {
    let open = PlanFilter {
        open_only: true,
        limit: None,
    };
    let plans: Vec<PlanRecord> = daemon
        .store
        .plans(&open)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|p| p.status == PipelineStatus::Running)
        .collect();
    let targets: HashSet<&str> = plans.iter().map(|p| p.target_branch.as_str()).collect();
    watchers.retain(|branch, _| targets.contains(branch.as_str()));
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let repo = Repo::open(daemon.workspace.root()).map_err(|e| e.to_string())?;
    let mut moved_targets = HashSet::new();
    for target in targets {
        match watchers.get_mut(target) {
            Some(watcher) => {
                if watcher.poll().map_err(|e| e.to_string())?.is_some() {
                    moved_targets.insert(target.to_owned());
                }
            }
            None => {
                let watcher = MainWatcher::new(&repo, target).map_err(|e| e.to_string())?;
                watchers.insert(target.to_owned(), watcher);
            }
        }
    }
    let mut specs = Vec::new();
    for plan in plans
        .iter()
        .filter(|p| moved_targets.contains(&p.target_branch))
    {
        let tree = daemon
            .store
            .plan_tree(&plan.id)
            .map_err(|e| e.to_string())?;
        specs.extend(
            tree.specs
                .into_iter()
                .filter(|s| s.spec.status == PipelineStatus::Running)
                .map(|s| s.spec.id),
        );
    }
    Ok(specs)
}

/// Rebases a spec's worktree on its target: `Ok(Err(files))` on a conflict
/// (the rebase stays in progress for a person to resolve). A rebase left in
/// progress whose conflicts a person resolved and staged is continued.
fn sync_with_target(
    repo: &Repo,
    worktree: &std::path::Path,
    target: &str,
) -> Result<Result<(), Vec<String>>, taskdaemon_git::GitError> {
    // Each round continues past one commit of the spec's branch.
    for _ in 0..256 {
        match repo.rebase(worktree, target)? {
            RebaseOutcome::Conflict { files }
                if files.is_empty() && repo.rebase_in_progress(worktree)? =>
            {
                if let RebaseOutcome::Conflict { files } = repo.rebase_continue(worktree)?
                    && !files.is_empty()
                {
                    return Ok(Err(files));
                }
            }
            RebaseOutcome::Conflict { files } => return Ok(Err(files)),
            _ => return Ok(Ok(())),
        }
    }
    Ok(Err(Vec::new()))
}

/// Removes spec worktrees whose spec is not open any more (or unknown).
fn cleanup_orphans(daemon: &Shared) -> Result<Vec<PathBuf>, String> {
    let dir = daemon.workspace.worktrees_dir();
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut keep: HashSet<(String, String)> = HashSet::new();
    let open = PlanFilter {
        open_only: true,
        limit: None,
    };
    for plan in daemon.store.plans(&open).map_err(|e| e.to_string())? {
        let tree = daemon
            .store
            .plan_tree(&plan.id)
            .map_err(|e| e.to_string())?;
        for spec in tree.specs {
            if spec.spec.status.is_open() {
                keep.insert((plan.id.clone(), spec.spec.name));
            }
        }
    }
    let repo = Repo::open(daemon.workspace.root()).map_err(|e| e.to_string())?;
    let _admin = lock(&WORKTREE_ADMIN);
    repo.cleanup_orphans(&dir, &|plan, spec| {
        keep.contains(&(plan.to_owned(), spec.to_owned()))
    })
    .map_err(|e| e.to_string())
}

async fn run(daemon: Shared) {
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
async fn schedule(daemon: &Shared) {
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
fn stop_loops(daemon: &Shared, target: &str) {
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
fn sweep(daemon: &Shared, trees: &[PlanTree]) {
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
fn dead_letter_ended(store: &dyn Store, tree: &PlanTree) -> Result<(), StoreError> {
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
    store.settle_broadcasts(&tree.plan.id, ACTOR)?;
    Ok(())
}

/// Whether a plan has a plan-level step to take, judged from its tree. A
/// running plan whose specs are under way has none: its spec loop ended in
/// the task that ran it, which then stopped. (The first pass after a start
/// looks at every plan, so a spec loop a crash interrupted is resumed.)
fn needs_plan_step(tree: &PlanTree) -> bool {
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

fn spawn_spec(daemon: &Shared, id: &str) -> usize {
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

fn claim(daemon: &Shared, id: &str) -> bool {
    lock(&daemon.pipeline.busy).insert(id.to_owned())
}

fn release(daemon: &Shared, id: &str) {
    lock(&daemon.pipeline.busy).remove(id);
    daemon.pipeline.wake();
}

/// Runs `work` with the store on a blocking thread.
async fn store<T: Send + 'static>(
    daemon: &Shared,
    work: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let d = daemon.clone();
    blocking(move || work(&*d.store).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

/// The plan-level step the plan is at: plan loop, waiting for approval,
/// start, spec loop, or ending it by its specs' outcome.
async fn drive_plan(daemon: &Shared, id: &str) -> Result<(), String> {
    let key = id.to_owned();
    let plan = store(daemon, move |s| s.plan(&key)).await?;
    let planned = plan.body.is_some();
    match plan.status {
        PipelineStatus::Draft | PipelineStatus::Pending if !planned => {
            let end = run_plan_loop(daemon, &plan, PipelineLoop::Plan).await?;
            if let LoopEnd::Succeeded { .. } = end {
                return Ok(());
            }
            // A draft cannot fail (nothing was approved yet): it is cancelled.
            let to = if plan.status == PipelineStatus::Draft {
                PipelineStatus::Cancelled
            } else {
                PipelineStatus::Failed
            };
            set_plan(daemon, id, to, &format!("plan loop: {}", end.message())).await
        }
        PipelineStatus::Pending => {
            set_plan(daemon, id, PipelineStatus::Running, "started").await?;
            Box::pin(drive_plan(daemon, id)).await
        }
        PipelineStatus::Running => {
            if !loop_done(daemon, plan.loop_task.as_deref(), PipelineLoop::Spec).await? {
                let end = run_plan_loop(daemon, &plan, PipelineLoop::Spec).await?;
                if !matches!(end, LoopEnd::Succeeded { .. }) {
                    let note = format!("spec loop: {}", end.message());
                    return set_plan(daemon, id, PipelineStatus::Failed, &note).await;
                }
            }
            let key = id.to_owned();
            let tree = store(daemon, move |s| s.plan_tree(&key)).await?;
            let specs: Vec<SpecRecord> = tree.specs.into_iter().map(|s| s.spec).collect();
            match plan_outcome(&specs) {
                Some(Ok(())) => {
                    set_plan(daemon, id, PipelineStatus::Succeeded, "every spec merged").await
                }
                Some(Err(reason)) => set_plan(daemon, id, PipelineStatus::Failed, &reason).await,
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

async fn set_plan(daemon: &Shared, id: &str, to: PipelineStatus, note: &str) -> Result<(), String> {
    let (key, note) = (id.to_owned(), note.to_owned());
    store(daemon, move |s| {
        s.set_plan_status(&key, to, Some(&note), ACTOR)
    })
    .await
    .map(|_| ())
}

async fn set_spec(daemon: &Shared, id: &str, to: PipelineStatus, note: &str) -> Result<(), String> {
    let (key, note) = (id.to_owned(), note.to_owned());
    store(daemon, move |s| {
        s.set_spec_status(&key, to, Some(&note), ACTOR)
    })
    .await
    .map(|_| ())
}

async fn set_phase(
    daemon: &Shared,
    id: &str,
    to: PipelineStatus,
    note: &str,
) -> Result<(), String> {
    let (key, note) = (id.to_owned(), note.to_owned());
    store(daemon, move |s| {
        s.set_phase_status(&key, to, Some(&note), ACTOR)
    })
    .await
    .map(|_| ())
}

/// The loop `loop_task` names, when it is one of `kind`.
async fn loop_of(
    daemon: &Shared,
    loop_task: Option<&str>,
    kind: PipelineLoop,
) -> Result<Option<LoopRecord>, String> {
    let Some(id) = loop_task.map(str::to_owned) else {
        return Ok(None);
    };
    let record = store(daemon, move |s| s.loop_record(&id)).await?;
    let loop_type = record.spec.get("loop_type").and_then(|t| t.as_str());
    Ok((loop_type == Some(kind.loop_type())).then_some(record))
}

/// Whether `loop_task` is a succeeded loop of `kind`.
async fn loop_done(
    daemon: &Shared,
    loop_task: Option<&str>,
    kind: PipelineLoop,
) -> Result<bool, String> {
    Ok(loop_of(daemon, loop_task, kind)
        .await?
        .is_some_and(|l| l.task.status == taskdaemon_core::Status::Succeeded))
}

/// Runs the plan's plan or spec loop (resuming it when one was running).
async fn run_plan_loop(
    daemon: &Shared,
    plan: &PlanRecord,
    kind: PipelineLoop,
) -> Result<LoopEnd, String> {
    let mut inputs = BTreeMap::new();
    let title = plan.display_title().to_owned();
    match kind {
        PipelineLoop::Plan => {
            inputs.insert("request".to_owned(), plan.goal.clone());
        }
        _ => {
            let key = plan.id.clone();
            let tree = store(daemon, move |s| s.plan_tree(&key)).await?;
            let created: Vec<String> = tree.specs.iter().map(|s| s.spec.name.clone()).collect();
            inputs.insert("plan_title".to_owned(), title.clone());
            inputs.insert(
                "plan".to_owned(),
                plan.body.clone().unwrap_or_else(|| plan.goal.clone()),
            );
            inputs.insert("created".to_owned(), created.join("\n"));
        }
    }
    let existing = loop_of(daemon, plan.loop_task.as_deref(), kind)
        .await?
        .map(|l| l.task.id);
    let handler = Arc::new(Handler::new(daemon, &plan.id, None));
    let step = Step {
        link: plan.id.clone(),
        kind,
        name: format!("{} {}", plan.id, kind.loop_type()),
        text: plan.goal.clone(),
        workdir: daemon.workspace.root().to_path_buf(),
        inputs,
        validate: None,
        existing,
    };
    run_step(daemon, step, handler).await
}

/// One loop the driver runs for a plan, spec or phase.
struct Step {
    /// The plan, spec or phase it works for (linked, and charged its cost).
    link: String,
    kind: PipelineLoop,
    name: String,
    /// The loop's spec text.
    text: String,
    workdir: PathBuf,
    inputs: BTreeMap<String, String>,
    validate: Option<String>,
    /// The loop to resume instead of starting one.
    existing: Option<String>,
}

/// Starts or resumes a step's loop, waits for its end and charges its cost.
async fn run_step(daemon: &Shared, step: Step, handler: Arc<Handler>) -> Result<LoopEnd, String> {
    let loop_type = step.kind.loop_type();
    let mut spec = LoopSpec::new(
        step.text,
        CommandSpec::Shell("false".to_owned()),
        "anthropic",
        "",
        &step.workdir,
    );
    {
        let active = daemon.types.current();
        let typed = active.types.get(loop_type)?;
        let overrides = Overrides {
            validate: step.validate,
            ..Overrides::default()
        };
        typed.apply(&mut spec, &step.inputs, &overrides)?;
        spec.config_version = active.version;
    }
    let (done, ended) = oneshot::channel();
    let owner = Owner {
        structural: Some(Arc::new(PipelineTools::new(step.kind, handler))),
        done: Some(done),
    };
    let resumed = step.existing.is_some();
    let id = run_owned(daemon, step.existing, spec, step.name, owner).await?;
    lock(&daemon.pipeline.running).insert(step.link.clone(), id.clone());
    if !resumed {
        let (link, loop_id) = (step.link.clone(), id.clone());
        store(daemon, move |s| s.set_pipeline_loop(&link, Some(&loop_id))).await?;
    }
    let end = ended.await;
    lock(&daemon.pipeline.running).remove(&step.link);
    let end = end.map_err(|_| format!("loop {id} ended without reporting its end"))?;
    let (link, loop_id) = (step.link, id);
    store(daemon, move |s| {
        let record = s.loop_record(&loop_id)?;
        let cost = PipelineCost {
            input_tokens: record.input_tokens,
            output_tokens: record.output_tokens,
            cost_usd: record.cost_usd,
        };
        if cost.is_zero() {
            return Ok(());
        }
        s.add_pipeline_cost(&link, &cost)
    })
    .await?;
    Ok(end)
}

/// Drives one spec from where it stands to merged (or failed, or paused).
async fn drive_spec(daemon: &Shared, id: &str) -> Result<(), String> {
    let key = id.to_owned();
    let spec = store(daemon, move |s| s.spec(&key)).await?;
    let plan_id = spec.plan.clone();
    let plan = store(daemon, move |s| s.plan(&plan_id)).await?;
    if plan.status != PipelineStatus::Running {
        return Ok(());
    }
    match spec.status {
        PipelineStatus::Pending => set_spec(daemon, id, PipelineStatus::Running, "started").await?,
        PipelineStatus::Running => {}
        _ => return Ok(()),
    }
    match work_spec(daemon, &plan, &spec).await {
        Ok(Some(note)) => set_spec(daemon, id, PipelineStatus::Succeeded, &note).await,
        Ok(None) => Ok(()),
        Err(reason) => {
            // Paused or cancelled meanwhile: leave it as the person set it.
            let key = id.to_owned();
            let now = store(daemon, move |s| s.spec(&key)).await?;
            if now.status == PipelineStatus::Running {
                set_spec(daemon, id, PipelineStatus::Failed, &reason).await?;
            }
            Ok(())
        }
    }
}

/// The spec's worktree, phases and merge. `Ok(Some(note))`: merged;
/// `Ok(None)`: stopped without an end (paused); `Err`: the spec failed.
async fn work_spec(
    daemon: &Shared,
    plan: &PlanRecord,
    spec: &SpecRecord,
) -> Result<Option<String>, String> {
    let root = daemon.workspace.root().to_path_buf();
    let path = daemon.workspace.spec_worktree(&plan.id, &spec.name);
    let (branch, base) = (spec.branch.clone(), plan.base_commit.clone());
    let (repo_root, worktree_path) = (root.clone(), path.clone());
    blocking(move || {
        let repo = Repo::open(&repo_root)?;
        let _admin = lock(&WORKTREE_ADMIN);
        repo.ensure_worktree(&worktree_path, &branch, &base)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("worktree: {e}"))?;

    if !loop_done(daemon, spec.loop_task.as_deref(), PipelineLoop::Phase).await? {
        let phases = phases_of(daemon, spec).await?;
        let mut inputs = BTreeMap::new();
        inputs.insert("plan_title".to_owned(), plan.display_title().to_owned());
        inputs.insert("spec_name".to_owned(), spec.name.clone());
        inputs.insert("spec_title".to_owned(), spec.title.clone());
        inputs.insert("spec_body".to_owned(), spec.body.clone());
        let created: Vec<String> = phases
            .iter()
            .map(|p| format!("{}. {}", p.number, p.name))
            .collect();
        inputs.insert("created".to_owned(), created.join("\n"));
        let existing = loop_of(daemon, spec.loop_task.as_deref(), PipelineLoop::Phase)
            .await?
            .map(|l| l.task.id);
        let step = Step {
            link: spec.id.clone(),
            kind: PipelineLoop::Phase,
            name: format!("{} phases", spec.id),
            text: spec.body.clone(),
            workdir: path.clone(),
            inputs,
            validate: None,
            existing,
        };
        let handler = Arc::new(Handler::new(daemon, &plan.id, Some(spec.name.clone())));
        let end = run_step(daemon, step, handler).await?;
        if !matches!(end, LoopEnd::Succeeded { .. }) {
            return Err(format!("phase loop: {}", end.message()));
        }
    }

    for phase in phases_of(daemon, spec).await? {
        if phase.status != PipelineStatus::Succeeded {
            // Between phases the worktree is clean: the time to take in
            // what moved on the target (or a conflict a person resolved).
            let moved = lock(&daemon.pipeline.moved).remove(&spec.id);
            let (repo_root, worktree_path) = (root.clone(), path.clone());
            let target = plan.target_branch.clone();
            let synced = blocking(move || {
                let repo = Repo::open(&repo_root)?;
                if !moved && !repo.rebase_in_progress(&worktree_path)? {
                    return Ok(Ok(()));
                }
                sync_with_target(&repo, &worktree_path, &target)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("rebase: {e}"))?;
            if let Err(files) = synced {
                pause_for_conflict(daemon, plan, spec, &files).await?;
                return Ok(None);
            }
        }
        match phase.status {
            PipelineStatus::Succeeded => continue,
            PipelineStatus::Pending => {
                set_phase(daemon, &phase.id, PipelineStatus::Running, "started").await?;
            }
            PipelineStatus::Running => {}
            other => return Err(format!("phase {} is {other}", phase.number)),
        }
        let existing = phase.loop_task.clone();
        let step = Step {
            link: phase.id.clone(),
            kind: PipelineLoop::Ralph,
            name: format!("{} {}", phase.id, phase.name),
            text: phase_text(spec, &phase),
            workdir: path.clone(),
            inputs: BTreeMap::new(),
            validate: Some(phase.validation.clone()),
            existing,
        };
        let handler = Arc::new(Handler::new(daemon, &plan.id, Some(spec.name.clone())));
        let end = run_step(daemon, step, handler).await?;
        if !matches!(end, LoopEnd::Succeeded { .. }) {
            let note = end.message();
            set_phase(daemon, &phase.id, PipelineStatus::Failed, &note).await?;
            return Err(format!("phase {} ({}): {note}", phase.number, phase.name));
        }
        let (repo_root, worktree_path) = (root.clone(), path.clone());
        let message = format!("{}: {}", phase.id, phase.title);
        blocking(move || Repo::open(&repo_root)?.commit_all(&worktree_path, &message))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("commit of phase {}: {e}", phase.number))?;
        set_phase(
            daemon,
            &phase.id,
            PipelineStatus::Succeeded,
            "validated and committed",
        )
        .await?;
    }

    let strategy = match daemon.config.pipeline.merge {
        MergeMode::FastForward => MergeStrategy::FastForward,
        MergeMode::MergeCommit => MergeStrategy::MergeCommit,
    };
    let (branch, target) = (spec.branch.clone(), plan.target_branch.clone());
    let integrated = blocking(move || {
        let repo = Repo::open(&root)?;
        // Rebase and merge as one: specs finishing together would otherwise
        // keep moving the target under each other's rebase.
        let _admin = lock(&WORKTREE_ADMIN);
        for _ in 0..MERGE_ATTEMPTS {
            if let Err(files) = sync_with_target(&repo, &path, &target)? {
                return Ok(Err(files));
            }
            match repo.merge_into(&branch, &target, strategy)? {
                MergeOutcome::Retry { .. } => continue,
                _ => {
                    repo.remove_worktree(&path, true)?;
                    return Ok(Ok(true));
                }
            }
        }
        Ok::<_, taskdaemon_git::GitError>(Ok(false))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("merge: {e}"))?;
    match integrated {
        Ok(true) => {
            // The target moved: other running specs take it in.
            daemon.pipeline.poke.notify_one();
            Ok(Some(format!("merged into {}", plan.target_branch)))
        }
        Ok(false) => Err(format!(
            "{} kept moving: not merged after {MERGE_ATTEMPTS} attempts",
            plan.target_branch
        )),
        Err(files) => {
            pause_for_conflict(daemon, plan, spec, &files).await?;
            Ok(None)
        }
    }
}

/// Pauses a spec whose rebase conflicts, with an alert naming the files.
async fn pause_for_conflict(
    daemon: &Shared,
    plan: &PlanRecord,
    spec: &SpecRecord,
    files: &[String],
) -> Result<(), String> {
    let note = format!(
        "rebase on {} conflicts in {}: resolve it in {} (git rebase --continue), then `taskdaemon plan resume {}`",
        plan.target_branch,
        files.join(", "),
        spec.worktree,
        plan.id
    );
    set_spec(daemon, &spec.id, PipelineStatus::Paused, &note).await?;
    let alert = NewMessage {
        plan: plan.id.clone(),
        from: spec.name.clone(),
        to: taskdaemon_core::pipeline::HUMAN.to_owned(),
        kind: MessageKind::Alert,
        body: note,
    };
    store(daemon, move |s| s.send_message(&alert, ACTOR))
        .await
        .map(|_| ())
}

async fn phases_of(daemon: &Shared, spec: &SpecRecord) -> Result<Vec<PhaseRecord>, String> {
    let (plan, id) = (spec.plan.clone(), spec.id.clone());
    let tree = store(daemon, move |s| s.plan_tree(&plan)).await?;
    Ok(tree
        .specs
        .into_iter()
        .find(|s| s.spec.id == id)
        .map(|s| s.phases)
        .unwrap_or_default())
}

/// The Ralph loop's spec text for a phase.
fn phase_text(spec: &SpecRecord, phase: &PhaseRecord) -> String {
    format!(
        "# Phase {} of spec `{}`: {}\n\n{}\n\nThe phase is done when `{}` exits 0.\n\n## The whole spec: {}\n\n{}\n",
        phase.number, spec.name, phase.title, phase.body, phase.validation, spec.title, spec.body
    )
}

/// The store-backed handler of one loop's pipeline tools.
struct Handler {
    daemon: Shared,
    plan: String,
    /// The spec the loop works for (phase and Ralph loops).
    spec: Option<String>,
    /// Specs whose dependencies do not exist yet, created when they do;
    /// `finish` checks what is left as one set (and so names a cycle).
    held: Mutex<Vec<NewSpec>>,
}

impl Handler {
    fn new(daemon: &Shared, plan: &str, spec: Option<String>) -> Self {
        Handler {
            daemon: daemon.clone(),
            plan: plan.to_owned(),
            spec,
            held: Mutex::new(Vec::new()),
        }
    }

    fn handle_now(&self, kind: PipelineLoop, call: PipelineCall) -> Result<String, String> {
        let store = &*self.daemon.store;
        let plan = &self.plan;
        let err = |e: StoreError| e.to_string();
        match call {
            PipelineCall::SubmitPlan(p) => {
                let content = PlanContent {
                    title: p.title,
                    summary: p.summary,
                    body: p.body,
                };
                let record = store.submit_plan(plan, &content, ACTOR).map_err(err)?;
                Ok(match record.status {
                    PipelineStatus::Draft => format!(
                        "plan {plan} submitted; it waits for approval (`taskdaemon plan approve {plan}`)"
                    ),
                    _ => format!("plan {plan} submitted and approved; specs come next"),
                })
            }
            PipelineCall::CreateSpec(c) => {
                let new = NewSpec {
                    name: c.name,
                    title: c.title,
                    body: c.body,
                    depends_on: c.depends_on,
                    priority: c.priority.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
                };
                let existing = self.existing_specs()?;
                let mut held = lock(&self.held);
                held.retain(|h| h.name != new.name);
                if new
                    .depends_on
                    .iter()
                    .all(|d| existing.iter().any(|(n, _)| n == d))
                {
                    let created = store
                        .add_specs(plan, std::slice::from_ref(&new), ACTOR)
                        .map_err(err)?;
                    let mut reply = format!("created spec `{}`", new.name);
                    if let Some(c) = created.first() {
                        reply = format!("created spec `{}` ({})", c.name, c.id);
                    }
                    let flushed = self.flush_held(&mut held)?;
                    if !flushed.is_empty() {
                        reply.push_str(&format!(
                            "; now created too (their dependencies exist): {}",
                            flushed.join(", ")
                        ));
                    }
                    Ok(reply)
                } else {
                    let missing: Vec<&str> = new
                        .depends_on
                        .iter()
                        .filter(|d| !existing.iter().any(|(n, _)| n == *d))
                        .map(String::as_str)
                        .collect();
                    let reply = format!(
                        "spec `{}` is held until {} exist(s); create those too. Held specs are created once their dependencies are, and checked as one set when you call finish",
                        new.name,
                        missing.join(", ")
                    );
                    held.push(new);
                    Ok(reply)
                }
            }
            PipelineCall::CreatePhase(c) => {
                let spec = self.spec_id()?;
                let new = NewPhase {
                    name: c.name,
                    title: c.title,
                    body: c.body,
                    validation: c.validation,
                };
                let created = store.add_phases(&spec, &[new], ACTOR).map_err(err)?;
                Ok(match created.first() {
                    Some(p) => format!("created phase {} `{}` ({})", p.number, p.name, p.id),
                    None => "phase created".to_owned(),
                })
            }
            PipelineCall::Finish => {
                match kind {
                    PipelineLoop::Spec => {
                        let held = std::mem::take(&mut *lock(&self.held));
                        if !held.is_empty() {
                            let existing = self.existing_specs()?;
                            let names: Vec<&str> = held.iter().map(|h| h.name.as_str()).collect();
                            if let Err(e) = validate_spec_set(&existing, &held) {
                                return Err(format!(
                                    "{e}; none of {} was created: call create_spec again for them with valid dependencies, then finish",
                                    names.join(", ")
                                ));
                            }
                            store.add_specs(plan, &held, ACTOR).map_err(err)?;
                        }
                        let count = self.existing_specs()?.len();
                        if count == 0 {
                            return Err(
                                "no spec created yet: call create_spec at least once, then finish"
                                    .into(),
                            );
                        }
                        Ok(format!("{count} spec(s) recorded; they run now"))
                    }
                    _ => {
                        let spec = self.spec_id()?;
                        let phases = store
                            .plan_tree(plan)
                            .map_err(err)?
                            .specs
                            .into_iter()
                            .find(|s| s.spec.id == spec)
                            .map_or(0, |s| s.phases.len());
                        if phases == 0 {
                            return Err("no phase created yet: call create_phase at least once, then finish".into());
                        }
                        Ok(format!(
                            "{phases} phase(s) recorded; they run now, in order"
                        ))
                    }
                }
            }
            PipelineCall::SendMessage(m) => {
                let kind = m.kind;
                let to = m.to.to_string();
                let record = store
                    .send_message(
                        &NewMessage {
                            plan: plan.clone(),
                            from: self.sender(),
                            to: to.clone(),
                            kind,
                            body: m.body,
                        },
                        ACTOR,
                    )
                    .map_err(err)?;
                if let Some(dead) = self.dead_if_ended(&record)? {
                    return Ok(dead);
                }
                if kind == MessageKind::Stop {
                    return self.stop(&record);
                }
                Ok(format!("{kind} sent to {to} as {}", record.id))
            }
            PipelineCall::Answer(a) => store
                .answer_as(plan, &self.sender(), &a.message, &a.answer, ACTOR)
                .map(|q| format!("answer to {} sent to {}'s loop", q.id, q.from))
                .map_err(err),
            PipelineCall::Ask(a) => {
                let record = store
                    .send_message(
                        &NewMessage {
                            plan: plan.clone(),
                            from: self.sender(),
                            to: a.to.to_string(),
                            kind: MessageKind::Query,
                            body: a.question,
                        },
                        ACTOR,
                    )
                    .map_err(err)?;
                if let Some(dead) = self.dead_if_ended(&record)? {
                    return Ok(dead);
                }
                Ok(format!(
                    "question {} sent to {}; the answer comes in a later iteration's context",
                    record.id, a.to
                ))
            }
        }
    }

    /// Moves a message for a spec that has ended to the dead letters; the
    /// text tells the model so.
    fn dead_if_ended(&self, message: &MessageRecord) -> Result<Option<String>, String> {
        if message.to == HUMAN || message.to == BROADCAST {
            return Ok(None);
        }
        let store = &*self.daemon.store;
        let spec = store
            .spec(&format!("{}/{}", self.plan, message.to))
            .map_err(|e| e.to_string())?;
        if spec.status.is_open() {
            return Ok(None);
        }
        let reason = format!(
            "spec {} has ended ({}): no loop of it will read this",
            spec.name, spec.status
        );
        // The scheduler's sweep may have moved it already: that is the same end.
        if let Err(e) = store.dead_letter(&message.id, &reason, ACTOR) {
            let now = store.message(&message.id).map_err(|e| e.to_string())?;
            if now.delivery != Delivery::Dead {
                return Err(e.to_string());
            }
        }
        Ok(Some(format!(
            "{} could not be delivered: {reason}; it is in the plan's dead letters",
            message.id
        )))
    }

    /// A Stop: cancels the plan or the spec it names, and stops their loops.
    fn stop(&self, message: &MessageRecord) -> Result<String, String> {
        let store = &*self.daemon.store;
        let reason = format!(
            "stopped by {} ({}): {}",
            message.from, message.id, message.body
        );
        let target = if message.to == BROADCAST {
            store
                .cancel_plan(&self.plan, &reason, ACTOR)
                .map_err(|e| e.to_string())?;
            self.plan.clone()
        } else {
            let id = format!("{}/{}", self.plan, message.to);
            store
                .set_spec_status(&id, PipelineStatus::Cancelled, Some(&reason), ACTOR)
                .map_err(|e| e.to_string())?;
            id
        };
        store
            .mark_message_delivered(&message.id, ACTOR)
            .map_err(|e| e.to_string())?;
        stop_loops(&self.daemon, &target);
        Ok(format!("{} stopped ({})", target, message.id))
    }

    /// The messages section of a spec loop's next prompt: messages for its
    /// spec (then marked delivered), the plan's broadcasts, and answers to
    /// the questions it asked.
    fn messages_for(&self) -> Result<Option<String>, StoreError> {
        let Some(spec) = &self.spec else {
            return Ok(None);
        };
        let store = &*self.daemon.store;
        let mut lines = Vec::new();
        for message in store.pending_messages(&self.plan, spec)? {
            lines.push(format!(
                "- {} from {} ({}): {}",
                message.kind, message.from, message.id, message.body
            ));
            store.deliver_message(&message.id, spec, ACTOR)?;
        }
        let answered = store.messages(&MessageFilter {
            plan: Some(self.plan.clone()),
            kind: Some(MessageKind::Query),
            delivery: vec![Delivery::Answered],
            ..MessageFilter::default()
        })?;
        for query in answered.iter().filter(|q| &q.from == spec) {
            lines.push(format!(
                "- answer from {} to your question {} (\"{}\"): {}",
                query.to,
                query.id,
                query.body,
                query.answer.as_deref().unwrap_or_default()
            ));
        }
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!(
            "## Messages from the plan\n\n{}\n",
            lines.join("\n")
        )))
    }

    fn sender(&self) -> String {
        self.spec
            .clone()
            .unwrap_or_else(|| taskdaemon_core::pipeline::BROADCAST.to_owned())
    }

    fn spec_id(&self) -> Result<String, String> {
        match &self.spec {
            Some(name) => Ok(format!("{}/{name}", self.plan)),
            None => Err("this loop works for no spec".into()),
        }
    }

    fn existing_specs(&self) -> Result<Vec<(String, Vec<String>)>, String> {
        let tree = self
            .daemon
            .store
            .plan_tree(&self.plan)
            .map_err(|e| e.to_string())?;
        Ok(tree
            .specs
            .into_iter()
            .map(|s| (s.spec.name, s.spec.depends_on))
            .collect())
    }

    /// Creates held specs whose dependencies now exist, until none does.
    fn flush_held(&self, held: &mut Vec<NewSpec>) -> Result<Vec<String>, String> {
        let mut created = Vec::new();
        loop {
            let existing = self.existing_specs()?;
            let Some(at) = held.iter().position(|h| {
                h.depends_on
                    .iter()
                    .all(|d| existing.iter().any(|(n, _)| n == d))
            }) else {
                return Ok(created);
            };
            let spec = held.remove(at);
            self.daemon
                .store
                .add_specs(&self.plan, std::slice::from_ref(&spec), ACTOR)
                .map_err(|e| format!("held spec `{}`: {e}", spec.name))?;
            created.push(spec.name);
        }
    }
}

#[async_trait]
impl PipelineHandler for Handler {
    async fn handle(&self, ctx: &CallContext, call: PipelineCall) -> Result<String, String> {
        // The store is synchronous; keep its work off the loop's runtime thread.
        let kind = ctx.kind;
        let this = Handler {
            daemon: self.daemon.clone(),
            plan: self.plan.clone(),
            spec: self.spec.clone(),
            held: Mutex::new(std::mem::take(&mut *lock(&self.held))),
        };
        let (result, held) = blocking(move || {
            let result = this.handle_now(kind, call);
            let held = std::mem::take(&mut *lock(&this.held));
            (result, held)
        })
        .await
        .map_err(|e| format!("the handler panicked: {e}"))?;
        *lock(&self.held) = held;
        self.daemon.pipeline.wake();
        result
    }

    async fn context(&self, kind: PipelineLoop, _iteration: u32) -> Option<String> {
        if kind != PipelineLoop::Ralph {
            return None;
        }
        let this = Handler::new(&self.daemon, &self.plan, self.spec.clone());
        match blocking(move || this.messages_for()).await {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => {
                tracing::warn!(plan = self.plan, error = %e, "cannot read a loop's messages");
                None
            }
            Err(e) => {
                tracing::warn!(plan = self.plan, error = %e, "reading a loop's messages panicked");
                None
            }
        }
    }
}
