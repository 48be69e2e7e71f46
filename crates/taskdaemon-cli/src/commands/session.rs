//! `taskdaemon session ...`: agent conversations.

use taskdaemon_core::time::to_rfc3339;

use taskdaemon_workspace::Workspace;

use super::{Agent, open_store, save_snapshot};
use crate::args::SessionCommand;
use crate::output::print_json;

pub fn run(workspace: &Workspace, command: SessionCommand) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    match command {
        SessionCommand::End(args) => {
            let agent = Agent {
                tool: None,
                session: Some(args.session.clone()),
            };
            let session = store.end_session(&args.session, &agent.actor())?;
            save_snapshot(workspace, store, &agent);
            println!("session {} ended", session.id);
        }
        SessionCommand::Show(args) => {
            let session = match &args.session {
                Some(id) => store.session(id)?.ok_or_else(|| {
                    taskdaemon_store::StoreError::NotFound(format!("session {id}"))
                })?,
                None => match store.latest_session()? {
                    Some(session) => session,
                    None => {
                        eprintln!("no session yet: pass --session or set TASKDAEMON_SESSION");
                        return Ok(0);
                    }
                },
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
