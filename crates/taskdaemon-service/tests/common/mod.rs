//! A real workspace (SQLite file, config, folders) in a temporary directory.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use taskdaemon_service::Service;
use taskdaemon_workspace::{DEFAULT_CONFIG, Workspace};

pub struct TestWs {
    pub dir: tempfile::TempDir,
    pub workspace: Workspace,
}

impl TestWs {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(dir.path()).unwrap();
        std::fs::write(workspace.config_path(), DEFAULT_CONFIG).unwrap();
        Self { dir, workspace }
    }

    pub fn service(&self) -> Service {
        Service::open(self.workspace.clone()).unwrap()
    }
}

/// Polls `check` until it holds; panics naming `what` after 20 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
