//! Secrets never reach logs, events or exports. One run handles every kind
//! of secret the program meets (a process's environment, an LLM API key,
//! the web login token and a share link, a wrong token someone tried, the
//! daemon's socket token); then everything it wrote is searched: every file
//! in the workspace (gzip files unpacked), the default export, and every
//! row of the store except the two places that must hold secrets (a
//! process's environment, which a restart needs, and the share links).

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fake::Fake;
use common::{COMMAND_TIMEOUT, Ws, run_command};
use taskdaemon_fake_llm::{Reply, Turn};

const ENV_SECRET: &str = "ENV-SECRET-7f3a91";
const API_KEY: &str = "sk-ant-API-SECRET-2b8c44";
const WRONG_TOKEN: &str = "WRONG-TOKEN-SECRET-d1e5";

#[test]
fn secrets_never_reach_logs_events_or_exports() {
    let ws = Ws::new();
    ws.run(&["start", "--web", "127.0.0.1:0"]).ok();

    // A process whose environment holds a password.
    let mut spawn = ws.command(&["spawn", "--", "sh", "-c", "echo started"]);
    spawn.env("TD_TEST_PASSWORD", ENV_SECRET);
    let id = run_command(spawn, COMMAND_TIMEOUT).ok().last_line();
    ws.wait_status(&id, "succeeded");

    // A loop with an API key; its server fails once before answering.
    let fake = Fake::start(vec![
        Reply::ServerError { status: Some(500) },
        Turn::text("done").into(),
    ]);
    let spec = ws.root().join("spec.md");
    fs::write(&spec, "Say done.\n").unwrap();
    let work = ws.root().join("work");
    fs::create_dir(&work).unwrap();
    let mut run = ws.command(&[
        "loop",
        "run",
        "--spec",
        spec.to_str().unwrap(),
        "--validate",
        "true",
        "--workdir",
        work.to_str().unwrap(),
    ]);
    run.env("ANTHROPIC_API_KEY", API_KEY)
        .env("ANTHROPIC_BASE_URL", fake.url())
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    run_command(run, COMMAND_TIMEOUT).ok();
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.headers.iter().any(|(_, v)| v == API_KEY)),
        "the key was sent to the server, so it passed through the daemon"
    );

    // The web: the login token, a share link, and a wrong token tried.
    let token = ws.run(&["web", "token"]).ok().last_line();
    let share_url = ws.run(&["share", "--expires", "1h"]).ok().last_line();
    let share_secret = share_url
        .rsplit_once("token=")
        .map(|(_, s)| s.to_owned())
        .expect("a share URL carries its secret");
    let base = fs::read_to_string(ws.state_dir().join("web.url")).unwrap();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for (secret, status) in [
        (token.as_str(), 200),
        (share_secret.as_str(), 200),
        (WRONG_TOKEN, 401),
    ] {
        let answer = http
            .get(format!("{}/api/v1/tasks", base.trim()))
            .bearer_auth(secret)
            .send()
            .unwrap();
        assert_eq!(answer.status().as_u16(), status);
    }
    let socket_token = fs::read_to_string(ws.state_dir().join("daemon-token")).unwrap();

    let export = ws.root().join("export.jsonl");
    let full = ws.root().join("full-export.jsonl");
    ws.run(&["export", "-o", export.to_str().unwrap()]).ok();
    ws.run(&["export", "--with-secrets", "-o", full.to_str().unwrap()])
        .ok();
    ws.run(&["stop"]).ok();

    // The control: asked for, the secrets are there, so the search below
    // would find them if they leaked.
    let full_text = fs::read_to_string(&full).unwrap();
    assert!(full_text.contains(ENV_SECRET) && full_text.contains(&share_secret));

    let secrets = [
        ENV_SECRET,
        API_KEY,
        WRONG_TOKEN,
        token.trim(),
        share_secret.as_str(),
        socket_token.trim(),
    ];
    let kept_on_purpose = [
        "state.db",
        "state.db-wal",
        "state.db-shm",
        "web-token",
        "daemon-token",
    ];
    let mut searched = 0;
    for file in files_under(ws.root()) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if kept_on_purpose.contains(&name.as_str()) || file == full {
            continue;
        }
        let text = contents(&file);
        for secret in secrets {
            assert!(!text.contains(secret), "{} holds a secret", file.display());
        }
        searched += 1;
    }
    assert!(searched >= 5, "only {searched} files were searched");
    assert!(
        contents(&export).contains(&id),
        "the export holds the process"
    );
    search_store(&ws.db_path(), &secrets);
}

/// Every regular file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files
}

/// A file's bytes as text, unpacked when it is gzip.
fn contents(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        return text;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every value of every row of the store, but a process's environment and
/// the share links, holds none of `secrets`.
fn search_store(db: &Path, secrets: &[&str]) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows_seen = 0;
    for table in tables {
        let mut select = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = select.column_names().map(str::to_string).collect();
        let mut rows = select.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            rows_seen += 1;
            let values: Vec<String> = (0..columns.len())
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                    _ => String::new(),
                })
                .collect();
            for (column, value) in columns.iter().zip(&values) {
                let must_hold = (table == "tasks" && column == "env")
                    || (table == "meta" && values.first().is_some_and(|k| k == "web.shares"));
                if must_hold {
                    continue;
                }
                for secret in secrets {
                    assert!(!value.contains(secret), "{table}.{column} holds a secret");
                }
            }
        }
    }
    assert!(rows_seen > 10, "only {rows_seen} rows were searched");
}
