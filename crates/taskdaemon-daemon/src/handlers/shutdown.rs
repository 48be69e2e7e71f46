//! `Shutdown`: the listener stops after answering; supervised processes,
//! which run under their own shims, keep running.

use crate::protocol::Response;
use crate::state::Shared;

pub(super) fn handle(daemon: &Shared) -> Response {
    daemon.shutdown.notify_one();
    Response::ShuttingDown
}
