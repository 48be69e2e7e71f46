//! `taskdaemon init`

use std::fs;
use std::path::Path;

use anyhow::Context;
use taskdaemon_workspace::{DEFAULT_CONFIG, DEFAULT_QUEUE, Workspace};

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
        "  store {}\n  config {}\n  queue {}",
        workspace.db_path().display(),
        config.display(),
        workspace.queue_dir(DEFAULT_QUEUE).display()
    );
    Ok(0)
}
