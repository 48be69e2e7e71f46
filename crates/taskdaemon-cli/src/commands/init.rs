//! `taskdaemon init`

use std::path::Path;

use anyhow::Context;
use taskdaemon_service::Service;

pub fn run(dir: Option<&Path>) -> anyhow::Result<u8> {
    let root = match dir {
        Some(dir) => dir.to_owned(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let (service, created) = Service::init(&root)?;
    let workspace = service.workspace()?;
    let config = workspace.config_path();
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
    for entry in &service.config().queue {
        let folder = workspace.resolve(&entry.path);
        println!("  queue {} {}", entry.id(), folder.display());
    }
    Ok(0)
}
