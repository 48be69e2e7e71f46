//! PostgreSQL databases for tests: one fresh schema each, so tests run in
//! parallel against one server, dropped when the test ends; and how many
//! connections a test's process holds on a SQLite file.
//!
//! Tests read the server from `TASKDAEMON_TEST_DATABASE_URL` (`.ci/run` sets
//! it and fails when the server is down). Without it they are skipped with a
//! loud notice on stderr, never silently.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{PgOptions, PgStore, Result};

/// How many of this process's descriptors are open on the file at `path`
/// (SQLite holds one per connection to a database file).
pub fn descriptors_on(path: &std::path::Path) -> usize {
    let Ok(target) = path.canonicalize() else {
        return 0;
    };
    std::fs::read_dir("/proc/self/fd")
        .map(|fds| {
            fds.filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
                .filter(|link| *link == target)
                .count()
        })
        .unwrap_or(0)
}

/// The variable that names the test server.
pub const TEST_DATABASE_URL: &str = "TASKDAEMON_TEST_DATABASE_URL";

/// A schema of its own on the test server; dropped on drop.
pub struct TestSchema {
    base_url: String,
    schema: String,
}

impl TestSchema {
    /// A new empty schema, or `None` (with a loud notice naming `test`) when
    /// no test server is configured.
    pub fn create(test: &str) -> Option<Self> {
        let Some(base_url) = std::env::var(TEST_DATABASE_URL)
            .ok()
            .filter(|v| !v.is_empty())
        else {
            // Straight to the stderr handle, not `eprintln!`: the test
            // harness captures (and hides) the macros' output of passing tests.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n  SKIPPED {test}: {TEST_DATABASE_URL} is not set, so the PostgreSQL\n  \
                 tests did not run. Set it (e.g. postgres://postgres@127.0.0.1:5432/test)\n  \
                 or run .ci/run, which sets it.\n{bar}\n",
                bar = "!".repeat(72)
            );
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "td_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = postgres::Client::connect(&base_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} is set but unreachable: {e}"));
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
        Some(Self { base_url, schema })
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A URL whose connections use this schema (`options=-c search_path=...`)
    /// and are named after it (`application_name`), so a test can end its
    /// own connections without touching other tests'.
    pub fn url(&self) -> String {
        format!(
            "{}&options=-c%20search_path%3D{}",
            self.named_url(),
            self.schema
        )
    }

    fn named_url(&self) -> String {
        let joiner = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{joiner}application_name={}", self.base_url, self.schema)
    }

    /// Opens a store in this schema.
    pub fn open(&self) -> Result<PgStore> {
        PgStore::open(&PgOptions {
            url: self.named_url(),
            schema: Some(self.schema.clone()),
            pool_size: 8,
        })
    }

    /// Ends every connection of this schema's stores (as a crashed server
    /// or a network cut would); returns how many.
    pub fn terminate_connections(&self) -> u64 {
        let mut admin = self.admin();
        admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&self.schema],
            )
            .map_or(0, |rows| rows.len() as u64)
    }

    /// A direct connection to the server (not in the schema), for tests
    /// that kill other connections.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.base_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"))
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base_url, postgres::NoTls) {
            // Connections still open in the schema are ended first, so the
            // drop does not wait for them.
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}
