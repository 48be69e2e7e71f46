//! Taking in the target branch between the iterations of a phase's Ralph
//! loop. When the MainWatcher saw the target move, the work of the earlier
//! iterations is committed (as work in progress) and the spec's worktree is
//! rebased before the next iteration starts. A conflict pauses the spec,
//! with an alert naming the files, and stops its loop; with `[pipeline]
//! resolve_conflicts` the next iteration is asked to resolve it instead,
//! and the driver continues the rebase once no conflict markers are left.

use taskdaemon_core::pipeline::{PlanRecord, SpecRecord};
use taskdaemon_git::Repo;

use super::cascade::pause_for_conflict;
use super::scheduler::stop_loops;
use super::store;
use super::watcher::{continue_resolved, sync_with_target};
use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::state::Shared;

/// What the Ralph iteration about to start must know: that its worktree
/// was rebased, or the conflict it must resolve first. Pauses the spec
/// (and stops its loop) on a conflict nobody is asked to resolve.
pub(super) async fn between_iterations(daemon: &Shared, plan: &str, spec: &str) -> Option<String> {
    let spec_id = format!("{plan}/{spec}");
    let (p, s) = (plan.to_owned(), spec_id.clone());
    let records = store(daemon, move |st| Ok((st.plan(&p)?, st.spec(&s)?))).await;
    let (plan, spec) = match records {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(
                spec = spec_id,
                error = e,
                "cannot read the spec to rebase it"
            );
            return None;
        }
    };
    let resolving = daemon.config.pipeline.resolve_conflicts;
    let moved = lock(&daemon.pipeline.moved).remove(&spec_id);
    let root = daemon.workspace.root().to_path_buf();
    let path = daemon.workspace.spec_worktree(&plan.id, &spec.name);
    let target = plan.target_branch.clone();
    let message = format!("{spec_id}: work in progress, rebased onto {target}");
    let wip = message.clone();
    let synced = blocking(move || {
        let repo = Repo::open(&root)?;
        if repo.rebase_in_progress(&path)? {
            // A conflict handed to the iteration before (or to this loop
            // at its start, between phases).
            if !resolving {
                return Ok(None);
            }
            return continue_resolved(&repo, &path, &target).map(Some);
        }
        if !moved {
            return Ok(None);
        }
        repo.commit_all(&path, &wip)?;
        sync_with_target(&repo, &path, &target).map(Some)
    })
    .await;
    match synced {
        Ok(Ok(None)) => None,
        Ok(Ok(Some(Ok(())))) => Some(format!(
            "## The target branch moved\n\n`{}` has new commits: your worktree was rebased onto them before this iteration (the work of earlier iterations is committed as \"{message}\").\n",
            plan.target_branch
        )),
        Ok(Ok(Some(Err(files)))) => conflict(daemon, &plan, &spec, &files).await,
        Ok(Err(e)) => {
            tracing::warn!(spec = spec_id, error = %e, "cannot rebase between iterations");
            None
        }
        Err(e) => {
            tracing::warn!(spec = spec_id, error = %e, "rebasing between iterations panicked");
            None
        }
    }
}

/// A conflict between iterations: the prompt asking to resolve it, or the
/// spec paused and its loop stopped.
async fn conflict(
    daemon: &Shared,
    plan: &PlanRecord,
    spec: &SpecRecord,
    files: &[String],
) -> Option<String> {
    if daemon.config.pipeline.resolve_conflicts {
        return Some(resolve_prompt(&plan.target_branch, files));
    }
    if let Err(e) = pause_for_conflict(daemon, plan, spec, files).await {
        tracing::warn!(spec = spec.id, error = e, "cannot pause a conflicting spec");
    }
    stop_loops(daemon, &spec.id);
    None
}

/// What a Ralph iteration asked to resolve a conflict reads first.
pub(super) fn resolve_prompt(target: &str, files: &[String]) -> String {
    format!(
        "## Resolve a rebase conflict first\n\nYour worktree is in the middle of a rebase onto `{target}`, which moved. These files conflict: {}. Edit each so it holds what both sides meant, with no conflict markers (`<<<<<<<`, `=======`, `>>>>>>>`) left, and do not run git: the rebase is continued after this iteration. Then go on with the phase.\n",
        files.join(", ")
    )
}
