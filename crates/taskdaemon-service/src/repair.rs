//! Putting the store and its projections right: `repair` checks the store,
//! rebuilds its search index, corrects waiting statuses and rewrites the
//! projection files (seed 003's task files, registry) from the store; after an
//! import the projections are rebuilt the same way.

use std::path::PathBuf;

use serde::Serialize;
use taskdaemon_daemon::projection::ProjectionFile;
use taskdaemon_daemon::{registry, snapshot};
use taskdaemon_store::RepairReport;

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
}

impl Repair {
    /// Nothing is wrong any more.
    pub fn healthy(&self) -> bool {
        self.store.remaining.is_empty() && self.projections.iter().all(|p| p.error.is_none())
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
        })
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
