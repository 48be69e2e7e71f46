//! `LoopRun` and `LoopStop`: handed to the loop manager (`crate::loops`),
//! which owns running loops.

use crate::protocol::{LoopRun, Response};
use crate::state::Shared;

/// `loop run`: checks the spec, creates the loop and starts it.
pub(super) async fn run(daemon: &Shared, request: LoopRun) -> Response {
    crate::loops::run(daemon, request).await
}

/// `loop stop`: cancels the loop and answers once it has ended.
pub(super) async fn stop(daemon: &Shared, id: String) -> Response {
    crate::loops::stop(daemon, id).await
}
