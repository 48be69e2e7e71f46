//! Where the store lives, and the one function that opens it.
//!
//! A location is a SQLite file (the embedded default) or a `postgres://`
//! URL. Everything that opens the store (the CLI, the daemon, the shims, the
//! workers) goes through [`open`], so a PostgreSQL URL means that nothing
//! at all is written to SQLite.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{PgOptions, PgStore, Result, SqliteStore, Store};

/// Which backend, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Location {
    /// A URL when `text` looks like a PostgreSQL one, else a file path.
    pub fn parse(text: &str) -> Self {
        if is_postgres_url(text) {
            Location::Postgres(text.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(text))
        }
    }

    /// For messages: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

/// Whether `text` is a PostgreSQL connection URL.
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// Opens the store at `location`, bringing its schema up to date.
pub fn open(location: &Location) -> Result<Arc<dyn Store>> {
    Ok(match location {
        Location::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        Location::Postgres(url) => Arc::new(PgStore::open(&PgOptions::new(url))?),
    })
}

/// [`open`] for a process that writes as surely as it reads, one thing at
/// a time (a shim): on SQLite one connection serves both (see
/// [`SqliteStore::open_for_writing`]); PostgreSQL opens as [`open`] does.
pub fn open_for_writing(location: &Location) -> Result<Arc<dyn Store>> {
    Ok(match location {
        Location::Sqlite(path) => Arc::new(SqliteStore::open_for_writing(path)?),
        Location::Postgres(_) => open(location)?,
    })
}

/// `url` with any password replaced by `***`, for messages and logs.
///
/// Handles `scheme://user:password@host/...` and a `password=` query or
/// key/value parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                let end = rest_start + at;
                out.replace_range(start..end, "***");
            }
        }
    }
    // `?password=...&` or `password=... ` in key/value form.
    let lower = out.to_ascii_lowercase();
    if let Some(pos) = lower.find("password=") {
        let start = pos + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db.example:5432/td"),
            "postgres://bob:***@db.example:5432/td"
        );
        assert_eq!(
            redact_url("postgresql://bob:p@ss@host/db"),
            "postgresql://bob:***@host/db"
        );
        assert_eq!(
            redact_url("postgres://host/db?user=x&password=hunter2&sslmode=disable"),
            "postgres://host/db?user=x&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(matches!(
            Location::parse("postgres://h/db"),
            Location::Postgres(_)
        ));
        assert!(matches!(
            Location::parse("/tmp/state.db"),
            Location::Sqlite(_)
        ));
    }
}
