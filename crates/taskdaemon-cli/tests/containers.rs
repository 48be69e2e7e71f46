//! Container execution mode against a real engine: Podman's Docker-compatible
//! service (`podman --runtime runc system service`) on a socket of the
//! test's own, with a busybox image built and imported here (no registry).
//!
//! When podman cannot be started the tests say so loudly and skip, unless
//! `TASKDAEMON_TEST_PODMAN=1` (CI), where they fail instead.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use common::{Ws, alive, eventually, eventually_some, sigkill};
use serde_json::Value;

const IMAGE: &str = "localhost/td-busybox:test";

/// A Podman service on a private socket; stopped (and the workspace's
/// containers removed) on drop.
struct Engine {
    service: Child,
    dir: tempfile::TempDir,
    /// Workspaces whose containers are removed on drop (also after a panic).
    roots: std::cell::RefCell<Vec<PathBuf>>,
}

impl Engine {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn podman(&self, args: &[&str]) -> std::process::Output {
        Command::new("podman")
            .arg("--url")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run podman")
    }

    /// Ids of the containers labelled with workspace `root`.
    fn containers_of(&self, root: &Path) -> Vec<String> {
        let filter = format!("label=taskdaemon.workspace={}", root.display());
        let out = self.podman(&["ps", "-a", "-q", "--no-trunc", "--filter", &filter]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn cleanup(&self, root: &Path) {
        for id in self.containers_of(root) {
            let _ = self.podman(&["rm", "-f", "-t", "0", &id]);
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for root in self.roots.take() {
            self.cleanup(&root);
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

/// Starts the engine, or explains why not: `None` skips (loudly), except
/// under `TASKDAEMON_TEST_PODMAN=1`, where it fails.
fn engine(test: &str) -> Option<Engine> {
    match start_engine() {
        Ok(engine) => Some(engine),
        Err(why) if std::env::var("TASKDAEMON_TEST_PODMAN").as_deref() == Ok("1") => {
            panic!("TASKDAEMON_TEST_PODMAN=1 but the engine cannot start: {why}")
        }
        Err(why) => {
            eprintln!("\n!!! SKIPPED {test}: podman cannot start here ({why})\n");
            None
        }
    }
}

fn start_engine() -> Result<Engine, String> {
    let dir = tempfile::Builder::new()
        .prefix("td-podman-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let socket = dir.path().join("podman.sock");
    let log = fs::File::create(dir.path().join("service.log")).map_err(|e| e.to_string())?;
    let service = Command::new("podman")
        .args(["--runtime", "runc", "system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("podman: {e}"))?;
    let engine = Engine {
        service,
        dir,
        roots: Default::default(),
    };
    let answered = wait_for(|| ping(&socket));
    if !answered {
        let log = fs::read_to_string(engine.dir.path().join("service.log")).unwrap_or_default();
        return Err(format!("no answer on {}: {log}", socket.display()));
    }
    import_image(&engine)?;
    Ok(engine)
}

/// A deadline-bound wait that reports instead of panicking (for the skip).
fn wait_for(mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.ends_with("OK")
}

/// A rootfs tarball with Debian's static busybox (built once per test run).
fn image_tar() -> Result<PathBuf, String> {
    static TAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TAR.get_or_init(|| {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("busybox is not installed (apt-get install busybox-static)")?;
        let dir = std::env::temp_dir().join(format!("td-image-{}", std::process::id()));
        let bin = dir.join("rootfs/bin");
        fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        fs::copy(busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
        for applet in [
            "sh", "echo", "sleep", "cat", "ls", "true", "false", "test", "[",
        ] {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
        fs::create_dir_all(dir.join("rootfs/tmp")).map_err(|e| e.to_string())?;
        let tar = dir.join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(dir.join("rootfs"))
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(tar)
            .ok_or_else(|| "tar failed".to_owned())
    })
    .clone()
}

fn import_image(engine: &Engine) -> Result<(), String> {
    let tar = image_tar()?;
    let out = engine.podman(&["import", tar.to_str().unwrap_or_default(), IMAGE]);
    out.status
        .success()
        .then_some(())
        .ok_or_else(|| format!("podman import: {}", String::from_utf8_lossy(&out.stderr)))
}

/// A workspace whose commands reach `engine` through DOCKER_HOST.
fn ws_on(engine: &Engine) -> Ws {
    let mut ws = Ws::new();
    ws.set_env("DOCKER_HOST", &engine.host());
    engine.roots.borrow_mut().push(ws.root().to_owned());
    ws
}

fn spawn_in(ws: &Ws, extra: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["spawn", "--image", IMAGE];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(cmd);
    ws.run(&args).ok().last_line()
}

fn stderr_log(ws: &Ws, id: &str) -> String {
    fs::read_to_string(ws.state_dir().join("procs").join(id).join("stderr.log")).unwrap_or_default()
}

#[test]
fn a_container_that_prints_and_exits_3_is_recorded() {
    let Some(engine) = engine("a_container_that_prints_and_exits_3_is_recorded") else {
        return;
    };
    let ws = ws_on(&engine);
    let id = spawn_in(
        &ws,
        &["--env", "GREETING=hello"],
        &["sh", "-c", "echo out $GREETING; echo err >&2; exit 3"],
    );
    let task = ws.wait_status(&id, "failed");
    assert_eq!(task["exit_code"], 3, "{task:#}");
    assert_eq!(task["container"]["image"], IMAGE, "{task:#}");
    let container = task["container_id"]
        .as_str()
        .expect("container id recorded");
    assert_eq!(ws.stdout_log(&id), "out hello\n");
    assert_eq!(stderr_log(&ws, &id), "err\n");
    // The caller's environment stays on the host.
    assert!(!ws.stdout_log(&id).contains("PATH"));

    let ps = ws.ps_all();
    let row = ps.iter().find(|p| p["id"] == id.as_str()).expect("in ps");
    assert_eq!(row["mode"], "container", "{row:#}");
    assert_eq!(row["image"], IMAGE);
    assert_eq!(row["container_id"], container);
    let table = ws.run(&["ps", "--all"]).ok().stdout;
    assert!(
        table.contains("MODE") && table.contains(&container[..12]),
        "{table}"
    );

    let registry: Value = serde_json::from_str(
        &fs::read_to_string(ws.root().join(".claude/process_registry.json")).unwrap(),
    )
    .unwrap();
    let entry = registry["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .cloned()
        .expect("in the registry");
    assert_eq!(entry["mode"], "container", "{entry:#}");
    assert_eq!(entry["image"], IMAGE);
    let rehydrate = ws.run(&["rehydrate"]).ok().stdout;
    assert!(
        rehydrate.contains(&format!("in container {IMAGE}")),
        "{rehydrate}"
    );

    // Ended containers are removed by default.
    eventually("the ended container is removed", || {
        engine.containers_of(ws.root()).is_empty()
    });
}

#[test]
fn a_kept_container_stays_and_carries_the_labels() {
    let Some(engine) = engine("a_kept_container_stays_and_carries_the_labels") else {
        return;
    };
    let ws = ws_on(&engine);
    let id = spawn_in(&ws, &["--keep"], &["true"]);
    let task = ws.wait_status(&id, "succeeded");
    let container = task["container_id"].as_str().unwrap().to_owned();
    assert_eq!(engine.containers_of(ws.root()), vec![container.clone()]);
    let out = engine.podman(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"taskdaemon.task\"}}",
        &container,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);
}

#[test]
fn kill_stops_with_a_grace_period_then_kills() {
    let Some(engine) = engine("kill_stops_with_a_grace_period_then_kills") else {
        return;
    };
    let ws = ws_on(&engine);
    // Handles SIGTERM: exits on its own within the grace period.
    let polite = spawn_in(
        &ws,
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 5' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    eventually("the container is ready", || {
        ws.stdout_log(&polite).contains("ready")
    });
    let kill = ws.run(&["kill", &polite, "--grace", "20s"]).ok();
    assert!(kill.stdout.contains("cancelled"), "{kill:#?}");
    let task = ws.wait_status(&polite, "cancelled");
    assert_eq!(task["exit_code"], 5, "{task:#}");
    assert!(ws.stdout_log(&polite).contains("got TERM"));

    // PID 1 without a handler ignores SIGTERM: killed after the grace.
    let stubborn = spawn_in(&ws, &[], &["sleep", "300"]);
    ws.wait_status(&stubborn, "running");
    eventually_some("its container id", || {
        ws.task(&stubborn)["container_id"]
            .as_str()
            .map(str::to_owned)
    });
    ws.run(&["kill", &stubborn, "--grace", "1s"]).ok();
    let task = ws.wait_status(&stubborn, "cancelled");
    assert_eq!(task["exit_code"], 137, "{task:#}");
    eventually("the killed containers are removed", || {
        engine.containers_of(ws.root()).is_empty()
    });
}

#[test]
fn kill_9_of_the_daemon_then_the_container_is_readopted() {
    let Some(engine) = engine("kill_9_of_the_daemon_then_the_container_is_readopted") else {
        return;
    };
    let ws = ws_on(&engine);
    let data = ws.root().join("data");
    fs::create_dir_all(&data).unwrap();
    let mount = format!("{}:/data", data.display());
    let id = spawn_in(
        &ws,
        &["--mount", &mount, "--workdir", "/data"],
        &[
            "sh",
            "-c",
            "echo before; while [ ! -e go ]; do sleep 0.1; done; echo after; exit 7",
        ],
    );
    eventually("it runs", || ws.stdout_log(&id).contains("before"));
    let runner = ws.task(&id)["pid"].as_i64().unwrap() as i32;
    let daemon = ws.daemon_pid().expect("spawn started the daemon");
    sigkill(daemon);
    eventually("the daemon is gone", || !alive(daemon));
    assert!(alive(runner), "the container's runner died with the daemon");
    ws.run(&["start"]).ok();
    assert_ne!(ws.daemon_pid(), Some(daemon));
    assert_eq!(ws.task(&id)["status"], "running");

    fs::write(data.join("go"), "").unwrap();
    let task = ws.wait_status(&id, "failed");
    assert_eq!(task["exit_code"], 7, "{task:#}");
    assert_eq!(ws.stdout_log(&id), "before\nafter\n");
}

#[test]
fn a_runner_killed_by_sigkill_is_replaced_and_reattaches() {
    let Some(engine) = engine("a_runner_killed_by_sigkill_is_replaced_and_reattaches") else {
        return;
    };
    let ws = ws_on(&engine);
    let data = ws.root().join("data");
    fs::create_dir_all(&data).unwrap();
    let mount = format!("{}:/data", data.display());
    let id = spawn_in(
        &ws,
        &[
            "--mount",
            &mount,
            "--restart",
            "on-failure",
            "--max-restarts",
            "1",
            "--restart-delay",
            "50ms",
        ],
        &[
            "sh",
            "-c",
            "echo before; while [ ! -e /data/go ]; do sleep 0.1; done; echo after; exit 7",
        ],
    );
    eventually("it runs", || ws.stdout_log(&id).contains("before"));
    let first = ws.task(&id);
    let container = first["container_id"].as_str().unwrap().to_owned();
    sigkill(first["pid"].as_i64().unwrap() as i32);
    let second = ws.wait_task(&id, "a new runner", |t| {
        t["restarts"] == 1 && t["status"] == "running"
    });
    assert_eq!(
        second["container_id"],
        container.as_str(),
        "a second container: {second:#}"
    );
    fs::write(data.join("go"), "").unwrap();
    let task = ws.wait_status(&id, "failed");
    assert_eq!(task["exit_code"], 7, "{task:#}");
    assert!(
        ws.stdout_log(&id).contains("after"),
        "{}",
        ws.stdout_log(&id)
    );
    assert_eq!(
        engine.containers_of(ws.root()).len(),
        0,
        "the container is removed"
    );
}

#[test]
fn a_runner_killed_without_restart_policy_leaves_no_container() {
    let Some(engine) = engine("a_runner_killed_without_restart_policy_leaves_no_container") else {
        return;
    };
    let ws = ws_on(&engine);
    let id = spawn_in(&ws, &[], &["sleep", "300"]);
    eventually_some("its container id", || {
        ws.task(&id)["container_id"].as_str().map(str::to_owned)
    });
    let label = format!("label=taskdaemon.task={id}");
    let of_task = || {
        let out = engine.podman(&["ps", "-a", "-q", "--filter", &label]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(!of_task().is_empty(), "its container runs at the engine");
    sigkill(ws.task(&id)["pid"].as_i64().unwrap() as i32);
    let task = ws.wait_status(&id, "failed");
    assert_eq!(task["signal"], 9, "{task:#}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("runner died") && error.contains("stopped and removed"),
        "{task:#}"
    );
    eventually("no container of the task is left", || of_task().is_empty());
    assert!(engine.containers_of(ws.root()).is_empty());
}

#[test]
fn a_container_removed_behind_our_back_is_lost() {
    let Some(engine) = engine("a_container_removed_behind_our_back_is_lost") else {
        return;
    };
    let ws = ws_on(&engine);
    let id = spawn_in(&ws, &[], &["sleep", "300"]);
    let container = eventually_some("its container id", || {
        ws.task(&id)["container_id"].as_str().map(str::to_owned)
    });
    let out = engine.podman(&["rm", "-f", "-t", "0", &container]);
    assert!(out.status.success(), "{out:?}");
    let task = ws.wait_task(&id, "an end", |t| {
        ["lost", "failed"].contains(&t["status"].as_str().unwrap_or(""))
    });
    assert_eq!(task["status"], "lost", "{task:#}\n{}", stderr_log(&ws, &id));
}

#[test]
fn a_queue_document_runs_in_a_container() {
    let Some(engine) = engine("a_queue_document_runs_in_a_container") else {
        return;
    };
    let ws = ws_on(&engine);
    ws.write_config(
        "[queues]\nwatch_debounce_ms = 50\nretry_backoff = \"50ms\"\n\n\
         [[queue]]\nid = \"boxed\"\npath = \"tasks/boxed\"\n",
    );
    ws.run(&["start"]).ok();
    ws.drop_document(
        "tasks/boxed",
        "task-c.md",
        &format!(
            "---\nexecutor: container\nimage: {IMAGE}\nmax_attempts: 1\nenv:\n  WHO: box\n---\n\
             echo hello from $WHO; exit 4\n"
        ),
    );
    let result = ws.wait_result("tasks/boxed", "task-c");
    assert_eq!(result["status"], "failed", "{result:#}");
    assert_eq!(result["exit_code"], 4, "{result:#}");
    assert_eq!(ws.stdout_log("task-c"), "hello from box\n");
    let task = ws.run(&["tasks", "show", "task-c", "--json"]).ok().json();
    assert_eq!(task["container"]["image"], IMAGE, "{task:#}");
}

#[test]
fn an_unreachable_engine_is_a_clear_error_and_creates_nothing() {
    // Needs no engine: the point is that there is none.
    let mut ws = Ws::new();
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/none.sock", dir.path().display());
    ws.set_env("DOCKER_HOST", &socket);
    let run = ws.run(&["spawn", "--image", IMAGE, "--", "true"]);
    assert!(!run.success(), "{run:#?}");
    assert!(run.stderr.contains(&socket), "names the socket: {run:#?}");
    assert!(run.stderr.contains("hint:"), "{run:#?}");
    assert!(
        ws.ps_all().is_empty(),
        "a task was created: {:#?}",
        ws.ps_all()
    );
}

#[test]
fn a_missing_image_is_a_clear_error_and_creates_nothing() {
    let Some(engine) = engine("a_missing_image_is_a_clear_error_and_creates_nothing") else {
        return;
    };
    let ws = ws_on(&engine);
    let image = "localhost/td-no-such-image:1";
    let run = ws.run(&["spawn", "--image", image, "--", "true"]);
    assert!(!run.success(), "{run:#?}");
    assert!(
        run.stderr.contains(image) && run.stderr.contains("hint:"),
        "{run:#?}"
    );
    assert!(
        ws.ps_all().is_empty(),
        "a task was created: {:#?}",
        ws.ps_all()
    );
}

#[test]
fn bad_spawn_arguments_name_the_flag() {
    let ws = Ws::new();
    let bad = ws.run(&["spawn", "--image", IMAGE, "--mount", "rel:/x", "--", "true"]);
    assert!(!bad.success() && bad.stderr.contains("--mount"), "{bad:#?}");
}
