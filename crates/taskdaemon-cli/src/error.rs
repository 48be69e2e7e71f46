//! Error reporting and exit codes.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the command failed (I/O, store, daemon) |
//! | 2 | bad input: usage, a malformed value, a command that cannot start |
//! | 3 | no task with that id |
//! | 4 | the task is not in a state that allows it (e.g. killing an ended process) |
//! | 124 | `wait --timeout` ran out |
//!
//! `wait` otherwise exits with the process's own code (128 + N after signal N).

use taskdaemon_daemon::ClientError;
use taskdaemon_daemon::protocol::ErrorKind;
use taskdaemon_service::{ServiceError, store_class};
use taskdaemon_store::StoreError;

/// Input the CLI itself rejects.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error, from the first cause that says what went wrong.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
        if let Some(e) = cause.downcast_ref::<ServiceError>() {
            return e.class().exit_code();
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            let code = store_class(e).exit_code();
            if code != 1 {
                return code;
            }
        }
        if let Some(ClientError::Daemon { kind, .. }) = cause.downcast_ref::<ClientError>() {
            return match kind {
                ErrorKind::NotFound => 3,
                ErrorKind::Conflict => 4,
                ErrorKind::Invalid => 2,
                ErrorKind::Internal => 1,
            };
        }
    }
    1
}

/// Prints `error: outer: inner: ...` on one line.
pub fn report(err: &anyhow::Error) {
    eprintln!("error: {}", taskdaemon_service::error_message(err.as_ref()));
}
