//! `WakePipeline`: a person changed a plan through the store (`new-plan`,
//! `plan approve|resume|cancel|message|answer`); the scheduler takes a full
//! pass now rather than at its next `scheduler_interval` tick.

use crate::protocol::Response;
use crate::state::Shared;

pub(super) fn handle(daemon: &Shared) -> Response {
    daemon.pipeline.wake_full();
    Response::PipelineWoken
}
