//! Store errors.

use std::path::PathBuf;

use taskdaemon_core::pipeline::{IllegalPipelineTransition, PipelineError};
use taskdaemon_core::{IllegalTransition, id::IdError};

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no task with id '{0}'")]
    NotFound(String),
    /// No plan, spec, phase or message with that id (`what` says which).
    #[error("no {what} '{id}'")]
    Missing { what: &'static str, id: String },
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error(transparent)]
    IllegalPipelineTransition(#[from] IllegalPipelineTransition),
    /// Pipeline structure the store refuses: a bad name, a cycle, an unknown dependency.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// Input the store refuses: empty text, a cycle, a bad label.
    #[error("{0}")]
    Invalid(String),
    /// A consumer of streamed records (an export's output) gave up.
    #[error("{0}")]
    Aborted(String),
    /// A change that no longer applies (e.g. an exit report for an older attempt).
    #[error("{0}")]
    Conflict(String),
    #[error(
        "store {} is corrupt or not a taskdaemon database: {message} (move it aside or restore a backup)",
        path.display()
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "store {} was written by a newer taskdaemon (schema {found}, this build knows {known}); upgrade taskdaemon",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server could not be reached or refused the connection.
    /// `url` never holds the password.
    #[error("cannot connect to PostgreSQL at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("store (PostgreSQL): {0}")]
    Postgres(#[from] postgres::Error),
    #[error(
        "store {url} was written by a newer taskdaemon (schema {found}, this build knows {known}); upgrade taskdaemon"
    )]
    PgTooNew { url: String, found: i64, known: i64 },
    /// An operation this backend does not offer, with what to use instead.
    #[error("{0}")]
    Unsupported(String),
    #[error("store holds malformed data in {field}: {message}")]
    Malformed {
        field: &'static str,
        message: String,
    },
}
