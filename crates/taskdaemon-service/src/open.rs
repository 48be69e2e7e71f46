//! Which store a workspace uses, decided in one place for every process that
//! opens it: the CLI, the daemon, the shims, the workers and every other
//! interface.
//!
//! A PostgreSQL URL comes from (first found) `--database-url`, which the CLI
//! passes on as `TASKDAEMON_DATABASE_URL` to everything it starts; that
//! variable; or `[store] database_url` in the workspace config. Without one,
//! the store is the workspace's SQLite file. With one, nothing is written to
//! SQLite at all.

use std::sync::Arc;

use taskdaemon_store::{Location, Store, StoreError};
use taskdaemon_workspace::{Config, Workspace};

/// The variable naming the database; the `--database-url` flag sets it.
pub const DATABASE_URL_ENV: &str = "TASKDAEMON_DATABASE_URL";

/// The configured database URL, if any (flag/variable first, then config).
pub fn database_url(config: Option<&Config>) -> Option<String> {
    std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| config.and_then(|c| c.store.database_url.clone()))
}

/// Where the store of `workspace` lives.
pub fn location(workspace: &Workspace, config: &Config) -> Location {
    match database_url(Some(config)) {
        Some(url) => Location::Postgres(url),
        None => Location::Sqlite(workspace.db_path()),
    }
}

/// Opens the store of `workspace`.
pub fn open(workspace: &Workspace, config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    taskdaemon_store::open(&location(workspace, config))
}

/// The location named by the flag or variable alone, for hosts that only
/// run workers or submit work and have no workspace.
pub fn url_location() -> Option<Location> {
    database_url(None).map(|url| Location::parse(&url))
}

/// Opens the store named by the flag or variable alone (see [`url_location`]).
pub fn open_url() -> Option<Result<Arc<dyn Store>, StoreError>> {
    url_location().map(|location| taskdaemon_store::open(&location))
}
