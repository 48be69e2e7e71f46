//! `taskdaemon tui`: hands the workspace's service to the terminal UI.

use taskdaemon_service::{ChatModel, Service};
use taskdaemon_workspace::Workspace;

use crate::args::TuiArgs;

pub fn run(workspace: &Workspace, args: TuiArgs) -> anyhow::Result<u8> {
    let service = Service::open(workspace.clone())?;
    taskdaemon_tui::run(
        service,
        taskdaemon_tui::Options {
            chat: ChatModel {
                provider: args.provider,
                model: args.model,
            },
        },
    )?;
    Ok(0)
}
