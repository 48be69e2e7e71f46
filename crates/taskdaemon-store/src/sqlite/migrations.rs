//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! Each entry moves the schema one version up; entries are never edited once
//! released, only appended.

pub const MIGRATIONS: &[&str] = &[
    // 1: tasks, their events, counters, meta and resource samples.
    r#"
    CREATE TABLE counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE tasks (
        uuid            TEXT NOT NULL UNIQUE,
        id              TEXT NOT NULL UNIQUE,
        kind            TEXT NOT NULL,
        name            TEXT,
        tool            TEXT,
        session         TEXT,
        status          TEXT NOT NULL,
        argv            TEXT NOT NULL,
        cwd             TEXT,
        env             TEXT NOT NULL DEFAULT '[]',
        restart         TEXT NOT NULL,
        restarts        INTEGER NOT NULL DEFAULT 0,
        hang_timeout_ms INTEGER,
        pid             INTEGER,
        pgid            INTEGER,
        start_time      INTEGER,
        boot_id         TEXT,
        shim_pid        INTEGER,
        shim_start_time INTEGER,
        exit_code       INTEGER,
        signal          INTEGER,
        stop_requested  INTEGER NOT NULL DEFAULT 0,
        error           TEXT,
        created_at      INTEGER NOT NULL,
        started_at      INTEGER,
        finished_at     INTEGER,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX tasks_kind_status ON tasks(kind, status);
    CREATE INDEX tasks_status ON tasks(status);
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,
        task_id TEXT,
        actor   TEXT NOT NULL,
        kind    TEXT NOT NULL,
        message TEXT NOT NULL,
        before  TEXT,
        after   TEXT
    );
    CREATE INDEX events_task ON events(task_id, seq);
    CREATE INDEX events_kind ON events(kind, seq);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE samples (
        task_id     TEXT PRIMARY KEY,
        at          INTEGER NOT NULL,
        cpu_percent REAL NOT NULL,
        rss_kb      INTEGER NOT NULL,
        processes   INTEGER NOT NULL
    );
    "#,
    // Folder queues: which document an `agent` task came from, its attempt
    // limit, and whether its result was written back to the folder.
    r#"
    CREATE TABLE queue_items (
        task_id      TEXT PRIMARY KEY,
        queue        TEXT NOT NULL,
        document     TEXT NOT NULL,
        executor     TEXT NOT NULL,
        max_attempts INTEGER NOT NULL,
        timeout_ms   INTEGER,
        finished     INTEGER NOT NULL DEFAULT 0,
        result       TEXT,
        created_at   INTEGER NOT NULL,
        finished_at  INTEGER
    );
    CREATE INDEX queue_items_open ON queue_items(queue, finished, created_at);
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}
