//! The loop tools against an adversarial model: `..` and absolute paths,
//! `/proc/self/root`, hard links, huge files and binary output, through the
//! real toolbox on real files (with the Landlock sandbox where the kernel
//! has it).

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};
use taskdaemon_llm::{ToolOutput, Toolbox, ToolboxConfig, landlock_support};
use tokio_util::sync::CancellationToken;

struct Dirs {
    _root: tempfile::TempDir,
    work: PathBuf,
    secret: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let outside = root.path().join("outside");
    fs::create_dir(&work).unwrap();
    fs::create_dir(&outside).unwrap();
    let secret = outside.join("secret.txt");
    fs::write(&secret, "TOP-SECRET-OUTSIDE\n").unwrap();
    Dirs {
        _root: root,
        work,
        secret,
    }
}

fn toolbox(d: &Dirs, output_limit: usize) -> Toolbox {
    let config = ToolboxConfig {
        shell_allowed: true,
        output_limit,
        ..ToolboxConfig::default()
    };
    Toolbox::new(&d.work, config).unwrap()
}

async fn call(tb: &Toolbox, name: &str, input: Value) -> ToolOutput {
    tb.execute(name, &input, None, &CancellationToken::new())
        .await
}

fn denied(out: &ToolOutput) {
    assert!(out.is_error, "{out:?}");
    assert!(!out.content.contains("TOP-SECRET"), "{out:?}");
}

#[tokio::test]
async fn dot_dot_absolute_and_proc_self_root_paths_are_refused() {
    let d = dirs();
    let tb = toolbox(&d, 16 * 1024);
    let via_proc = format!("/proc/self/root{}", d.secret.display());
    for path in [
        "../outside/secret.txt".to_string(),
        d.secret.display().to_string(),
        via_proc.clone(),
        "./a/../../outside/secret.txt".to_string(),
    ] {
        denied(&call(&tb, "read_file", json!({ "path": path })).await);
        let out = call(&tb, "write_file", json!({ "path": path, "content": "x" })).await;
        assert!(out.is_error, "{path}: {out:?}");
    }
    assert_eq!(
        fs::read_to_string(&d.secret).unwrap(),
        "TOP-SECRET-OUTSIDE\n"
    );
    if landlock_support().available {
        denied(&call(&tb, "run_command", json!({ "argv": ["cat", via_proc] })).await);
    }
}

#[tokio::test]
async fn a_sandboxed_command_cannot_hard_link_across_the_worktree() {
    if !landlock_support().available {
        return;
    }
    let d = dirs();
    let tb = toolbox(&d, 16 * 1024);
    let secret = d.secret.display().to_string();
    // In: a link to the secret would let the file tools read it.
    let out = call(
        &tb,
        "run_command",
        json!({ "argv": ["ln", secret, "inside"] }),
    )
    .await;
    assert!(out.is_error, "{out:?}");
    assert!(!d.work.join("inside").exists());
    // Out: a link to a worktree file planted outside.
    fs::write(d.work.join("mine"), "m").unwrap();
    let planted = d.secret.with_file_name("planted");
    let out = call(
        &tb,
        "run_command",
        json!({ "argv": ["ln", "mine", planted.display().to_string()] }),
    )
    .await;
    assert!(out.is_error, "{out:?}");
    assert!(!planted.exists());
}

#[tokio::test]
async fn huge_files_are_refused_and_huge_output_is_capped() {
    let d = dirs();
    let tb = toolbox(&d, 4096);
    let big = fs::File::create(d.work.join("big.txt")).unwrap();
    big.set_len(3 * 1024 * 1024).unwrap();
    let out = call(&tb, "read_file", json!({ "path": "big.txt" })).await;
    assert!(out.is_error, "{out:?}");
    assert!(out.content.len() < 4096, "{} bytes", out.content.len());
    let out = call(
        &tb,
        "run_command",
        json!({ "command": "head -c 50000000 /dev/zero | tr '\\0' a" }),
    )
    .await;
    assert!(
        !out.is_error,
        "{:?}",
        &out.content[..200.min(out.content.len())]
    );
    assert!(out.content.len() < 8192, "{} bytes", out.content.len());
    assert!(out.content.contains("truncated"));
}

#[tokio::test]
async fn binary_output_reaches_the_model_as_capped_text() {
    let d = dirs();
    let tb = toolbox(&d, 4096);
    let out = call(
        &tb,
        "run_command",
        json!({ "command": "head -c 100000 /dev/urandom" }),
    )
    .await;
    assert!(!out.is_error, "{:?}", out.is_error);
    // Valid UTF-8 by construction (a String); bounded in size.
    assert!(out.content.len() < 3 * 4096, "{} bytes", out.content.len());
    assert!(out.content.contains("truncated"));
    fs::write(d.work.join("bin"), [0u8, 1, 2, 255, 0, 7]).unwrap();
    let out = call(&tb, "read_file", json!({ "path": "bin" })).await;
    assert!(out.is_error, "{out:?}");
}
