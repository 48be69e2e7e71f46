//! Helpers shared by the integration tests.
//!
//! Every test gets its own [`Ws`]: a temporary directory with its own
//! workspace, daemon and processes. Every command a test runs carries an
//! environment variable naming that workspace (`TD_TEST_TAG`); the daemon,
//! the shims and the supervised commands inherit it, so when the [`Ws`] is
//! dropped (also when the test panics) it stops the daemon and then SIGKILLs
//! every process still carrying the tag. Nothing outlives a test.

#![allow(dead_code)]

pub mod claude;
pub mod fake;
pub mod mcp;
pub mod web;

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use serde_json::Value;

/// Generous limit for one CLI command; only reached when something hangs.
/// A foreground `loop run` on a 2-core machine loaded by parallel tests and
/// builds can take a minute, so this allows three.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// Generous limit for waiting on a condition.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The environment variable that marks every process a test starts.
pub const TAG_VAR: &str = "TD_TEST_TAG";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The binary under test.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("taskdaemon")
}

/// The result of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole run unless it exited 0.
    pub fn ok(self) -> Self {
        assert!(self.success(), "command failed: {self:#?}");
        self
    }

    /// The last non-empty line of stdout.
    pub fn last_line(&self) -> String {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("no output: {self:#?}"))
            .trim()
            .to_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs a prepared command to its end with a timeout, collecting its output.
/// The output pipes are read on threads, so a descendant that keeps them open
/// is noticed (as a failure) instead of hanging the test.
pub fn run_command(command: Command, timeout: Duration) -> Run {
    run_command_with_stdin(command, Stdio::null(), timeout)
}

/// [`run_command`] with `input` on the command's stdin.
pub fn run_command_input(command: Command, input: &str, timeout: Duration) -> Run {
    let mut file = tempfile::tempfile().expect("temp file for stdin");
    std::io::Write::write_all(&mut file, input.as_bytes()).expect("write stdin");
    std::io::Seek::rewind(&mut file).expect("rewind stdin");
    run_command_with_stdin(command, Stdio::from(file), timeout)
}

fn run_command_with_stdin(mut command: Command, stdin: Stdio, timeout: Duration) -> Run {
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let out = read_pipe(child.stdout.take());
    let err = read_pipe(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let pipe_wait = Duration::from_secs(10);
    let stdout = out.recv_timeout(pipe_wait).unwrap_or_else(|_| {
        panic!("{command:?} exited but its stdout stays open (held by a descendant)")
    });
    let stderr = err.recv_timeout(pipe_wait).unwrap_or_else(|_| {
        panic!("{command:?} exited but its stderr stays open (held by a descendant)")
    });
    Run {
        code: status.code(),
        stdout,
        stderr,
    }
}

fn read_pipe(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let _ = tx.send(text);
    });
    rx
}

/// A temporary workspace with everything a test started in it.
pub struct Ws {
    dir: tempfile::TempDir,
    root: PathBuf,
    tag: String,
    /// Processes the test started itself, killed on drop.
    own: Vec<Child>,
    /// Extra environment for every command (and so the daemon it starts).
    env: Vec<(String, String)>,
}

impl Ws {
    /// A fresh, initialised workspace.
    pub fn new() -> Self {
        let ws = Self::uninitialised();
        ws.run(&["init"]).ok();
        ws
    }

    /// A fresh temporary directory that is not a workspace yet.
    pub fn uninitialised() -> Self {
        Self::uninitialised_in(&std::env::temp_dir())
    }

    /// A fresh, initialised workspace in a new directory under `parent`
    /// (a small mount, say).
    pub fn new_in(parent: &Path) -> Self {
        let ws = Self::uninitialised_in(parent);
        ws.run(&["init"]).ok();
        ws
    }

    /// A fresh directory under `parent` that is not a workspace yet.
    pub fn uninitialised_in(parent: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("td-it-")
            .tempdir_in(parent)
            .expect("tempdir");
        let root = fs::canonicalize(dir.path()).expect("canonicalize");
        let tag = format!(
            "{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            root.file_name().unwrap().to_string_lossy()
        );
        Self {
            dir,
            root,
            tag,
            own: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".taskdaemon")
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("state.db")
    }

    /// `taskdaemon --workspace ROOT ARGS...`, run in the workspace, tagged.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.bare_command();
        command.arg("--workspace").arg(&self.root);
        command.args(args);
        command
    }

    /// `taskdaemon ARGS...` without `--workspace`, run in the workspace root.
    pub fn command_no_flag(&self, args: &[&str]) -> Command {
        let mut command = self.bare_command();
        command.args(args);
        command
    }

    fn bare_command(&self) -> Command {
        self.program_command(&bin())
    }

    /// `program`, run in the workspace root with the test's tag and extra
    /// environment (what it starts is cleaned up with the workspace).
    pub fn program_command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.root)
            .env(TAG_VAR, &self.tag)
            .env_remove("TASKDAEMON_WORKSPACE")
            .env_remove("TASKDAEMON_SESSION")
            .env_remove("TASKDAEMON_DATABASE_URL")
            .env("NO_COLOR", "1");
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Sets an environment variable for every later command, and so for the
    /// daemon a command starts and the executors it runs.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Puts `dir` first on PATH for every later command.
    pub fn prepend_path(&mut self, dir: &Path) {
        let path = std::env::var("PATH").unwrap_or_default();
        self.set_env("PATH", &format!("{}:{path}", dir.display()));
    }

    /// A queue folder by its path relative to the root.
    pub fn queue_dir(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Drops a task document into `QUEUE/pending/` the way careful writers
    /// do: written beside it under a hidden name, then renamed in.
    pub fn drop_document(&self, queue: &str, name: &str, text: &str) {
        let pending = self.queue_dir(queue).join("pending");
        let tmp = pending.join(format!(".{name}.writing"));
        fs::write(&tmp, text).expect("write document");
        fs::rename(&tmp, pending.join(name)).expect("rename document");
    }

    /// Waits until a queue task runs; returns its executor's pid.
    pub fn wait_task_running(&self, id: &str) -> i32 {
        eventually_some(&format!("{id} running"), || {
            let run = self.run(&["tasks", "show", id, "--json"]);
            if !run.success() {
                return None;
            }
            let task = run.json();
            (task["status"] == "running")
                .then(|| task["pid"].as_i64())
                .flatten()
                .map(|p| p as i32)
        })
    }

    /// Waits for `QUEUE/results/ID.json` and returns it.
    pub fn wait_result(&self, queue: &str, id: &str) -> Value {
        let path = self
            .queue_dir(queue)
            .join("results")
            .join(format!("{id}.json"));
        let text = eventually_some(&format!("result {}", path.display()), || {
            fs::read_to_string(&path).ok()
        });
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
    }

    /// Runs a CLI command in this workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        run_command(self.command(args), COMMAND_TIMEOUT)
    }

    /// Like [`run`](Self::run), with `input` on stdin.
    pub fn run_input(&self, args: &[&str], input: &str) -> Run {
        run_command_input(self.command(args), input, COMMAND_TIMEOUT)
    }

    /// `spawn ARGS...`; returns the new id.
    pub fn spawn(&self, args: &[&str]) -> String {
        let mut full = vec!["spawn"];
        full.extend_from_slice(args);
        self.run(&full).ok().last_line()
    }

    /// `spawn -- sh -c SCRIPT`; returns the new id.
    pub fn spawn_sh(&self, script: &str) -> String {
        self.spawn(&["--", "sh", "-c", script])
    }

    /// `status --json`
    pub fn status(&self) -> Value {
        self.run(&["status", "--json"]).ok().json()
    }

    /// The daemon's pid, when `status --json` says one runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let status = self.status();
        if status["running"] == Value::Bool(true) {
            Some(status["pid"].as_i64().expect("pid while running") as i32)
        } else {
            None
        }
    }

    /// `ps --all --json`
    pub fn ps_all(&self) -> Vec<Value> {
        match self.run(&["ps", "--all", "--json"]).ok().json() {
            Value::Array(items) => items,
            other => panic!("ps --json is not an array: {other}"),
        }
    }

    /// `ps --json` (live processes only)
    pub fn ps_live(&self) -> Vec<Value> {
        match self.run(&["ps", "--json"]).ok().json() {
            Value::Array(items) => items,
            other => panic!("ps --json is not an array: {other}"),
        }
    }

    /// One task as `ps --all --json` shows it.
    pub fn task(&self, id: &str) -> Value {
        self.ps_all()
            .into_iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in ps --all --json"))
    }

    pub fn task_status(&self, id: &str) -> String {
        self.task(id)["status"].as_str().unwrap().to_owned()
    }

    /// Polls `ps --all --json` until the task satisfies `pred`; returns it.
    pub fn wait_task(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let task = self.task(id);
            if pred(&task) {
                return task;
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not become {what} within {DEADLINE:?}: {task:#}\n{}",
                self.diagnostics(id)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the task has the given status.
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait_task(id, status, |t| t["status"] == status)
    }

    /// The daemon log and a task's shim log, for failure messages.
    pub fn diagnostics(&self, id: &str) -> String {
        let read = |path: PathBuf| {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            format!("--- {}:\n{tail}", path.display())
        };
        format!(
            "{}\n{}",
            read(self.state_dir().join("daemon.log")),
            read(self.state_dir().join("procs").join(id).join("shim.log"))
        )
    }

    /// The pid of a task's command.
    pub fn pid_of(&self, id: &str) -> i32 {
        self.task(id)["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{id} has no pid")) as i32
    }

    /// Reads a task's stdout log.
    pub fn stdout_log(&self, id: &str) -> String {
        fs::read_to_string(self.state_dir().join("procs").join(id).join("stdout.log"))
            .unwrap_or_default()
    }

    /// Writes `.taskdaemon/config.toml`.
    pub fn write_config(&self, text: &str) {
        fs::write(self.state_dir().join("config.toml"), text).expect("write config");
    }

    /// Starts a process of the test's own, tagged and in its own process
    /// group, killed when the workspace is dropped.
    pub fn start_own(&mut self, program: &str, args: &[&str]) -> i32 {
        let mut command = Command::new(program);
        command
            .args(args)
            .env(TAG_VAR, &self.tag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("start own process");
        let pid = child.id() as i32;
        self.own.push(child);
        pid
    }

    /// Every live process that carries this workspace's tag.
    pub fn tagged_processes(&self) -> Vec<i32> {
        let needle = format!("{TAG_VAR}={}", self.tag);
        all_pids()
            .into_iter()
            .filter(|&pid| {
                fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
                    .unwrap_or(false)
            })
            .filter(|&pid| proc_stat(pid).is_some_and(|s| s.state != 'Z'))
            .collect()
    }

    /// Live `__daemon` processes for this workspace (by command line).
    pub fn daemon_processes(&self) -> Vec<i32> {
        self.processes_with_arg("__daemon")
    }

    /// Live standby shims (`__shim-standby`) of this workspace.
    pub fn standby_shims(&self) -> Vec<i32> {
        self.processes_with_arg("__shim-standby")
    }

    /// Live processes of this workspace (named in their command line) that
    /// have the argument `arg`.
    fn processes_with_arg(&self, arg: &str) -> Vec<i32> {
        let root = self.root.to_string_lossy().into_owned();
        all_pids()
            .into_iter()
            .filter(|&pid| {
                let args = cmdline(pid);
                args.iter().any(|a| a == arg) && args.contains(&root)
            })
            .filter(|&pid| alive(pid))
            .collect()
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        if self.state_dir().is_dir() {
            // Stop the daemon politely first; what it leaves is killed below.
            let mut stop = self.command(&["stop"]);
            stop.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = stop.spawn() {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() > deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        Ok(None) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
        }
        for child in &mut self.own {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Kill everything still tagged, whole groups included; repeat until
        // nothing is left, since a dying parent may have forked meanwhile.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.tagged_processes();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            let groups: HashSet<i32> = left
                .iter()
                .filter_map(|&pid| proc_stat(pid).map(|s| s.pgrp))
                .collect();
            for pid in &left {
                sigkill(*pid);
            }
            for pgrp in groups {
                // Only groups made of tagged processes: never the test's own group.
                let members = group_members(pgrp);
                if !members.is_empty() && members.iter().all(|m| left.contains(m)) {
                    sigkill_group(pgrp);
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = &self.dir;
    }
}

/// SIGKILL to a process, ignoring failures (it may be gone already).
pub fn sigkill(pid: i32) {
    signal(pid, Signal::KILL);
}

/// SIGKILL to a whole process group, ignoring failures.
pub fn sigkill_group(pgrp: i32) {
    if let Some(pgrp) = Pid::from_raw(pgrp) {
        let _ = kill_process_group(pgrp, Signal::KILL);
    }
}

/// Sends `signal` to one process, ignoring failures.
pub fn signal(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = kill_process(pid, signal);
    }
}

/// The parts of `/proc/PID/stat` the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    /// Field 5: the process group.
    pub pgrp: i32,
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
}

/// Reads `/proc/PID/stat`; none when the process does not exist.
pub fn proc_stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything, so split
    // after the last ')': what follows starts at field 3.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Whether a process with this pid exists and has not exited (zombies count
/// as gone). Every thread counts: after SIGKILL the main thread of a
/// multi-threaded process can be a zombie while the others still run and
/// hold its files (and so its locks).
pub fn alive(pid: i32) -> bool {
    let running = |state: char| state != 'Z' && state != 'X';
    let Ok(threads) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        fs::read_to_string(thread.path().join("stat"))
            .ok()
            .and_then(|text| {
                let rest = &text[text.rfind(')')? + 1..];
                rest.split_whitespace().next()?.chars().next()
            })
            .is_some_and(running)
    })
}

/// Every pid in `/proc`.
pub fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Live (non-zombie) processes whose process group (field 5 of stat) is `pgrp`.
pub fn group_members(pgrp: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| proc_stat(pid).is_some_and(|s| s.pgrp == pgrp && s.state != 'Z'))
        .collect()
}

/// Live children of process `parent` (zombies not counted).
pub fn live_children(parent: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| proc_stat(pid).is_some_and(|s| s.ppid == parent))
        .filter(|&pid| alive(pid))
        .collect()
}

/// Whether process `pid` holds file `path` open.
pub fn holds_open(pid: i32, path: &Path) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
    })
}

/// A process's arguments.
pub fn cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` until it returns true or the deadline passes.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not true within {DEADLINE:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `get` until it returns something or the deadline passes.
pub fn eventually_some<T>(what: &str, mut get: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = get() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: nothing within {DEADLINE:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
