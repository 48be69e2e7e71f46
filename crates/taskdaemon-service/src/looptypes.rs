//! Loop types (`taskdaemon.yml` at the workspace root): listing them
//! resolved, with where each value came from; checking the file; writing
//! the documented starter; the configuration versions the daemon loaded;
//! and the current configuration alert, for `status`.
//!
//! Parsing, validation and resolution live in `taskdaemon-looptypes`; this
//! module only finds the file and turns its errors into [`ServiceError`]s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use taskdaemon_core::{CONFIG_ALERT_PREFIX, ConfigVersion, EventKind};
use taskdaemon_looptypes::{FILE_NAME, LoopTypes, STARTER};

use crate::{Result, Service, ServiceError};

/// Configuration alerts looked at, newest first, to find the current one.
const ALERT_LOOKBACK: usize = 200;

/// What `config check` reports for a file that loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigCheck {
    /// The file checked; `None` when there is none (the built-in types).
    pub file: Option<String>,
    pub digest: String,
    pub types: Vec<String>,
}

/// The daemon's loop-type configuration, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The newest version the daemon loaded.
    pub version: Option<ConfigVersion>,
    /// Why the file on disk is not in use, while it is broken.
    pub alert: Option<String>,
}

impl Service {
    /// The workspace's loop types (the file over the built-ins), resolved.
    pub fn loop_types(&self) -> Result<LoopTypes> {
        let root = self.workspace()?.root().to_path_buf();
        LoopTypes::load(&root).map_err(|e| ServiceError::BadInput(e.to_string()))
    }

    /// Checks `file` (default: the workspace's `taskdaemon.yml`); a broken
    /// file is [`ServiceError::BadInput`] naming file, line, column and field.
    pub fn config_check(&self, file: Option<&Path>) -> Result<ConfigCheck> {
        let types = match file {
            Some(path) => LoopTypes::load_file(path),
            None => LoopTypes::load(self.workspace()?.root()),
        }
        .map_err(|e| ServiceError::BadInput(e.to_string()))?;
        Ok(ConfigCheck {
            file: types.file.as_deref().map(|p| p.display().to_string()),
            digest: types.digest,
            types: types.types.into_keys().collect(),
        })
    }

    /// Writes the documented starter `taskdaemon.yml` at the workspace
    /// root; an existing file is kept unless `force`.
    pub fn config_init(&self, force: bool) -> Result<PathBuf> {
        let path = self.workspace()?.root().join(FILE_NAME);
        if path.exists() && !force {
            return Err(ServiceError::BadInput(format!(
                "{} exists; pass --force to replace it",
                path.display()
            )));
        }
        taskdaemon_workspace::write_atomic(&path, STARTER.as_bytes())
            .map_err(|e| ServiceError::Failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// The configuration versions the daemon loaded, newest first.
    pub fn config_history(&self, limit: usize) -> Result<Vec<ConfigVersion>> {
        Ok(self.store.config_versions(limit)?)
    }

    /// One configuration version with its resolved types.
    pub fn config_version(&self, version: i64) -> Result<ConfigVersion> {
        Ok(self.store.config_version(version)?)
    }

    /// The newest loaded version and the configuration alert in force, if any.
    pub fn config_status(&self) -> Result<ConfigStatus> {
        let version = self.store.config_versions(1)?.into_iter().next();
        let newest = self.store.newest_untasked_event(
            &[EventKind::Alert, EventKind::AlertCleared],
            CONFIG_ALERT_PREFIX,
            ALERT_LOOKBACK,
        )?;
        let alert = newest
            .filter(|e| e.kind == EventKind::Alert)
            .map(|e| e.message);
        Ok(ConfigStatus { version, alert })
    }
}
