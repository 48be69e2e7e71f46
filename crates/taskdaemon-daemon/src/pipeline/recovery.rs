//! What a restart needs: the loops the driver resumes itself, and removal
//! of worktrees whose spec is no longer open.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use taskdaemon_git::Repo;
use taskdaemon_store::{PlanFilter, Store, StoreError};

use crate::state::Shared;

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

/// Removes spec worktrees whose spec is not open any more (or unknown).
pub(super) fn cleanup_orphans(daemon: &Shared) -> Result<Vec<PathBuf>, String> {
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
    repo.cleanup_orphans(&dir, &|plan, spec| {
        keep.contains(&(plan.to_owned(), spec.to_owned()))
    })
    .map_err(|e| e.to_string())
}
