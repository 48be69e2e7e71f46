//! `taskdaemon rehydrate`: the post-compaction summary (gathered and
//! rendered by the service; printed here).

use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::RehydrateArgs;
use crate::output::print_json;

pub fn run(workspace: &Workspace, args: RehydrateArgs) -> anyhow::Result<u8> {
    let rehydration =
        service(workspace)?.rehydrate(args.budget, args.session.as_deref(), args.peek)?;
    if args.json {
        print_json(&rehydration)?;
    } else {
        print!("{}", rehydration.rendered.markdown);
    }
    Ok(0)
}
