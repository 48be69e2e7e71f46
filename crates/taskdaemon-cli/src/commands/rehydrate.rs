//! `taskdaemon rehydrate`: the post-compaction summary (gathered and
//! rendered by the service; printed here).

use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::RehydrateArgs;
use crate::output::print_json;

pub fn run(workspace: &Workspace, args: RehydrateArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let session = args.session.as_deref();
    if args.json {
        print_json(&service.rehydration(args.budget, session, args.peek)?)?;
    } else {
        print!(
            "{}",
            service.rehydrate(args.budget, session, args.peek)?.markdown
        );
    }
    Ok(0)
}
