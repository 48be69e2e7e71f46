//! The cascade's steps: the plan-level step (plan loop, approval, spec
//! loop, outcome) and a spec's worktree, phase loop, Ralph loops and merge.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use taskdaemon_core::pipeline::{
    MessageKind, NewMessage, PhaseRecord, PipelineStatus, PlanRecord, SpecRecord, plan_outcome,
};
use taskdaemon_core::{LoopEnd, LoopRecord};
use taskdaemon_git::{MergeOutcome, MergeStrategy, Repo};
use taskdaemon_llm::{CommandSpec, LoopSpec, PipelineLoop, PipelineTools};
use taskdaemon_looptypes::Overrides;
use taskdaemon_workspace::MergeMode;
use tokio::sync::oneshot;

use super::delivery::Handler;
use super::resolve::{Resolved, resolve_at_merge};
use super::watcher::{continue_resolved, sync_with_target};
use super::{INTEGRATION, MERGE_ATTEMPTS, store};
use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::loops::{Owner, run_owned};
use crate::state::{ACTOR, Shared};

/// The plan-level step the plan is at: plan loop, waiting for approval,
/// start, spec loop, or ending it by its specs' outcome.
pub(super) async fn drive_plan(daemon: &Shared, id: &str) -> Result<(), String> {
    let key = id.to_owned();
    let plan = store(daemon, move |s| s.plan(&key)).await?;
    daemon.pipeline.saw_plan(&plan);
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

pub(super) async fn set_plan(
    daemon: &Shared,
    id: &str,
    to: PipelineStatus,
    note: &str,
) -> Result<(), String> {
    let (key, note) = (id.to_owned(), note.to_owned());
    let plan = store(daemon, move |s| {
        s.set_plan_status(&key, to, Some(&note), ACTOR)
    })
    .await?;
    daemon.pipeline.saw_plan(&plan);
    Ok(())
}

pub(super) async fn set_spec(
    daemon: &Shared,
    id: &str,
    to: PipelineStatus,
    note: &str,
) -> Result<(), String> {
    let (key, note) = (id.to_owned(), note.to_owned());
    let spec = store(daemon, move |s| {
        s.set_spec_status(&key, to, Some(&note), ACTOR)
    })
    .await?;
    daemon.pipeline.saw_spec(&spec);
    Ok(())
}

pub(super) async fn set_phase(
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
pub(super) async fn loop_of(
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
pub(super) async fn loop_done(
    daemon: &Shared,
    loop_task: Option<&str>,
    kind: PipelineLoop,
) -> Result<bool, String> {
    Ok(loop_of(daemon, loop_task, kind)
        .await?
        .is_some_and(|l| l.task.status == taskdaemon_core::Status::Succeeded))
}

/// Runs the plan's plan or spec loop (resuming it when one was running).
pub(super) async fn run_plan_loop(
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
pub(super) struct Step {
    /// The plan, spec or phase it works for (linked, and charged its cost).
    pub(super) link: String,
    pub(super) kind: PipelineLoop,
    pub(super) name: String,
    /// The loop's spec text.
    pub(super) text: String,
    pub(super) workdir: PathBuf,
    pub(super) inputs: BTreeMap<String, String>,
    pub(super) validate: Option<String>,
    /// The loop to resume instead of starting one.
    pub(super) existing: Option<String>,
}

/// Starts or resumes a step's loop and waits for its end.
pub(super) async fn run_step(
    daemon: &Shared,
    step: Step,
    handler: Arc<Handler>,
) -> Result<LoopEnd, String> {
    let spec = typed_spec(daemon, &step)?;
    let (done, ended) = oneshot::channel();
    let owner = Owner {
        structural: Some(Arc::new(PipelineTools::new(step.kind, handler))),
        done: Some(done),
        // A new loop is linked before it starts: the store charges each
        // iteration it records to the step's record, in the same
        // transaction, so no crash can charge one twice or not at all.
        link: Some(step.link.clone()),
    };
    let id = run_owned(daemon, step.existing, spec, step.name, owner).await?;
    lock(&daemon.pipeline.running).insert(step.link.clone(), id.clone());
    let end = ended.await;
    lock(&daemon.pipeline.running).remove(&step.link);
    let end = end.map_err(|_| format!("loop {id} ended without reporting its end"))?;
    Ok(end)
}

/// The loop spec of a step: its loop type's configuration in force now,
/// applied to the step's text, inputs and validation.
pub(super) fn typed_spec(daemon: &Shared, step: &Step) -> Result<LoopSpec, String> {
    let mut spec = LoopSpec::new(
        step.text.clone(),
        CommandSpec::Shell("false".to_owned()),
        "anthropic",
        "",
        &step.workdir,
    );
    let active = daemon.types.current();
    let typed = active.types.get(step.kind.loop_type())?;
    let overrides = Overrides {
        validate: step.validate.clone(),
        ..Overrides::default()
    };
    typed.apply(&mut spec, &step.inputs, &overrides)?;
    spec.config_version = active.version;
    Ok(spec)
}

/// Drives one spec from where it stands to merged (or failed, or paused).
pub(super) async fn drive_spec(daemon: &Shared, id: &str) -> Result<(), String> {
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
pub(super) async fn work_spec(
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
            // With `resolve_conflicts`, the phase's Ralph loop is asked
            // to resolve it (see `midphase`) instead.
            if let Err(files) = synced
                && !daemon.config.pipeline.resolve_conflicts
            {
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
        let existing = resumable_loop(daemon, phase.loop_task.as_deref()).await?;
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
            let key = spec.id.clone();
            if store(daemon, move |s| s.spec(&key)).await?.status == PipelineStatus::Paused {
                // A conflict between iterations paused it and stopped the
                // loop: the phase goes on with a new loop when resumed.
                return Ok(None);
            }
            let note = end.message();
            set_phase(daemon, &phase.id, PipelineStatus::Failed, &note).await?;
            return Err(format!("phase {} ({}): {note}", phase.number, phase.name));
        }
        // A conflict the loop was asked to resolve: the rebase goes on
        // before the phase's commit.
        let (repo_root, worktree_path) = (root.clone(), path.clone());
        let target = plan.target_branch.clone();
        let resolved = blocking(move || {
            let repo = Repo::open(&repo_root)?;
            if !repo.rebase_in_progress(&worktree_path)? {
                return Ok(Ok(()));
            }
            continue_resolved(&repo, &worktree_path, &target)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("rebase: {e}"))?;
        if let Err(files) = resolved {
            pause_for_conflict(daemon, plan, spec, &files).await?;
            return Ok(None);
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

    let mut integrated = integrate(daemon, plan, spec).await?;
    if let Err(files) = &integrated
        && daemon.config.pipeline.resolve_conflicts
    {
        // A Ralph loop is asked to resolve it; what it could not resolve
        // pauses the spec as below.
        match resolve_at_merge(daemon, plan, spec, files).await? {
            Resolved::Yes => integrated = integrate(daemon, plan, spec).await?,
            Resolved::Stopped => return Ok(None),
            Resolved::No { note } => {
                pause_with(daemon, plan, spec, note).await?;
                return Ok(None);
            }
        }
    }
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

/// Rebases the spec on its target and merges it, as one (under
/// [`INTEGRATION`]), then removes its worktree: `Ok(true)` merged,
/// `Ok(false)` the target kept moving, `Err(files)` a conflict (the rebase
/// stays in progress). A rebase left in progress is continued when its
/// conflicts are resolved: staged by a person, or (with
/// `resolve_conflicts`) edited free of markers by a Ralph loop.
async fn integrate(
    daemon: &Shared,
    plan: &PlanRecord,
    spec: &SpecRecord,
) -> Result<Result<bool, Vec<String>>, String> {
    let strategy = match daemon.config.pipeline.merge {
        MergeMode::FastForward => MergeStrategy::FastForward,
        MergeMode::MergeCommit => MergeStrategy::MergeCommit,
    };
    let root = daemon.workspace.root().to_path_buf();
    let path = daemon.workspace.spec_worktree(&plan.id, &spec.name);
    let resolving = daemon.config.pipeline.resolve_conflicts;
    let (branch, target) = (spec.branch.clone(), plan.target_branch.clone());
    let integrated = blocking(move || {
        let repo = Repo::open(&root)?;
        // Rebase and merge as one: specs finishing together would otherwise
        // keep moving the target under each other's rebase.
        let _integrating = lock(&INTEGRATION);
        for _ in 0..MERGE_ATTEMPTS {
            let synced = if resolving && repo.rebase_in_progress(&path)? {
                continue_resolved(&repo, &path, &target)?
            } else {
                sync_with_target(&repo, &path, &target)?
            };
            if let Err(files) = synced {
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
    Ok(integrated)
}

/// The phase's loop to resume: none when it was stopped (a conflict paused
/// its spec), so the resumed phase starts a new one.
async fn resumable_loop(
    daemon: &Shared,
    loop_task: Option<&str>,
) -> Result<Option<String>, String> {
    let Some(id) = loop_task.map(str::to_owned) else {
        return Ok(None);
    };
    let key = id.clone();
    let record = store(daemon, move |s| s.loop_record(&key)).await?;
    Ok((record.task.status != taskdaemon_core::Status::Cancelled).then_some(id))
}

/// Pauses a spec whose rebase conflicts, with an alert naming the files.
pub(super) async fn pause_for_conflict(
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
    pause_with(daemon, plan, spec, note).await
}

/// Pauses a spec with `note`, and raises it as an alert to the human.
pub(super) async fn pause_with(
    daemon: &Shared,
    plan: &PlanRecord,
    spec: &SpecRecord,
    note: String,
) -> Result<(), String> {
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

pub(super) async fn phases_of(
    daemon: &Shared,
    spec: &SpecRecord,
) -> Result<Vec<PhaseRecord>, String> {
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
pub(super) fn phase_text(spec: &SpecRecord, phase: &PhaseRecord) -> String {
    format!(
        "# Phase {} of spec `{}`: {}\n\n{}\n\nThe phase is done when `{}` exits 0.\n\n## The whole spec: {}\n\n{}\n",
        phase.number, spec.name, phase.title, phase.body, phase.validation, spec.title, spec.body
    )
}
