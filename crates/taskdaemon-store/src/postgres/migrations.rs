//! Versioned schema migrations for PostgreSQL, tracked in `td_schema`.
//!
//! Each entry moves the schema one version up; entries are never edited once
//! released, only appended. The schema mirrors SQLite's with PostgreSQL's
//! types, plus what several hosts need: a gap-free event sequence assigned
//! after commit (see [`super::history`]), a tsvector search index, and leases.

pub const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's migrations 1-3 hold, and claimed work.
    r#"
    CREATE TABLE counters (
        name  TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    -- The last sequence number given to an event (one row).
    CREATE TABLE event_seq (
        only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        value    BIGINT NOT NULL
    );
    INSERT INTO event_seq (only_row, value) VALUES (TRUE, 0);
    CREATE TABLE tasks (
        search_key      BIGSERIAL UNIQUE,
        uuid            TEXT NOT NULL UNIQUE,
        id              TEXT PRIMARY KEY,
        kind            TEXT NOT NULL,
        name            TEXT,
        tool            TEXT,
        session         TEXT,
        status          TEXT NOT NULL,
        argv            TEXT NOT NULL,
        cwd             TEXT,
        env             TEXT NOT NULL DEFAULT '[]',
        restart         TEXT NOT NULL,
        restarts        BIGINT NOT NULL DEFAULT 0,
        hang_timeout_ms BIGINT,
        pid             BIGINT,
        pgid            BIGINT,
        start_time      BIGINT,
        boot_id         TEXT,
        shim_pid        BIGINT,
        shim_start_time BIGINT,
        exit_code       BIGINT,
        signal          BIGINT,
        stop_requested  BOOLEAN NOT NULL DEFAULT FALSE,
        error           TEXT,
        created_at      BIGINT NOT NULL,
        started_at      BIGINT,
        finished_at     BIGINT,
        updated_at      BIGINT NOT NULL,
        description     TEXT,
        priority        BIGINT NOT NULL DEFAULT 0,
        note            TEXT
    );
    CREATE INDEX tasks_kind_status ON tasks(kind, status);
    CREATE INDEX tasks_status ON tasks(status);
    CREATE INDEX tasks_ready ON tasks(kind, status, priority DESC, search_key);
    CREATE INDEX tasks_session ON tasks(session);
    CREATE INDEX tasks_finished ON tasks(kind, finished_at);
    -- `seq` stays NULL until the event is sequenced after its commit.
    CREATE TABLE events (
        id      BIGSERIAL PRIMARY KEY,
        seq     BIGINT UNIQUE,
        at      BIGINT NOT NULL,
        task_id TEXT,
        actor   TEXT NOT NULL,
        kind    TEXT NOT NULL,
        message TEXT NOT NULL,
        before  TEXT,
        after   TEXT
    );
    CREATE INDEX events_unsequenced ON events(id) WHERE seq IS NULL;
    CREATE INDEX events_task ON events(task_id, seq);
    CREATE INDEX events_kind ON events(kind, seq);
    CREATE INDEX events_at ON events(at);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE samples (
        task_id     TEXT PRIMARY KEY,
        at          BIGINT NOT NULL,
        cpu_percent DOUBLE PRECISION NOT NULL,
        rss_kb      BIGINT NOT NULL,
        processes   BIGINT NOT NULL
    );
    CREATE TABLE task_deps (
        task_id    TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        PRIMARY KEY (task_id, depends_on)
    );
    CREATE INDEX task_deps_dependents ON task_deps(depends_on, task_id);
    CREATE TABLE task_labels (
        task_id TEXT NOT NULL,
        label   TEXT NOT NULL,
        PRIMARY KEY (task_id, label)
    );
    CREATE INDEX task_labels_label ON task_labels(label, task_id);
    CREATE TABLE task_files (
        n        BIGSERIAL PRIMARY KEY,
        task_id  TEXT NOT NULL,
        path     TEXT NOT NULL,
        added_at BIGINT NOT NULL,
        UNIQUE (task_id, path)
    );
    CREATE TABLE memory (
        id         BIGSERIAL PRIMARY KEY,
        kind       TEXT NOT NULL,
        text       TEXT NOT NULL,
        task_id    TEXT,
        key        TEXT UNIQUE,
        session    TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX memory_kind ON memory(kind, updated_at DESC, id DESC);
    CREATE INDEX memory_task ON memory(task_id, updated_at DESC, id DESC);
    CREATE INDEX memory_updated ON memory(updated_at DESC, id DESC);
    CREATE TABLE sessions (
        id           TEXT PRIMARY KEY,
        tool         TEXT,
        started_at   BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        ended_at     BIGINT
    );
    CREATE INDEX sessions_seen ON sessions(last_seen_at);
    CREATE TABLE event_archive (
        chunk     BIGSERIAL PRIMARY KEY,
        first_seq BIGINT NOT NULL,
        last_seq  BIGINT NOT NULL,
        first_at  BIGINT NOT NULL,
        last_at   BIGINT NOT NULL,
        count     BIGINT NOT NULL,
        data      BYTEA NOT NULL
    );
    CREATE INDEX event_archive_seq ON event_archive(last_seq);
    CREATE TABLE queue_items (
        task_id          TEXT PRIMARY KEY,
        queue            TEXT NOT NULL,
        document         TEXT NOT NULL,
        executor         TEXT NOT NULL,
        max_attempts     BIGINT NOT NULL,
        timeout_ms       BIGINT,
        finished         BOOLEAN NOT NULL DEFAULT FALSE,
        result           TEXT,
        created_at       BIGINT NOT NULL,
        finished_at      BIGINT,
        n                BIGSERIAL UNIQUE,
        claimable        BOOLEAN NOT NULL DEFAULT FALSE,
        lease_owner      TEXT,
        lease_epoch      BIGINT NOT NULL DEFAULT 0,
        lease_expires_at BIGINT,
        available_at     BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX queue_items_open ON queue_items(queue, finished, created_at);
    -- What a claim scans: waiting, unleased, claimable items in FIFO order.
    CREATE INDEX queue_items_claimable ON queue_items(queue, n)
        WHERE claimable AND NOT finished AND lease_owner IS NULL;
    CREATE INDEX queue_items_claimable_any ON queue_items(n)
        WHERE claimable AND NOT finished AND lease_owner IS NULL;
    CREATE INDEX queue_items_leases ON queue_items(lease_expires_at)
        WHERE lease_owner IS NOT NULL;
    CREATE TABLE workers (
        id           TEXT PRIMARY KEY,
        host         TEXT NOT NULL,
        pid          BIGINT NOT NULL,
        queues       TEXT NOT NULL,
        concurrency  BIGINT NOT NULL,
        started_at   BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL,
        stopped_at   BIGINT
    );

    -- The search index: one document per task, memory and sequenced event,
    -- keyed like SQLite's (`search_text.rs`); titles weigh more than bodies.
    -- Words split at every non-alphanumeric, as SQLite's unicode61 does
    -- (PostgreSQL's parser would keep `src/parser.rs` as one token).
    CREATE TABLE search_docs (
        doc   BIGINT PRIMARY KEY,
        title TEXT NOT NULL,
        body  TEXT NOT NULL,
        tsv   tsvector GENERATED ALWAYS AS (
                  setweight(to_tsvector('simple', regexp_replace(title, '[^[:alnum:]]+', ' ', 'g')), 'A')
                  || setweight(to_tsvector('simple', regexp_replace(body, '[^[:alnum:]]+', ' ', 'g')), 'D'))
              STORED
    );
    CREATE INDEX search_docs_tsv ON search_docs USING GIN (tsv);

    CREATE FUNCTION td_task_doc_body(t tasks) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
        SELECT concat_ws(' ', t.description, t.note,
                         CASE t.kind WHEN 'manual' THEN NULL ELSE t.argv END)
    $$;
    CREATE FUNCTION td_tasks_search() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM search_docs WHERE doc = OLD.search_key * 4 + 1;
            RETURN OLD;
        END IF;
        INSERT INTO search_docs (doc, title, body)
            VALUES (NEW.search_key * 4 + 1, coalesce(NEW.name, ''), td_task_doc_body(NEW))
            ON CONFLICT (doc) DO UPDATE SET title = excluded.title, body = excluded.body;
        RETURN NEW;
    END $$;
    CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks
        FOR EACH ROW EXECUTE FUNCTION td_tasks_search();
    CREATE TRIGGER tasks_search_update AFTER UPDATE OF name, description, note ON tasks
        FOR EACH ROW EXECUTE FUNCTION td_tasks_search();
    CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks
        FOR EACH ROW EXECUTE FUNCTION td_tasks_search();

    CREATE FUNCTION td_memory_search() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM search_docs WHERE doc = OLD.id * 4 + 2;
            RETURN OLD;
        END IF;
        INSERT INTO search_docs (doc, title, body)
            VALUES (NEW.id * 4 + 2, concat_ws(' ', NEW.kind, NEW.key), NEW.text)
            ON CONFLICT (doc) DO UPDATE SET title = excluded.title, body = excluded.body;
        RETURN NEW;
    END $$;
    CREATE TRIGGER memory_search_insert AFTER INSERT ON memory
        FOR EACH ROW EXECUTE FUNCTION td_memory_search();
    CREATE TRIGGER memory_search_update AFTER UPDATE OF kind, key, text ON memory
        FOR EACH ROW EXECUTE FUNCTION td_memory_search();
    CREATE TRIGGER memory_search_delete AFTER DELETE ON memory
        FOR EACH ROW EXECUTE FUNCTION td_memory_search();

    -- Events enter the index once they have their sequence number; archiving
    -- (deleting the live row) keeps their terms.
    CREATE FUNCTION td_events_search() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_docs (doc, title, body)
            VALUES (NEW.seq * 4 + 3, coalesce(NEW.task_id, ''), NEW.message)
            ON CONFLICT (doc) DO NOTHING;
        RETURN NEW;
    END $$;
    CREATE TRIGGER events_search_insert AFTER INSERT ON events
        FOR EACH ROW WHEN (NEW.seq IS NOT NULL) EXECUTE FUNCTION td_events_search();
    CREATE TRIGGER events_search_sequenced AFTER UPDATE OF seq ON events
        FOR EACH ROW WHEN (OLD.seq IS NULL AND NEW.seq IS NOT NULL)
        EXECUTE FUNCTION td_events_search();

    -- The database server's clock in milliseconds: leases are timed by it,
    -- so workers on hosts with skewed clocks agree on when a lease ends.
    -- The start of the current transaction: stable within a statement, so
    -- lease conditions can use the indexes below.
    CREATE FUNCTION td_now_ms() RETURNS BIGINT LANGUAGE sql STABLE AS $$
        SELECT (extract(epoch FROM now()) * 1000)::BIGINT
    $$;

    -- Gives committed events their sequence numbers, in the order they are
    -- found (by insertion within a transaction). Numbers are handed out
    -- after commit, under the event_seq row lock, so they have no gaps and
    -- a reader that has seen seq N can never later find a new event below N.
    CREATE FUNCTION td_sequence_events() RETURNS BIGINT LANGUAGE plpgsql AS $$
    DECLARE
        last_seq BIGINT;
        added    BIGINT;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM events WHERE seq IS NULL) THEN
            RETURN (SELECT value FROM event_seq);
        END IF;
        SELECT value INTO last_seq FROM event_seq FOR UPDATE;
        WITH pending AS (
            SELECT id, last_seq + row_number() OVER (ORDER BY id) AS n
            FROM events WHERE seq IS NULL
        )
        UPDATE events e SET seq = p.n FROM pending p WHERE e.id = p.id;
        GET DIAGNOSTICS added = ROW_COUNT;
        UPDATE event_seq SET value = last_seq + added;
        RETURN last_seq + added;
    END $$;
    "#,
    // 2: loops: the engine's spec (JSON, never an API key) and the counters
    // of each `loop` task, one row beside its `tasks` row.
    r#"
    CREATE TABLE loops (
        task_id       TEXT PRIMARY KEY,
        spec          TEXT NOT NULL,
        iterations    BIGINT NOT NULL DEFAULT 0,
        tool_calls    BIGINT NOT NULL DEFAULT 0,
        input_tokens  BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd      DOUBLE PRECISION NOT NULL DEFAULT 0,
        last_exit     BIGINT
    );
    "#,
    // 3: every committed event is announced on `td_events_<schema>`, so
    // change feeds on every host wake without polling (delivered at commit;
    // PostgreSQL folds equal notifications of one transaction into one).
    r#"
    CREATE FUNCTION td_notify_events() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('td_events_' || TG_TABLE_SCHEMA, '');
        RETURN NULL;
    END $$;
    CREATE TRIGGER events_notify AFTER INSERT ON events
        FOR EACH STATEMENT EXECUTE FUNCTION td_notify_events();
    "#,
    // 4: per-task resource limits (JSON; NULL when none are set).
    r#"
    ALTER TABLE tasks ADD COLUMN limits TEXT;
    "#,
    // 5: loop-type configuration versions the daemon loaded (`config
    // history`), and prompt-cache token counters of loops (analytics).
    r#"
    CREATE TABLE config_versions (
        version    BIGSERIAL PRIMARY KEY,
        digest     TEXT NOT NULL,
        file       TEXT,
        loaded_at  BIGINT NOT NULL,
        type_names TEXT NOT NULL,
        types      TEXT NOT NULL
    );
    ALTER TABLE loops ADD COLUMN cache_read_tokens BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE loops ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;
    "#,
    // 6: the Plan -> Spec -> Phase pipeline and coordinator messages (the
    // same tables as SQLite's migration 8).
    r#"
    CREATE TABLE plans (
        id            TEXT PRIMARY KEY,
        number        BIGINT NOT NULL,
        goal          TEXT NOT NULL,
        title         TEXT,
        summary       TEXT,
        body          TEXT,
        status        TEXT NOT NULL,
        target_branch TEXT NOT NULL,
        base_commit   TEXT NOT NULL,
        auto_approve  BOOLEAN NOT NULL,
        note          TEXT,
        loop_task     TEXT,
        input_tokens  BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd      DOUBLE PRECISION NOT NULL DEFAULT 0,
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL
    );
    CREATE INDEX plans_status ON plans(status, number);
    CREATE TABLE specs (
        plan          TEXT NOT NULL REFERENCES plans(id),
        name          TEXT NOT NULL,
        seq           BIGINT NOT NULL,
        title         TEXT NOT NULL,
        body          TEXT NOT NULL,
        status        TEXT NOT NULL,
        priority      BIGINT NOT NULL,
        depends_on    TEXT NOT NULL,
        branch        TEXT NOT NULL,
        worktree      TEXT NOT NULL,
        note          TEXT,
        loop_task     TEXT,
        input_tokens  BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd      DOUBLE PRECISION NOT NULL DEFAULT 0,
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL,
        PRIMARY KEY (plan, name)
    );
    CREATE INDEX specs_ready ON specs(status, priority DESC);
    CREATE TABLE phases (
        plan          TEXT NOT NULL,
        spec          TEXT NOT NULL,
        number        BIGINT NOT NULL,
        name          TEXT NOT NULL,
        title         TEXT NOT NULL,
        body          TEXT NOT NULL,
        validation    TEXT NOT NULL,
        status        TEXT NOT NULL,
        note          TEXT,
        loop_task     TEXT,
        input_tokens  BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd      DOUBLE PRECISION NOT NULL DEFAULT 0,
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL,
        PRIMARY KEY (plan, spec, number),
        UNIQUE (plan, spec, name),
        FOREIGN KEY (plan, spec) REFERENCES specs(plan, name)
    );
    CREATE TABLE messages (
        id         BIGSERIAL PRIMARY KEY,
        plan       TEXT NOT NULL REFERENCES plans(id),
        sender     TEXT NOT NULL,
        recipient  TEXT NOT NULL,
        kind       TEXT NOT NULL,
        body       TEXT NOT NULL,
        delivery   TEXT NOT NULL,
        answer     TEXT,
        reason     TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX messages_recipient ON messages(plan, recipient, delivery);
    CREATE INDEX messages_delivery ON messages(delivery, kind);
    CREATE TABLE pipeline_loops (
        seq       BIGSERIAL PRIMARY KEY,
        plan      TEXT NOT NULL REFERENCES plans(id),
        node      TEXT NOT NULL,
        loop_task TEXT NOT NULL,
        UNIQUE (node, loop_task)
    );
    CREATE INDEX pipeline_loops_plan ON pipeline_loops(plan, seq);
    "#,
    // 7: each recorded iteration of a pipeline loop is charged to the plan,
    // spec or phase the loop works for, found by its loop task.
    r#"
    CREATE INDEX pipeline_loops_loop ON pipeline_loops(loop_task, seq);
    "#,
    // 8: a broadcast's delivery per recipient loop (SQLite's migration 10).
    r#"
    CREATE TABLE message_deliveries (
        message   BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        recipient TEXT NOT NULL,
        delivery  TEXT NOT NULL,
        reason    TEXT,
        at        BIGINT NOT NULL,
        PRIMARY KEY (message, recipient)
    );
    "#,
    // 9: typed links and claims on tracked tasks (SQLite's migration 11).
    r#"
    ALTER TABLE task_deps ADD COLUMN kind TEXT NOT NULL DEFAULT 'blocks';
    CREATE TABLE task_links (
        task_id TEXT NOT NULL,
        kind    TEXT NOT NULL,
        target  TEXT NOT NULL,
        PRIMARY KEY (task_id, kind, target)
    );
    CREATE INDEX task_links_target ON task_links(target, kind, task_id);
    ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
    ALTER TABLE tasks ADD COLUMN lease_until BIGINT;
    CREATE INDEX tasks_claims ON tasks(claimed_by) WHERE claimed_by IS NOT NULL;
    "#,
    // 10: decay. A compacted tracked task keeps its original description
    // and note here (the task row holds the summary); the task's search
    // document holds both, so search finds the summary and the original.
    r#"
    CREATE TABLE task_originals (
        task_id      TEXT PRIMARY KEY,
        description  TEXT,
        note         TEXT,
        compacted_at BIGINT NOT NULL
    );
    CREATE OR REPLACE FUNCTION td_task_doc_body(t tasks) RETURNS TEXT LANGUAGE sql STABLE AS $$
        SELECT concat_ws(' ', t.description, t.note,
                         CASE t.kind WHEN 'manual' THEN NULL ELSE t.argv END,
                         (SELECT concat_ws(' ', o.description, o.note) FROM task_originals o
                           WHERE o.task_id = t.id))
    $$;
    "#,
    // 11: container execution mode (the same columns as SQLite's migration 13).
    r#"
    ALTER TABLE tasks ADD COLUMN container TEXT;
    ALTER TABLE tasks ADD COLUMN container_id TEXT;
    "#,
    // 12: gates. A tracked task waits until each of its gates opens (a
    // task succeeds, a command exits 0, a time passes, a person approves);
    // `failed` says why a gate can never open.
    r#"
    CREATE TABLE task_gates (
        task_id    TEXT NOT NULL,
        seq        BIGINT NOT NULL,
        kind       TEXT NOT NULL,
        target     TEXT,
        until_at   BIGINT,
        opened_at  BIGINT,
        failed     TEXT,
        attempts   BIGINT NOT NULL DEFAULT 0,
        next_check BIGINT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (task_id, seq)
    );
    CREATE INDEX task_gates_shut ON task_gates(kind, target) WHERE opened_at IS NULL;
    "#,
    // 13: a transaction marked `taskdaemon.events_announced = after-commit`
    // (claims and completions) has its events announced by the store once
    // it committed, not by this trigger: a transaction that notifies holds
    // the notify-queue lock until its commit is on disk, so notifying ones
    // commit one flush at a time (see `postgres/announce.rs`). Unmarked
    // transactions (every other write, older versions) notify as before.
    r#"
    CREATE OR REPLACE FUNCTION td_notify_events() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        IF current_setting('taskdaemon.events_announced', true) IS DISTINCT FROM 'after-commit' THEN
            PERFORM pg_notify('td_events_' || TG_TABLE_SCHEMA, '');
        END IF;
        RETURN NULL;
    END $$;
    "#,
    // 14: the claimable items a claim takes, walked in FIFO order down a
    // partial index. Planned by statistics, the pick was a bitmap scan of
    // every waiting item then a sort (the statistics of a queue that was
    // empty at the last ANALYZE promise a few rows; without autovacuum
    // there are none), and with a queue list an index scan of the whole
    // queue then a sort: each claim cost the whole backlog (27 ms for 32
    // items of 40,000) and a bitmap scan never marks the dead index entries
    // that leases leave behind. Without bitmap scans and sorts the only
    // plans left walk `queue_items_claimable_any` (any queue, or several)
    // or `queue_items_claimable` (one queue) in `n` order and stop at
    // `want` items. `queues` empty: any queue. Locks the items it returns
    // (skipping locked ones); ROWS tells the caller's plan a batch is small.
    r#"
    CREATE FUNCTION td_claimable(queues TEXT[], want INTEGER) RETURNS SETOF TEXT
    LANGUAGE plpgsql ROWS 32 SET enable_bitmapscan = off SET enable_sort = off AS $$
    DECLARE
        now_ms BIGINT := td_now_ms();
    BEGIN
        IF cardinality(queues) = 0 THEN
            RETURN QUERY SELECT q.task_id FROM queue_items q
                WHERE q.claimable AND NOT q.finished AND q.lease_owner IS NULL
                  AND q.available_at <= now_ms
                ORDER BY q.n LIMIT want FOR UPDATE SKIP LOCKED;
        ELSIF cardinality(queues) = 1 THEN
            RETURN QUERY SELECT q.task_id FROM queue_items q
                WHERE q.claimable AND NOT q.finished AND q.lease_owner IS NULL
                  AND q.available_at <= now_ms AND q.queue = queues[1]
                ORDER BY q.n LIMIT want FOR UPDATE SKIP LOCKED;
        ELSE
            RETURN QUERY SELECT q.task_id FROM queue_items q
                WHERE q.claimable AND NOT q.finished AND q.lease_owner IS NULL
                  AND q.available_at <= now_ms AND q.queue = ANY(queues)
                ORDER BY q.n LIMIT want FOR UPDATE SKIP LOCKED;
        END IF;
    END $$;
    "#,
    // 15: `tasks_kind_status` is a prefix of `tasks_ready` (kind, status,
    // priority, search_key), which serves every query it served; status is
    // indexed, so each status change (two per claim) wrote both.
    r#"
    DROP INDEX tasks_kind_status;
    "#,
    // 16: sequenced events enter the search index once per sequencing
    // statement, from its transition tables, instead of one plpgsql call
    // per event (a claim and its end sequence two). A trigger with
    // transition tables cannot name columns: this one fires on every
    // UPDATE of `events`, and sequencing is the only one.
    r#"
    DROP TRIGGER events_search_sequenced ON events;
    CREATE FUNCTION td_events_search_sequenced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_docs (doc, title, body)
            SELECT n.seq * 4 + 3, coalesce(n.task_id, ''), n.message
            FROM sequenced n JOIN unsequenced o ON o.id = n.id
            WHERE o.seq IS NULL AND n.seq IS NOT NULL
            ON CONFLICT (doc) DO NOTHING;
        RETURN NULL;
    END $$;
    CREATE TRIGGER events_search_sequenced AFTER UPDATE ON events
        REFERENCING OLD TABLE AS unsequenced NEW TABLE AS sequenced
        FOR EACH STATEMENT EXECUTE FUNCTION td_events_search_sequenced();
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}
