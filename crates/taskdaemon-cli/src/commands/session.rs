//! `taskdaemon session ...`: agent conversations.

use taskdaemon_core::time::to_rfc3339;

use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::SessionCommand;
use crate::output::print_json;

pub fn run(workspace: &Workspace, command: SessionCommand) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    match command {
        SessionCommand::End(args) => {
            let session = service.end_session(&args.session)?;
            println!("session {} ended", session.id);
        }
        SessionCommand::Show(args) => {
            let Some(session) = service.session(args.session.as_deref())? else {
                eprintln!("no session yet: pass --session or set TASKDAEMON_SESSION");
                return Ok(0);
            };
            if args.json {
                print_json(&session)?;
            } else {
                println!("session:   {}", session.id);
                println!("tool:      {}", session.tool.as_deref().unwrap_or("-"));
                println!("started:   {}", to_rfc3339(session.started_at));
                println!("last seen: {}", to_rfc3339(session.last_seen_at));
                if let Some(ended) = session.ended_at {
                    println!("ended:     {}", to_rfc3339(ended));
                }
            }
        }
    }
    Ok(0)
}
