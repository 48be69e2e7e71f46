//! `ReloadQueues`: re-reads the `[[queue]]` list, starting workers for new
//! queues and stopping those of removed ones (`queues add` / `queues rm`).

use taskdaemon_workspace::Config;

use crate::protocol::{ErrorKind, Response};
use crate::queues;
use crate::state::Shared;

pub(super) fn handle(daemon: &Shared) -> Response {
    match Config::load(&daemon.workspace.config_path()) {
        Ok(config) => {
            queues::sync_workers(daemon, &config);
            Response::QueuesReloaded {
                queues: config.queue.iter().map(|q| q.id().to_owned()).collect(),
            }
        }
        Err(e) => Response::Error {
            kind: ErrorKind::Invalid,
            message: e.to_string(),
        },
    }
}
