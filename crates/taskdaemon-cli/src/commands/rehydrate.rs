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
    let markdown =
        Service::rehydrate_via_daemon(workspace, args.budget, session, args.peek, || {
            service(workspace)
        })?;
    print!("{markdown}");
    Ok(0)
}
