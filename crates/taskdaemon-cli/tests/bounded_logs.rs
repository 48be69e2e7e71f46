//! Bounded process logs: the shim rotates each stream at `[logs] max_bytes`
//! keeping `backups` copies, `logs` reads across the copies (and `--follow`
//! across a rotation), and the daemon keeps all logs under
//! `[logs] total_max_bytes` by deleting those of the oldest ended tasks.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Ws, eventually};

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("stdout.log")
        })
        .collect();
    files.sort();
    files
}

fn ws_with_logs(logs: &str) -> Ws {
    let ws = Ws::new();
    let config = fs::read_to_string(ws.state_dir().join("config.toml")).unwrap();
    let start = config.find("[logs]").unwrap();
    let end = start + config[start..].find("\n[registry]").unwrap();
    ws.write_config(&format!("{}{logs}\n{}", &config[..start], &config[end..]));
    ws
}

#[test]
fn a_300_mb_writer_leaves_at_most_the_cap_and_its_last_line_shows() {
    let ws = ws_with_logs("[logs]\nmax_bytes = 1048576\nbackups = 2\ntotal_max_bytes = 0\n");
    let id = ws.spawn_sh("yes 'a line of output' | head -n 17700000; echo THE-LAST-LINE");
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));

    let files = log_files(&ws.state_dir().join("procs").join(&id));
    assert_eq!(files.len(), 3, "the live log and two backups: {files:?}");
    let on_disk: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    assert!(on_disk <= 3 * 1_048_576, "{on_disk} bytes on disk");

    let tail = ws.run(&["logs", &id, "--tail", "2"]).ok();
    assert_eq!(tail.stdout, "a line of output\nTHE-LAST-LINE\n");
    // The whole log reads through the copies, oldest first, and ends right.
    let whole = ws.run(&["logs", &id]).ok();
    assert!(
        whole.stdout.len() as u64 == on_disk,
        "{} vs {on_disk}",
        whole.stdout.len()
    );
    assert!(whole.stdout.ends_with("output\nTHE-LAST-LINE\n"));
}

#[test]
fn logs_follow_survives_rotation() {
    let ws = ws_with_logs("[logs]\nmax_bytes = 4096\nbackups = 1000\ntotal_max_bytes = 0\n");
    let id = ws.spawn_sh(
        "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); \
         [ $((i % 500)) -eq 0 ] && sleep 0.2; done",
    );
    let followed = ws.run(&["logs", &id, "--follow"]).ok();
    let expected: String = (0..3000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(followed.stdout, expected);
    assert!(log_files(&ws.state_dir().join("procs").join(&id)).len() > 5);
}

#[test]
fn the_daemon_prunes_the_logs_of_the_oldest_ended_tasks_past_the_total_cap() {
    let ws = ws_with_logs("[logs]\nmax_bytes = 1048576\nbackups = 1\ntotal_max_bytes = 150000\n");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = ws.spawn_sh("head -c 60000 /dev/zero | tr '\\0' x; echo");
        assert_eq!(ws.run(&["wait", &id]).code, Some(0));
        ids.push(id);
    }
    // 180 KB of logs: a restarted daemon prunes at start.
    ws.run(&["stop"]).ok();
    ws.run(&["start"]).ok();
    let stdout = |id: &str| ws.state_dir().join("procs").join(id).join("stdout.log");
    eventually("the oldest task's log is pruned", || {
        !stdout(&ids[0]).exists()
    });
    assert!(stdout(&ids[1]).exists() && stdout(&ids[2]).exists());
    // Its exit record stays; only the output went.
    assert_eq!(ws.task_status(&ids[0]), "succeeded");
    assert!(
        ws.state_dir()
            .join("procs")
            .join(&ids[0])
            .join("exit.json")
            .exists()
    );
}
