//! `Call`: runs a call of the layer above (see [`crate::CallHandler`]) on
//! the daemon's store, whose connections have the schema loaded and their
//! statements prepared already. A `status` or `rehydrate` that asks here
//! skips opening the store and parsing its schema, most of its work.

use crate::blocking::blocking;
use crate::protocol::{ErrorKind, Response};
use crate::server::CallError;
use crate::state::Shared;

pub(super) async fn handle(daemon: &Shared, call: serde_json::Value) -> Response {
    let Some(handler) = daemon.calls.clone() else {
        return unknown("this daemon runs no calls".to_owned());
    };
    match blocking(move || handler(call)).await {
        Ok(Ok(value)) => Response::Answer { value },
        Ok(Err(CallError::Unknown(message))) => unknown(message),
        Ok(Err(CallError::Failed(message))) => Response::Error {
            kind: ErrorKind::Internal,
            message,
        },
        Err(panicked) => Response::Error {
            kind: ErrorKind::Internal,
            message: panicked.into(),
        },
    }
}

/// The answer to a call the daemon cannot run: the client runs it itself.
fn unknown(message: String) -> Response {
    Response::Error {
        kind: ErrorKind::Invalid,
        message,
    }
}
