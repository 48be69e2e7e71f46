//! The dashboard in a real browser: headless Chromium driven by Playwright
//! (`tests/browser/dashboard.js`) against the real daemon serving the web.
//!
//! Needs node, `playwright-core` (`scripts/install-playwright.sh`; its
//! `node_modules` in `TASKDAEMON_TEST_PLAYWRIGHT`, else `target/playwright`)
//! and Chromium (`TASKDAEMON_TEST_CHROMIUM`, else `/usr/bin/chromium`).
//! Without them the test fails under CI (`CI` set) and skips, loudly,
//! elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Ws, bin, run_command};
use serde_json::Value;

/// What the browser test needs, or why it cannot run.
fn prerequisites() -> Result<(PathBuf, PathBuf), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let modules = std::env::var_os("TASKDAEMON_TEST_PLAYWRIGHT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/playwright/node_modules"));
    if !modules.join("playwright-core").is_dir() {
        return Err(format!(
            "playwright-core is not installed in {} (run scripts/install-playwright.sh)",
            modules.display()
        ));
    }
    let chromium = std::env::var_os("TASKDAEMON_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        return Err(format!(
            "no chromium at {} (apt-get install chromium)",
            chromium.display()
        ));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed".to_owned());
    }
    Ok((modules, chromium))
}

#[test]
fn dashboard_in_headless_chromium() {
    let (modules, chromium) = match prerequisites() {
        Ok(found) => found,
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("the browser test must run in CI: {reason}")
        }
        Err(reason) => {
            eprintln!("\n*** SKIPPING the dashboard browser test: {reason} ***\n");
            return;
        }
    };
    let ws = Ws::new();
    ws.run(&["start", "--web", "127.0.0.1:0"]).ok();
    let base = std::fs::read_to_string(ws.state_dir().join("web.url")).unwrap();
    let token = ws.run(&["web", "token"]).ok().last_line();
    let shots = ws.root().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let mut node = Command::new("node");
    node.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.js"))
        .current_dir(ws.root())
        .env("NODE_PATH", &modules)
        .env("TD_BASE", base.trim())
        .env("TD_TOKEN", &token)
        .env("TD_BIN", bin())
        .env("TD_WORKSPACE", ws.root())
        .env("TD_CHROMIUM", &chromium)
        .env("TD_SHOTS", &shots)
        .env(common::TAG_VAR, ws.tag());
    let run = run_command(node, Duration::from_secs(300));
    assert!(
        run.success(),
        "the browser scenario failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    let result: Value = serde_json::from_str(&run.last_line()).unwrap();

    eprintln!(
        "dashboard first load (login to live stream, debug build): {} ms",
        result["first_load_ms"]
    );
    // What the page did, checked from the CLI.
    let killed = result["killed"].as_str().unwrap();
    assert_eq!(ws.task_status(killed), "cancelled");
    assert_eq!(
        ws.task_status(result["failing"].as_str().unwrap()),
        "failed"
    );
    assert_eq!(result["share_kill_status"], 403);
    assert_eq!(
        ws.task_status(result["still_running"].as_str().unwrap()),
        "running"
    );
    let shot = std::fs::read(result["screenshot"].as_str().unwrap()).unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
    assert!(
        result["plan"].as_str().unwrap().starts_with("PLAN-"),
        "the Plans view showed a plan: {result}"
    );
    let plans_shot = std::fs::read(result["plans_screenshot"].as_str().unwrap()).unwrap();
    assert!(plans_shot.starts_with(b"\x89PNG"), "a PNG of the plan page");
    if let Some(dir) = std::env::var_os("TASKDAEMON_TEST_SCREENSHOTS") {
        let _ = std::fs::copy(
            result["screenshot"].as_str().unwrap(),
            Path::new(&dir).join("dashboard-390.png"),
        );
    }
}
