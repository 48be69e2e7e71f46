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
    // 2: tracked work (dependencies, labels, files), memory, sessions, the
    // compressed event archive and one full-text index over all of it.
    //
    // The index is contentless: it keeps only the terms, so archiving events
    // (moving their text into compressed chunks) keeps them searchable. Its
    // rowids say where a hit came from: search_key * 4 + 1 a task, id * 4 + 2
    // a memory, seq * 4 + 3 an event (see `search.rs`). Tasks get their own
    // `search_key` (their first rowid) because VACUUM may renumber the rowids
    // of a table without an INTEGER PRIMARY KEY.
    r#"
    ALTER TABLE tasks ADD COLUMN description TEXT;
    ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN note TEXT;
    ALTER TABLE tasks ADD COLUMN search_key INTEGER;
    UPDATE tasks SET search_key = rowid;
    CREATE UNIQUE INDEX tasks_search_key ON tasks(search_key);
    CREATE INDEX tasks_ready ON tasks(kind, status, priority DESC);
    CREATE TABLE task_deps (
        task_id    TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        PRIMARY KEY (task_id, depends_on)
    ) WITHOUT ROWID;
    CREATE INDEX task_deps_dependents ON task_deps(depends_on, task_id);
    CREATE TABLE task_labels (
        task_id TEXT NOT NULL,
        label   TEXT NOT NULL,
        PRIMARY KEY (task_id, label)
    ) WITHOUT ROWID;
    CREATE INDEX task_labels_label ON task_labels(label, task_id);
    CREATE TABLE task_files (
        task_id  TEXT NOT NULL,
        path     TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        UNIQUE (task_id, path)
    );
    CREATE TABLE memory (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT NOT NULL,
        text       TEXT NOT NULL,
        task_id    TEXT,
        key        TEXT UNIQUE,
        session    TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX memory_kind ON memory(kind, updated_at DESC, id DESC);
    CREATE INDEX memory_task ON memory(task_id, updated_at DESC, id DESC);
    CREATE INDEX memory_updated ON memory(updated_at DESC, id DESC);
    CREATE TABLE sessions (
        id           TEXT PRIMARY KEY,
        tool         TEXT,
        started_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        ended_at     INTEGER
    );
    CREATE INDEX sessions_seen ON sessions(last_seen_at);
    CREATE TABLE event_archive (
        chunk     INTEGER PRIMARY KEY,
        first_seq INTEGER NOT NULL,
        last_seq  INTEGER NOT NULL,
        first_at  INTEGER NOT NULL,
        last_at   INTEGER NOT NULL,
        count     INTEGER NOT NULL,
        data      BLOB NOT NULL
    );
    CREATE INDEX event_archive_seq ON event_archive(last_seq);
    CREATE INDEX tasks_session ON tasks(session);
    CREATE INDEX events_at ON events(at);
    CREATE INDEX tasks_finished ON tasks(kind, status, finished_at);
    CREATE VIRTUAL TABLE search_fts USING fts5(
        title, body, content='', contentless_delete=1,
        tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO search_fts(rowid, title, body)
        SELECT search_key * 4 + 1, coalesce(name, ''), argv FROM tasks;
    INSERT INTO search_fts(rowid, title, body)
        SELECT seq * 4 + 3, coalesce(task_id, ''), message FROM events;
    CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN
        UPDATE tasks SET search_key = new.rowid WHERE rowid = new.rowid;
        INSERT INTO search_fts(rowid, title, body) VALUES (new.rowid * 4 + 1,
            coalesce(new.name, ''),
            concat_ws(' ', new.description, new.note, CASE new.kind WHEN 'manual' THEN NULL ELSE new.argv END));
    END;
    CREATE TRIGGER tasks_search_update AFTER UPDATE OF name, description, note ON tasks BEGIN
        DELETE FROM search_fts WHERE rowid = old.search_key * 4 + 1;
        INSERT INTO search_fts(rowid, title, body) VALUES (new.search_key * 4 + 1,
            coalesce(new.name, ''),
            concat_ws(' ', new.description, new.note, CASE new.kind WHEN 'manual' THEN NULL ELSE new.argv END));
    END;
    CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks BEGIN
        DELETE FROM search_fts WHERE rowid = old.search_key * 4 + 1;
    END;
    CREATE TRIGGER memory_search_insert AFTER INSERT ON memory BEGIN
        INSERT INTO search_fts(rowid, title, body)
            VALUES (new.id * 4 + 2, concat_ws(' ', new.kind, new.key), new.text);
    END;
    CREATE TRIGGER memory_search_update AFTER UPDATE OF kind, key, text ON memory BEGIN
        DELETE FROM search_fts WHERE rowid = old.id * 4 + 2;
        INSERT INTO search_fts(rowid, title, body)
            VALUES (new.id * 4 + 2, concat_ws(' ', new.kind, new.key), new.text);
    END;
    CREATE TRIGGER memory_search_delete AFTER DELETE ON memory BEGIN
        DELETE FROM search_fts WHERE rowid = old.id * 4 + 2;
    END;
    -- Events are only ever appended or archived; archiving keeps their terms.
    CREATE TRIGGER events_search_insert AFTER INSERT ON events BEGIN
        INSERT INTO search_fts(rowid, title, body)
            VALUES (new.seq * 4 + 3, coalesce(new.task_id, ''), new.message);
    END;
    "#,
    // 3: folder queues: which document an `agent` task came from, its attempt
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
    // 4: loops: the engine's spec (JSON, never an API key) and the counters
    // of each `loop` task, one row beside its `tasks` row.
    r#"
    CREATE TABLE loops (
        task_id       TEXT PRIMARY KEY,
        spec          TEXT NOT NULL,
        iterations    INTEGER NOT NULL DEFAULT 0,
        tool_calls    INTEGER NOT NULL DEFAULT 0,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd      REAL NOT NULL DEFAULT 0,
        last_exit     INTEGER
    ) WITHOUT ROWID;
    "#,
    // 5: claimed work (`submit`, `worker`): which items workers claim, their
    // leases (owner, epoch, expiry) and the workers themselves.
    r#"
    ALTER TABLE queue_items ADD COLUMN claimable INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue_items ADD COLUMN lease_owner TEXT;
    ALTER TABLE queue_items ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue_items ADD COLUMN lease_expires_at INTEGER;
    ALTER TABLE queue_items ADD COLUMN available_at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX queue_items_claimable ON queue_items(queue, created_at)
        WHERE claimable = 1 AND finished = 0 AND lease_owner IS NULL;
    CREATE INDEX queue_items_leases ON queue_items(lease_expires_at)
        WHERE lease_owner IS NOT NULL;
    CREATE TABLE workers (
        id           TEXT PRIMARY KEY,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        queues       TEXT NOT NULL,
        concurrency  INTEGER NOT NULL,
        started_at   INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        stopped_at   INTEGER
    );
    "#,
    // 6: per-task resource limits (JSON; NULL when none are set).
    r#"
    ALTER TABLE tasks ADD COLUMN limits TEXT;
    "#,
    // 7: loop-type configuration versions the daemon loaded (`config
    // history`), and prompt-cache token counters of loops (analytics).
    r#"
    CREATE TABLE config_versions (
        version    INTEGER PRIMARY KEY,
        digest     TEXT NOT NULL,
        file       TEXT,
        loaded_at  INTEGER NOT NULL,
        type_names TEXT NOT NULL,
        types      TEXT NOT NULL
    );
    ALTER TABLE loops ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE loops ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
    "#,
    // 8: the Plan -> Spec -> Phase pipeline and coordinator messages. A
    // spec's dependencies are a JSON array of spec names of its plan; costs
    // of a phase are added to its spec and plan as they are recorded;
    // `pipeline_loops` keeps every loop task that ran a plan, spec or phase.
    r#"
    CREATE TABLE plans (
        id            TEXT PRIMARY KEY,
        number        INTEGER NOT NULL,
        goal          TEXT NOT NULL,
        title         TEXT,
        summary       TEXT,
        body          TEXT,
        status        TEXT NOT NULL,
        target_branch TEXT NOT NULL,
        base_commit   TEXT NOT NULL,
        auto_approve  INTEGER NOT NULL,
        note          TEXT,
        loop_task     TEXT,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd      REAL NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );
    CREATE INDEX plans_status ON plans(status, number);
    CREATE TABLE specs (
        plan          TEXT NOT NULL REFERENCES plans(id),
        name          TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        title         TEXT NOT NULL,
        body          TEXT NOT NULL,
        status        TEXT NOT NULL,
        priority      INTEGER NOT NULL,
        depends_on    TEXT NOT NULL,
        branch        TEXT NOT NULL,
        worktree      TEXT NOT NULL,
        note          TEXT,
        loop_task     TEXT,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd      REAL NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (plan, name)
    ) WITHOUT ROWID;
    CREATE INDEX specs_ready ON specs(status, priority DESC);
    CREATE TABLE phases (
        plan          TEXT NOT NULL,
        spec          TEXT NOT NULL,
        number        INTEGER NOT NULL,
        name          TEXT NOT NULL,
        title         TEXT NOT NULL,
        body          TEXT NOT NULL,
        validation    TEXT NOT NULL,
        status        TEXT NOT NULL,
        note          TEXT,
        loop_task     TEXT,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd      REAL NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (plan, spec, number),
        UNIQUE (plan, spec, name),
        FOREIGN KEY (plan, spec) REFERENCES specs(plan, name)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        plan       TEXT NOT NULL REFERENCES plans(id),
        sender     TEXT NOT NULL,
        recipient  TEXT NOT NULL,
        kind       TEXT NOT NULL,
        body       TEXT NOT NULL,
        delivery   TEXT NOT NULL,
        answer     TEXT,
        reason     TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX messages_recipient ON messages(plan, recipient, delivery);
    CREATE INDEX messages_delivery ON messages(delivery, kind);
    CREATE TABLE pipeline_loops (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        plan      TEXT NOT NULL REFERENCES plans(id),
        node      TEXT NOT NULL,
        loop_task TEXT NOT NULL,
        UNIQUE (node, loop_task)
    );
    CREATE INDEX pipeline_loops_plan ON pipeline_loops(plan, seq);
    "#,
    // 9: each recorded iteration of a pipeline loop is charged to the plan,
    // spec or phase the loop works for, found by its loop task.
    r#"
    CREATE INDEX pipeline_loops_loop ON pipeline_loops(loop_task, seq);
    "#,
    // 10: a broadcast's delivery per recipient loop: delivered once that
    // loop read it, dead (with the reason) when its spec ended first.
    r#"
    CREATE TABLE message_deliveries (
        message   INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        recipient TEXT NOT NULL,
        delivery  TEXT NOT NULL,
        reason    TEXT,
        at        INTEGER NOT NULL,
        PRIMARY KEY (message, recipient)
    ) WITHOUT ROWID;
    "#,
    // 11: typed links. `blocks` and `waits-for` gate a task's start, so they
    // stay dependency edges (existing ones are `blocks`); the other kinds,
    // `parent-child` included, live in `task_links` as `task_id KIND target`.
    // Agents' claims on tracked tasks: who holds one, and its lease.
    r#"
    ALTER TABLE task_deps ADD COLUMN kind TEXT NOT NULL DEFAULT 'blocks';
    CREATE TABLE task_links (
        task_id TEXT NOT NULL,
        kind    TEXT NOT NULL,
        target  TEXT NOT NULL,
        PRIMARY KEY (task_id, kind, target)
    ) WITHOUT ROWID;
    CREATE INDEX task_links_target ON task_links(target, kind, task_id);
    ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
    ALTER TABLE tasks ADD COLUMN lease_until INTEGER;
    CREATE INDEX tasks_claims ON tasks(claimed_by) WHERE claimed_by IS NOT NULL;
    "#,
    // 12: decay. A compacted tracked task keeps its original description
    // and note here (the task row holds the summary); the task's search
    // document holds both, so search finds the summary and the original.
    r#"
    CREATE TABLE task_originals (
        task_id      TEXT PRIMARY KEY,
        description  TEXT,
        note         TEXT,
        compacted_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    DROP TRIGGER tasks_search_insert;
    DROP TRIGGER tasks_search_update;
    CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN
        UPDATE tasks SET search_key = new.rowid WHERE rowid = new.rowid;
        INSERT INTO search_fts(rowid, title, body) VALUES (new.rowid * 4 + 1,
            coalesce(new.name, ''),
            concat_ws(' ', new.description, new.note, CASE new.kind WHEN 'manual' THEN NULL ELSE new.argv END,
                      (SELECT concat_ws(' ', o.description, o.note) FROM task_originals o
                        WHERE o.task_id = new.id)));
    END;
    CREATE TRIGGER tasks_search_update AFTER UPDATE OF name, description, note ON tasks BEGIN
        DELETE FROM search_fts WHERE rowid = old.search_key * 4 + 1;
        INSERT INTO search_fts(rowid, title, body) VALUES (new.search_key * 4 + 1,
            coalesce(new.name, ''),
            concat_ws(' ', new.description, new.note, CASE new.kind WHEN 'manual' THEN NULL ELSE new.argv END,
                      (SELECT concat_ws(' ', o.description, o.note) FROM task_originals o
                        WHERE o.task_id = new.id)));
    END;
    "#,
    // 13: container execution mode: the container spec (JSON; NULL for
    // native processes) and the engine's container id once created.
    r#"
    ALTER TABLE tasks ADD COLUMN container TEXT;
    ALTER TABLE tasks ADD COLUMN container_id TEXT;
    "#,
    // 14: gates. A tracked task waits until each of its gates opens (a
    // task succeeds, a command exits 0, a time passes, a person approves);
    // `failed` says why a gate can never open.
    r#"
    CREATE TABLE task_gates (
        task_id    TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        target     TEXT,
        until_at   INTEGER,
        opened_at  INTEGER,
        failed     TEXT,
        attempts   INTEGER NOT NULL DEFAULT 0,
        next_check INTEGER,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, seq)
    );
    CREATE INDEX task_gates_shut ON task_gates(kind, target) WHERE opened_at IS NULL;
    "#,
    // 15: tasks by status, kept by triggers, so `status` reads a handful of
    // rows instead of counting the whole status index (10,000 tasks cost a
    // CLI call more than everything else it does). One writer at a time
    // holds SQLite's lock anyway, so the shared rows add no contention.
    r#"
    CREATE TABLE task_status_counts (
        status TEXT PRIMARY KEY,
        n      INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO task_status_counts (status, n)
        SELECT status, COUNT(*) FROM tasks GROUP BY status;
    CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
        INSERT INTO task_status_counts (status, n) VALUES (new.status, 1)
            ON CONFLICT(status) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
        UPDATE task_status_counts SET n = n - 1 WHERE status = old.status;
    END;
    CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
        WHEN old.status IS NOT new.status BEGIN
        UPDATE task_status_counts SET n = n - 1 WHERE status = old.status;
        INSERT INTO task_status_counts (status, n) VALUES (new.status, 1)
            ON CONFLICT(status) DO UPDATE SET n = n + 1;
    END;
    "#,
    // 16: the end events (exits, losses, failed starts) newest first with
    // what a summary joins on, so `rehydrate` walks one index back from the
    // newest and stops at its limit: no rows read, nothing sorted. The list
    // of kinds is `encoding::ENDED_KINDS`.
    r#"
    CREATE INDEX events_ended ON events(seq, at, task_id)
        WHERE kind IN ('exited', 'lost', 'start_failed');
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}
