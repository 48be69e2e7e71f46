//! The real Claude Code CLI for tests, and the fake LLM server it talks to.
//!
//! `claude` is the one npm installs (`scripts/install-claude-code.sh`;
//! `TASKDAEMON_TEST_CLAUDE` names one already installed, as `.ci/run`
//! does). Without one the helper installs it, and the caller skips, loudly,
//! only when the npm registry cannot be reached.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;

use taskdaemon_fake_llm::{FakeLlm, Reply};

use super::Ws;

/// Exit code of the install script when the npm registry is unreachable.
const REGISTRY_UNREACHABLE: i32 = 3;

/// The `claude` to run, or none (after a loud notice) when it cannot be had.
pub fn claude() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TASKDAEMON_TEST_CLAUDE") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TASKDAEMON_TEST_CLAUDE={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-claude-code.sh");
    // The script caches under the target dir; CARGO_TARGET_TMPDIR is `<target>/tmp`.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..");
    let out = Command::new("bash")
        .arg(&script)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run scripts/install-claude-code.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        Some(REGISTRY_UNREACHABLE) => {
            eprintln!(
                "\n{bar}\nSKIPPED: the real Claude Code CLI is not installed and the npm registry \
                 is unreachable ({}).\nThis test did NOT run against the real client. Set \
                 TASKDAEMON_TEST_CLAUDE or run scripts/install-claude-code.sh.\n{bar}\n",
                stderr.trim(),
                bar = "!".repeat(78)
            );
            None
        }
        _ => panic!("installing Claude Code failed: {stderr}"),
    }
}

/// Starts the fake server with `script` on a thread of its own; it serves
/// until the test process ends.
pub fn fake_llm(script: Vec<Reply>) -> FakeLlm {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            tx.send(FakeLlm::start(script).await.expect("start fake LLM"))
                .expect("hand over the server");
            std::future::pending::<()>().await
        });
    });
    rx.recv().expect("fake LLM started")
}

/// `claude ARGS` in the workspace, talking only to `fake`, with a scratch
/// HOME (so the user's settings and history stay out) and the workspace's
/// test tag, so everything it starts is cleaned up with the workspace.
pub fn claude_command(ws: &Ws, claude: &Path, fake: &FakeLlm, args: &[&str]) -> Command {
    let home = ws.root().join("home");
    std::fs::create_dir_all(&home).expect("create HOME");
    let mut command = ws.program_command(claude);
    command
        .args(args)
        .env("HOME", &home)
        .env("ANTHROPIC_BASE_URL", fake.base_url())
        .env("ANTHROPIC_API_KEY", "sk-ant-test-key")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env_remove("CLAUDE_CODE_SESSION_ID");
    command
}
