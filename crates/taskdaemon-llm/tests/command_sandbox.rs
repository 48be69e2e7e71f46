//! The model's `run_command` under Landlock, through the real toolbox and
//! real processes: what it may touch, what it may not, and the refusal where
//! the kernel cannot enforce the sandbox.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use taskdaemon_llm::{SandboxPolicy, ToolOutput, Toolbox, ToolboxConfig, landlock_support};
use tokio_util::sync::CancellationToken;

/// A worktree and a sibling directory outside it, both real.
struct Dirs {
    _root: tempfile::TempDir,
    work: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let outside = root.path().join("outside");
    fs::create_dir(&work).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret.txt"), "TOP-SECRET-OUTSIDE\n").unwrap();
    Dirs {
        _root: root,
        work,
        outside,
    }
}

fn toolbox(work: &Path, sandbox: SandboxPolicy) -> Toolbox {
    let config = ToolboxConfig {
        shell_allowed: true,
        sandbox,
        ..ToolboxConfig::default()
    };
    Toolbox::new(work, config).unwrap()
}

async fn run(tb: &Toolbox, input: Value) -> ToolOutput {
    tb.execute("run_command", &input, None, &CancellationToken::new())
        .await
}

/// Where the kernel lacks Landlock the command must be refused, never run.
fn refused_without_landlock(out: &ToolOutput) -> bool {
    if landlock_support().available {
        return false;
    }
    assert!(out.is_error, "{out:?}");
    assert!(out.content.contains("sandbox: none"), "{out:?}");
    true
}

#[tokio::test]
async fn reading_outside_the_worktree_is_denied() {
    let d = dirs();
    let tb = toolbox(&d.work, SandboxPolicy::Landlock);
    let secret = d.outside.join("secret.txt");
    let out = run(&tb, json!({"argv": ["cat", secret.to_str().unwrap()]})).await;
    if refused_without_landlock(&out) {
        return;
    }
    assert!(out.is_error, "{out:?}");
    assert!(out.content.contains("Permission denied"), "{out:?}");
    assert!(!out.content.contains("TOP-SECRET"), "{out:?}");
    // /etc/passwd is outside the system paths the sandbox grants.
    let out = run(&tb, json!({"argv": ["cat", "/etc/passwd"]})).await;
    assert!(
        out.is_error && out.content.contains("Permission denied"),
        "{out:?}"
    );
}

#[tokio::test]
async fn writing_outside_the_worktree_is_denied_and_leaves_nothing() {
    let d = dirs();
    let tb = toolbox(&d.work, SandboxPolicy::Landlock);
    let target = d.outside.join("planted");
    let line = format!("echo x > {}", target.display());
    let out = run(&tb, json!({"argv": ["sh", "-c", line]})).await;
    if refused_without_landlock(&out) {
        return;
    }
    assert!(out.is_error, "{out:?}");
    assert!(!target.exists(), "a sandboxed command wrote outside");
    // Nor by renaming or linking a worktree file out.
    fs::write(d.work.join("mine"), "m").unwrap();
    let line = format!(
        "mv mine {0}/moved; ln mine {0}/linked; ln -s /x {0}/sym",
        d.outside.display()
    );
    let out = run(&tb, json!({"command": line})).await;
    assert!(out.is_error, "{out:?}");
    let left: Vec<_> = fs::read_dir(&d.outside).unwrap().collect();
    assert_eq!(left.len(), 1, "only secret.txt may be there: {left:?}");
}

#[tokio::test]
async fn the_worktree_and_a_private_tmpdir_are_writable() {
    let d = dirs();
    let tb = toolbox(&d.work, SandboxPolicy::Landlock);
    let line = "echo inside > f && echo scratch > \"$TMPDIR/t\" && cat f \"$TMPDIR/t\" && echo \"$TMPDIR\"";
    let out = run(&tb, json!({"command": line})).await;
    if refused_without_landlock(&out) {
        return;
    }
    assert!(!out.is_error, "{out:?}");
    assert!(out.content.contains("inside\nscratch\n"), "{out:?}");
    assert_eq!(fs::read_to_string(d.work.join("f")).unwrap(), "inside\n");
    // The private temp dir is not the shared one, and it is gone afterwards.
    let tmpdir = out.content.lines().last().unwrap().trim().to_string();
    assert!(tmpdir.contains("taskdaemon-cmd-"), "{tmpdir}");
    assert!(
        !Path::new(&tmpdir).exists(),
        "{tmpdir} outlived the command"
    );
}

#[tokio::test]
async fn a_toolchain_in_path_still_works() {
    let d = dirs();
    let tb = toolbox(&d.work, SandboxPolicy::Landlock);
    let line = "git init -q . && echo a > a && git add a && git -c user.name=t -c user.email=t@t commit -qm a && git log --oneline | wc -l && cargo --version";
    let out = run(&tb, json!({"command": line})).await;
    if refused_without_landlock(&out) {
        return;
    }
    assert!(!out.is_error, "{out:?}");
    assert!(out.content.contains("\n1\n"), "{out:?}");
    assert!(out.content.contains("cargo "), "{out:?}");
}

#[tokio::test]
async fn a_sandboxed_command_cannot_signal_the_daemon() {
    let d = dirs();
    let tb = toolbox(&d.work, SandboxPolicy::Landlock);
    let pid = std::process::id().to_string();
    let out = run(&tb, json!({"argv": ["kill", "-0", pid]})).await;
    if refused_without_landlock(&out) {
        return;
    }
    assert!(out.is_error, "kill -0 reached the parent: {out:?}");
}

#[tokio::test]
async fn a_store_inside_the_worktree_is_refused() {
    let d = dirs();
    fs::create_dir(d.work.join(".taskdaemon")).unwrap();
    let tb = toolbox(&d.work, SandboxPolicy::Landlock);
    let out = run(&tb, json!({"argv": ["true"]})).await;
    assert!(out.is_error, "{out:?}");
    if landlock_support().available {
        assert!(out.content.contains(".taskdaemon"), "{out:?}");
    }
}

#[tokio::test]
async fn opting_out_runs_unconfined() {
    let d = dirs();
    let tb = toolbox(&d.work, SandboxPolicy::None);
    let secret = d.outside.join("secret.txt");
    let out = run(&tb, json!({"argv": ["cat", secret.to_str().unwrap()]})).await;
    assert!(!out.is_error, "{out:?}");
    assert!(out.content.contains("TOP-SECRET-OUTSIDE"), "{out:?}");
}

#[test]
fn this_kernel_reports_its_landlock_abi() {
    let support = landlock_support();
    match support.abi {
        Some(abi) => assert!(support.detail.contains(&abi.to_string()), "{support:?}"),
        None => assert!(!support.available, "{support:?}"),
    }
}
