//! Store errors.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Another connection held the write lock for the whole busy timeout.
    #[error(
        "store {} is locked by another process: waited {}s for its write lock, then gave up; nothing was written",
        path.display(),
        waited.as_secs()
    )]
    Locked { path: PathBuf, waited: Duration },
    /// The file system holding the store has no space left.
    #[error(
        "store {}: the disk is full; nothing was written (free some space and try again)",
        path.display()
    )]
    DiskFull { path: PathBuf },
    #[error("store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Syncing a store file to the disk failed (see `Store::make_durable`).
    #[error("store {}: cannot sync to the disk: {source}", path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

impl StoreError {
    /// Whether the same call may succeed later, unchanged: the store could
    /// not be reached or written (a lock held too long, a full disk, a
    /// dropped connection), rather than answered about the data (no such
    /// task, a change that does not apply).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Locked { .. }
                | Self::DiskFull { .. }
                | Self::Open { .. }
                | Self::Sqlite(_)
                | Self::Sync { .. }
                | Self::Unreachable { .. }
                | Self::Postgres(_)
        )
    }
}
