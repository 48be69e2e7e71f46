//! The loop types the daemon starts loops from (`taskdaemon.yml`), and
//! their hot reload.
//!
//! - The file and its `prompts/` folder are watched (debounced). A change
//!   that loads is recorded as a new configuration version in the store
//!   (`config history`) and used by loops started afterwards; a loop keeps
//!   the version it started with for its whole life, because its spec
//!   (prompt, inputs, tools, network) is written into its stored spec.
//! - A change that does not load changes nothing: the last good version
//!   stays in use, an alert event (no task; rehydrate, status and the event
//!   log show it) says why, and the daemon log has the error. The next good
//!   load clears the alert.
//! - A daemon started while the file is broken uses the newest recorded
//!   version (or, with none, the built-in types) and raises the alert.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskdaemon_core::{CONFIG_ALERT_PREFIX, EventKind, NewConfigVersion, NewEvent};
use taskdaemon_looptypes::{ConfigError, FILE_NAME, LoopTypes, PARTIALS_DIR};
use taskdaemon_watch::DirWatch;
use tokio::sync::Notify;

use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::state::{ACTOR, Daemon, Shared};

/// Events closer together than this are one change (editors write a file
/// in several steps).
const DEBOUNCE: Duration = Duration::from_millis(30);

/// The loop types in use.
pub(crate) struct Active {
    pub(crate) types: LoopTypes,
    /// The recorded version; `None` until one is recorded.
    pub(crate) version: Option<i64>,
}

/// The daemon's loop-type configuration.
pub(crate) struct TypeConfig {
    active: Mutex<Arc<Active>>,
    /// The error of the last failed load, while it keeps failing the same way.
    failing: Mutex<Option<String>>,
    /// Watches alive for as long as the daemon.
    watches: Mutex<Vec<DirWatch>>,
}

impl TypeConfig {
    pub(crate) fn new() -> Self {
        TypeConfig {
            active: Mutex::new(Arc::new(Active {
                types: LoopTypes::builtin(),
                version: None,
            })),
            failing: Mutex::new(None),
            watches: Mutex::new(Vec::new()),
        }
    }

    /// The types new loops start from.
    pub(crate) fn current(&self) -> Arc<Active> {
        lock(&self.active).clone()
    }
}

/// Loads the file once, then watches it for changes.
pub(crate) async fn start(daemon: &Shared) {
    let d = daemon.clone();
    if let Err(e) = blocking(move || reload(&d, true)).await {
        tracing::error!(error = %e, "loading the loop types panicked");
    }
    let changed = Arc::new(Notify::new());
    let root = daemon.workspace.root().to_path_buf();
    let mut watches = Vec::new();
    let wake = changed.clone();
    match taskdaemon_watch::watch_files(
        &root,
        |path| {
            path.file_name()
                .is_some_and(|n| n == FILE_NAME || n == PARTIALS_DIR)
        },
        move || wake.notify_one(),
    ) {
        Ok(watch) => watches.push(watch),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch {FILE_NAME}; edits need a daemon restart")
        }
    }
    let prompts = root.join(PARTIALS_DIR);
    if prompts.is_dir() {
        let wake = changed.clone();
        match taskdaemon_watch::watch_dir(&prompts, move || wake.notify_one()) {
            Ok(watch) => watches.push(watch),
            Err(e) => tracing::warn!(error = %e, "cannot watch {}", prompts.display()),
        }
    }
    *lock(&daemon.types.watches) = watches;
    let daemon = daemon.clone();
    tokio::spawn(async move {
        loop {
            changed.notified().await;
            tokio::time::sleep(DEBOUNCE).await;
            let d = daemon.clone();
            if let Err(e) = blocking(move || reload(&d, false)).await {
                tracing::error!(error = %e, "reloading the loop types panicked");
            }
        }
    });
}

/// Loads the file; applies it when it loads and differs from what is in use.
fn reload(daemon: &Daemon, starting: bool) {
    match LoopTypes::load(daemon.workspace.root()) {
        Ok(types) => apply(daemon, types),
        Err(error) => refuse(daemon, &error, starting),
    }
}

fn apply(daemon: &Daemon, types: LoopTypes) {
    let current = daemon.types.current();
    let unchanged = current.version.is_some() && current.types.digest == types.digest;
    if !unchanged {
        let new = NewConfigVersion {
            digest: types.digest.clone(),
            file: types.file.as_deref().map(|p| p.display().to_string()),
            type_names: types.types.keys().cloned().collect(),
            types: serde_json::to_value(&types.types).unwrap_or_default(),
        };
        let version = match daemon.store.record_config_version(&new, ACTOR) {
            Ok(recorded) => recorded.version,
            Err(e) => {
                // Still use it: loops must not wait on the history.
                tracing::warn!(error = %e, "cannot record the loop-type configuration version");
                current.version.unwrap_or(0)
            }
        };
        tracing::info!(version, digest = types.digest, "loop types loaded");
        *lock(&daemon.types.active) = Arc::new(Active {
            types,
            version: Some(version),
        });
    }
    if lock(&daemon.types.failing).take().is_some() {
        let version = daemon.types.current().version.unwrap_or(0);
        alert(
            daemon,
            EventKind::AlertCleared,
            format!(
                "{CONFIG_ALERT_PREFIX} {FILE_NAME} loads again; loops start from version {version}"
            ),
        );
    }
}

fn refuse(daemon: &Daemon, error: &ConfigError, starting: bool) {
    if starting {
        restore_last_good(daemon);
    }
    let message = error.to_string();
    tracing::error!(error = %message, "{FILE_NAME} is invalid; keeping the loop types in use");
    let mut failing = lock(&daemon.types.failing);
    if failing.as_deref() == Some(message.as_str()) {
        return;
    }
    *failing = Some(message.clone());
    drop(failing);
    let kept = match daemon.types.current().version {
        Some(version) => format!("loops keep starting from version {version}"),
        None => "loops start from the built-in types".to_owned(),
    };
    alert(
        daemon,
        EventKind::Alert,
        format!("{CONFIG_ALERT_PREFIX} {FILE_NAME} is invalid, {kept}: {message}"),
    );
}

/// At start with a broken file: the newest recorded version, if any.
fn restore_last_good(daemon: &Daemon) {
    let newest = daemon
        .store
        .config_versions(1)
        .ok()
        .and_then(|v| v.into_iter().next())
        .and_then(|v| daemon.store.config_version(v.version).ok());
    let Some(version) = newest else { return };
    match serde_json::from_value(version.types) {
        Ok(types) => {
            let types = LoopTypes {
                file: version
                    .file
                    .as_deref()
                    .map(Path::new)
                    .map(Path::to_path_buf),
                digest: version.digest,
                types,
            };
            *lock(&daemon.types.active) = Arc::new(Active {
                types,
                version: Some(version.version),
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, version = version.version, "cannot read the recorded loop types")
        }
    }
}

fn alert(daemon: &Daemon, kind: EventKind, message: String) {
    if let Err(e) = daemon
        .store
        .append_event(None, &NewEvent::new(kind, ACTOR, message))
    {
        tracing::warn!(error = %e, "cannot record the loop-type alert");
    }
}
