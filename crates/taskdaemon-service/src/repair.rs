//! Putting the store and its projections right: `repair` checks the store,
//! rebuilds its search index, corrects waiting statuses, removes pipeline
//! rows whose parent is gone and spec worktrees no spec owns, and rewrites
//! the projection files (seed 003's task files, registry) from the store; after an
//! import the projections are rebuilt the same way.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;
use taskdaemon_daemon::projection::ProjectionFile;
use taskdaemon_daemon::{registry, snapshot};
use taskdaemon_store::{PlanFilter, RepairReport};

use crate::{Result, Service};

/// One projection file: what was found and what was done.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionRepair {
    pub path: PathBuf,
    /// `missing`, `valid` or `corrupt (why)`.
    pub found: String,
    pub rewritten: bool,
    pub error: Option<String>,
}

/// What `repair` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    pub problems_found: Vec<String>,
    pub store: RepairReport,
    pub projections: Vec<ProjectionRepair>,
    /// Spec worktrees (`.taskdaemon/worktrees/PLAN-N/spec`) removed
    /// because the store holds no such spec; their branches are kept.
    pub worktrees_removed: Vec<PathBuf>,
    /// Why the worktrees could not be cleaned up, if they could not.
    pub worktrees_error: Option<String>,
}

impl Repair {
    /// Nothing is wrong any more.
    pub fn healthy(&self) -> bool {
        self.store.remaining.is_empty()
            && self.projections.iter().all(|p| p.error.is_none())
            && self.worktrees_error.is_none()
    }
}

impl Service {
    /// Checks and repairs the store, then rewrites the projections from it,
    /// reporting what each file looked like before.
    pub fn repair(&self) -> Result<Repair> {
        let workspace = self.workspace()?;
        let store = &*self.store;
        let mut findings = vec![(
            workspace.snapshot_path(&self.config),
            snapshot::inspect(workspace, &self.config),
        )];
        findings.extend(registry::inspect(workspace, &self.config));
        let problems_found = store.check_integrity()?.problems;
        let report = store.repair("repair")?;
        // After the store: a spec whose rows repair removed loses its worktree too.
        let (worktrees_removed, worktrees_error) = match self.remove_stray_worktrees() {
            Ok(removed) => (removed, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let snapshot_result = snapshot::write_all(workspace, &self.config, store)
            .err()
            .map(|e| e.to_string());
        let registry_result = registry::write(workspace, store, &self.config)
            .err()
            .map(|e| e.to_string());
        let projections = findings
            .into_iter()
            .zip([snapshot_result, registry_result])
            .map(|((path, found), error)| ProjectionRepair {
                found: describe(&found),
                rewritten: error.is_none(),
                path,
                error,
            })
            .collect();
        Ok(Repair {
            problems_found,
            store: report,
            projections,
            worktrees_removed,
            worktrees_error,
        })
    }

    /// Removes spec worktrees no spec in the store owns (a spec's row is
    /// written before its worktree, so a running spec's is never one).
    /// Worktrees of ended specs are the daemon's to clean up when it starts.
    fn remove_stray_worktrees(&self) -> std::result::Result<Vec<PathBuf>, String> {
        let workspace = self.workspace().map_err(|e| e.to_string())?;
        let dir = workspace.worktrees_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let specs = self.spec_keys().map_err(|e| e.to_string())?;
        let repo = taskdaemon_git::Repo::open(workspace.root()).map_err(|e| e.to_string())?;
        repo.cleanup_orphans(&dir, &|plan, spec| {
            specs.contains(&(plan.to_owned(), spec.to_owned()))
        })
        .map_err(|e| e.to_string())
    }

    /// Every spec in the store, as (plan id, spec name).
    fn spec_keys(&self) -> Result<HashSet<(String, String)>> {
        let all = PlanFilter {
            open_only: false,
            limit: None,
        };
        let mut keys = HashSet::new();
        for plan in self.store.plans(&all)? {
            for spec in self.store.plan_tree(&plan.id)?.specs {
                keys.insert((plan.id.clone(), spec.spec.name));
            }
        }
        Ok(keys)
    }

    /// After an import: the projections describe the new contents.
    pub fn rebuild_projections(&self) {
        self.save_snapshot(None);
        self.refresh_registry();
    }
}

fn describe(found: &ProjectionFile) -> String {
    match found {
        ProjectionFile::Missing => "missing".to_owned(),
        ProjectionFile::Valid => "valid".to_owned(),
        ProjectionFile::Corrupt(why) => format!("corrupt ({why})"),
    }
}
