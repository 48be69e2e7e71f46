//! The service's error type and the class of each failure, which every
//! interface maps to its own codes (the CLI's exit codes, HTTP statuses).

use taskdaemon_daemon::ClientError;
use taskdaemon_daemon::protocol::ErrorKind;
use taskdaemon_store::StoreError;
use taskdaemon_workspace::{ConfigError, WorkspaceError};

/// What kind of failure an error is, for interfaces to map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Something failed (I/O, the store, the daemon): CLI exit code 1.
    Failed,
    /// The request is malformed or names something unusable: exit code 2.
    BadInput,
    /// No task (or session, loop) with that id: exit code 3.
    NotFound,
    /// The task's state does not allow it: exit code 4.
    IllegalState,
}

impl ErrorClass {
    /// The CLI's exit code for this class (README, "Exit codes").
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Failed => 1,
            ErrorClass::BadInput => 2,
            ErrorClass::NotFound => 3,
            ErrorClass::IllegalState => 4,
        }
    }
}

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Daemon(#[from] ClientError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The container engine could not be reached or refused a call.
    #[error(transparent)]
    Engine(#[from] taskdaemon_container::EngineError),
    /// A request the service refuses before doing anything.
    #[error("{0}")]
    BadInput(String),
    /// A state change the state machine refused, explained in words; the
    /// store's own message is the source.
    #[error("{hint}")]
    Refused {
        hint: String,
        #[source]
        source: StoreError,
    },
    /// Something outside the store failed (a file, a thread).
    #[error("{0}")]
    Failed(String),
}

impl ServiceError {
    /// The class of this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            ServiceError::Store(e) | ServiceError::Refused { source: e, .. } => store_class(e),
            ServiceError::Daemon(ClientError::Daemon { kind, .. }) => match kind {
                ErrorKind::NotFound => ErrorClass::NotFound,
                ErrorKind::Conflict => ErrorClass::IllegalState,
                ErrorKind::Invalid => ErrorClass::BadInput,
                ErrorKind::Internal => ErrorClass::Failed,
            },
            ServiceError::BadInput(_) => ErrorClass::BadInput,
            _ => ErrorClass::Failed,
        }
    }
}

/// The class of a store error; shared by [`ServiceError::class`] and the CLI.
pub fn store_class(e: &StoreError) -> ErrorClass {
    match e {
        StoreError::NotFound(_) | StoreError::Missing { .. } => ErrorClass::NotFound,
        StoreError::IllegalTransition(_)
        | StoreError::IllegalPipelineTransition(_)
        | StoreError::Conflict(_) => ErrorClass::IllegalState,
        StoreError::InvalidId(_) | StoreError::Invalid(_) | StoreError::Pipeline(_) => {
            ErrorClass::BadInput
        }
        _ => ErrorClass::Failed,
    }
}

/// An error and its causes on one line (`outer: inner: ...`), each cause
/// once: what every interface shows for a failure.
pub fn error_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let text = e.to_string();
        // thiserror's `transparent` and wrapping can repeat a message.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = e.source();
    }
    message
}

/// Result of service calls.
pub type Result<T> = std::result::Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_holds_each_cause_once() {
        let refused = ServiceError::Refused {
            hint: "cannot mark TASK-1 done: it was never started".to_owned(),
            source: StoreError::Invalid("illegal transition".to_owned()),
        };
        let message = error_message(&refused);
        assert!(message.starts_with("cannot mark TASK-1 done"), "{message}");
        assert!(message.ends_with("illegal transition"), "{message}");
        let plain = ServiceError::BadInput("--queue 'a b': bad".to_owned());
        assert_eq!(error_message(&plain), "--queue 'a b': bad");
    }
}
