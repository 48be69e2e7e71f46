//! `taskdaemon init`

use std::fs;
use std::path::Path;

use anyhow::Context;
use taskdaemon_queue::QueueFolder;
use taskdaemon_workspace::{Config, DEFAULT_CONFIG, Workspace};

use super::open_store;

pub fn run(dir: Option<&Path>) -> anyhow::Result<u8> {
    let root = match dir {
        Some(dir) => dir.to_owned(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let (workspace, created) = Workspace::init(&root)?;
    let config = workspace.config_path();
    if !config.exists() {
        fs::write(&config, DEFAULT_CONFIG)
            .with_context(|| format!("cannot write {}", config.display()))?;
    }
    open_store(&workspace)?;
    let state = workspace.state_dir();
    if created {
        println!("Initialized taskdaemon workspace in {}", state.display());
    } else {
        println!(
            "taskdaemon workspace already initialized in {}",
            state.display()
        );
    }
    println!(
        "  store {}\n  config {}",
        workspace.db_path().display(),
        config.display()
    );
    // The queues the config registers, with their folders: a fresh
    // workspace's ad-hoc and planned (tasks/planning), or whatever an
    // existing config says (a config from before `planned` keeps its queues).
    for entry in &Config::load(&config)?.queue {
        let folder = QueueFolder::new(entry.id(), &workspace.resolve(&entry.path));
        folder
            .create()
            .with_context(|| format!("cannot create {}", folder.root.display()))?;
        println!("  queue {} {}", entry.id(), folder.root.display());
    }
    Ok(0)
}
