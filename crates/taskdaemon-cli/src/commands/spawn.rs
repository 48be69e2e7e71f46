//! `taskdaemon spawn`

use taskdaemon_core::{ContainerSpec, ResourceLimits};
use taskdaemon_service::SpawnInput;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::SpawnArgs;
use crate::output::print_json;

pub fn run(workspace: &Workspace, mut args: SpawnArgs) -> anyhow::Result<u8> {
    let json = args.json;
    let container = args.image.map(|image| ContainerSpec {
        image,
        engine: String::new(),
        mounts: args.mount,
        // The container gets only these; the caller's environment stays
        // on the host (where it names the engine).
        env: std::mem::take(&mut args.env),
        workdir: args.workdir,
        name: args.name.clone(),
        keep: args.keep,
    });
    let task = service(workspace)?.spawn_command(SpawnInput {
        argv: args.command,
        tool: args.tool,
        name: args.name,
        session: args.session,
        cwd: args.cwd,
        env: args.env,
        restart: args.restart,
        max_restarts: args.max_restarts,
        restart_delay: args.restart_delay,
        hang_timeout: args.hang_timeout,
        limits: ResourceLimits {
            max_memory: args.max_memory,
            max_cpu_time_ms: args.max_cpu_time.map(|d| d.as_millis() as u64),
            max_files: args.max_files,
            nice: args.nice,
        },
        container,
    })?;
    if json {
        print_json(&task)?;
    } else {
        let image = task
            .image()
            .map(|image| format!(" in {image}"))
            .unwrap_or_default();
        eprintln!(
            "started {} (pid {}): {}{image}",
            task.id,
            task.pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            task.command
        );
        println!("{}", task.id);
    }
    Ok(0)
}
