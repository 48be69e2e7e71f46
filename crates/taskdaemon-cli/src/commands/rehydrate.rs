//! `taskdaemon rehydrate`: the post-compaction summary (gathered and
//! rendered by the service, the running daemon's when it answers; printed
//! here).

use taskdaemon_service::Service;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::RehydrateArgs;
use crate::output::print_json;

pub fn run(workspace: &Workspace, args: RehydrateArgs) -> anyhow::Result<u8> {
    let session = args.session.as_deref();
    if args.json {
        let rehydration = service(workspace)?.rehydration(args.budget, session, args.peek)?;
        print_json(&rehydration)?;
        return Ok(0);
    }
    let from_daemon = Service::rehydrate_from_daemon(workspace, args.budget, session, args.peek)?;
    let markdown = match from_daemon {
        Some(markdown) => markdown,
        None => {
            service(workspace)?
                .rehydrate(args.budget, session, args.peek)?
                .markdown
        }
    };
    print!("{markdown}");
    Ok(0)
}
