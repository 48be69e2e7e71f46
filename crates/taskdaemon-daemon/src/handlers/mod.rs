//! One file per socket request, as pueue's `message_handler` has it:
//! [`dispatch`] routes each [`Request`] variant to its handler and turns the
//! outcome into the [`Response`] the client reads.
//!
//! Handlers of requests that change a process answer with the task
//! ([`answer_task`]): a task that did not end gets a follower, and the
//! registry is rewritten before the answer goes out, so the caller reads a
//! current registry.

mod adopt;
mod call;
mod kill;
mod loops;
mod ping;
mod reload_queues;
mod restart;
mod shutdown;
mod spawn;
mod wake_pipeline;

use taskdaemon_core::TaskRecord;

use crate::follow::follow;
use crate::protocol::{Request, Response};
use crate::state::{Failure, Shared};

/// Handles one request.
pub(crate) async fn dispatch(daemon: &Shared, request: Request) -> Response {
    match request {
        // Only the first line may be a hello; a later one is harmless.
        Request::Ping | Request::Hello { .. } => ping::handle(),
        Request::Shutdown => shutdown::handle(daemon),
        Request::ReloadQueues => reload_queues::handle(daemon),
        Request::WakePipeline => wake_pipeline::handle(daemon),
        Request::Call { call } => call::handle(daemon, call).await,
        Request::LoopRun(run) => loops::run(daemon, *run).await,
        Request::LoopStop { id } => loops::stop(daemon, id).await,
        Request::Spawn(spec) => {
            let spawned = spawn::handle(daemon, *spec).await;
            answer_task(daemon, spawned, Registry::WrittenByShim).await
        }
        Request::Kill {
            id,
            signal,
            grace_ms,
        } => {
            let killed = kill::handle(daemon, id, signal, grace_ms).await;
            answer_task(daemon, killed, Registry::Rewrite).await
        }
        Request::Restart { id, grace_ms } => {
            let restarted = restart::handle(daemon, id, grace_ms).await;
            answer_task(daemon, restarted, Registry::Rewrite).await
        }
        Request::Adopt(request) => {
            let adopted = adopt::handle(daemon, request).await;
            answer_task(daemon, adopted, Registry::Rewrite).await
        }
    }
}

/// Who brings the registry projection up to date after a request that
/// changed a process, before the client hears of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registry {
    /// The daemon, now.
    Rewrite,
    /// The shim did, before it reported the start the daemon waited for
    /// (see `taskdaemon_supervisor::shim`): rewriting it again would only
    /// wait for the shim's lock and write the same file.
    WrittenByShim,
}

/// The answer to a request that changed a process.
async fn answer_task(
    daemon: &Shared,
    result: Result<TaskRecord, Failure>,
    registry: Registry,
) -> Response {
    match result {
        Ok(task) => {
            if !task.status.is_terminal() {
                follow(daemon, task.id.clone());
            }
            match registry {
                Registry::Rewrite => daemon.refresh_registry().await,
                Registry::WrittenByShim => daemon.release_memory().await,
            }
            Response::Task {
                task: Box::new(task),
            }
        }
        Err(f) => error(f),
    }
}

/// The answer to a request that failed.
fn error(f: Failure) -> Response {
    Response::Error {
        kind: f.kind,
        message: f.message,
    }
}
