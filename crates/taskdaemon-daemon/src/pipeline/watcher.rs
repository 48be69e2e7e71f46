//! The MainWatcher: notices when a running plan's target branch moves and
//! brings specs' worktrees up to date with it.

use std::collections::{HashMap, HashSet};

use taskdaemon_core::pipeline::{PipelineStatus, PlanRecord};
use taskdaemon_git::{MainWatcher, RebaseOutcome, Repo};
use taskdaemon_store::PlanFilter;

use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::state::Shared;

/// The MainWatcher: polls the target branch of every running plan every
/// `[pipeline] main_poll` and when poked, and marks the running specs of a
/// plan whose target moved, so they are rebased before their next phase.
/// While no plan runs it does not poll: it sleeps until the scheduler sees
/// a running plan.
pub(super) async fn watch_targets(daemon: Shared) {
    let interval = daemon.config.pipeline.main_poll;
    let mut watchers: HashMap<String, MainWatcher> = HashMap::new();
    // Whether the last poll found a plan running (or could not tell). At
    // start none is known: the scheduler's first pass says when one runs.
    let mut polling = false;
    loop {
        tokio::select! {
            _ = daemon.pipeline.poke.notified() => {}
            _ = tokio::time::sleep(interval), if polling => {}
            _ = daemon.pipeline.plans_running.notified(), if !polling => {}
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
                polling = true;
                continue;
            }
        };
        // A poll that failed may have missed a running plan.
        polling = !watchers.is_empty() || moved.is_err();
        match moved {
            Ok(specs) if !specs.is_empty() => {
                let count = specs.len();
                lock(&daemon.pipeline.moved).extend(specs);
                tracing::info!(specs = count, "target branch moved: specs will rebase");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = e, "cannot poll target branches"),
        }
    }
}

/// One poll: the running specs of plans whose target branch moved.
pub(super) fn poll_targets(
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
                tracing::info!(branch = target, head = %watcher.head(), "watching a target branch");
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

/// Continues a rebase whose conflicts a Ralph iteration was asked to
/// resolve by editing the files: `Ok(Err(files))` names those still holding
/// markers (or the next commit's conflicts).
pub(super) fn continue_resolved(
    repo: &Repo,
    worktree: &std::path::Path,
    target: &str,
) -> Result<Result<(), Vec<String>>, taskdaemon_git::GitError> {
    if let RebaseOutcome::Conflict { files } = repo.rebase(worktree, target)? {
        let left = repo.files_with_markers(worktree, &files);
        if !left.is_empty() {
            return Ok(Err(left));
        }
        if let RebaseOutcome::Conflict { files } = repo.rebase_continue(worktree)?
            && !files.is_empty()
        {
            return Ok(Err(files));
        }
    }
    sync_with_target(repo, worktree, target)
}

/// Rebases a spec's worktree on its target: `Ok(Err(files))` on a conflict
/// (the rebase stays in progress for a person to resolve). A rebase left in
/// progress whose conflicts a person resolved and staged is continued.
pub(super) fn sync_with_target(
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
