//! The taskdaemon terminal UI: `taskdaemon tui`.
//!
//! Seven views (Processes, Queues, Tracked, Executions, Plan, Chat,
//! Records) over the service layer, kept live by the change feed. It reads
//! the store directly, so it works while the daemon is down (and says so);
//! actions go through the service, which starts the daemon when one needs it.
//!
//! - [`app`]: the state and the key handling, a pure state machine.
//! - [`model`]: what the views show, loaded through the service and updated
//!   from feed events.
//! - [`ui`]: drawing; lists are virtualised (only visible rows are built).
//! - [`runtime`]: the UI loop and its threads (input, feed, actions).
//! - [`terminal`]: raw mode in and out, also on panic and SIGTERM.

pub mod app;
pub mod export;
pub mod list;
pub mod model;
pub mod plan;
pub mod runtime;
pub mod style;
pub mod terminal;
pub mod tree;
pub mod ui;

use taskdaemon_service::{ChatModel, Service, ServiceError};

/// How the TUI starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The model the Chat view talks to.
    pub chat: ChatModel,
}

/// Why the TUI could not run.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("taskdaemon tui needs a terminal: stdin and stdout must be a TTY")]
    NotATerminal,
}

/// Runs the TUI on the terminal until the user quits.
pub fn run(service: Service, options: Options) -> Result<(), TuiError> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    runtime::run(service, options)
}
