//! Running commands for tools and validation: no shell unless asked, own
//! process group, killed as a group on timeout or cancellation, output capped.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::config::Provider;
use crate::landlock_sandbox::PreparedSandbox;

/// What a command is kept from: the network, and (under Landlock) every
/// path outside its worktree and the system toolchain.
#[derive(Debug, Default, Clone, Copy)]
pub struct Isolation<'a> {
    /// Run in a new, empty network namespace.
    pub network: bool,
    /// Run under this Landlock ruleset.
    pub sandbox: Option<&'a PreparedSandbox>,
}

/// A command: an argv run directly, or a string for `sh -c`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    /// Program and arguments, run without a shell.
    Argv(Vec<String>),
    /// A shell command line, run with `sh -c`.
    Shell(String),
}

impl CommandSpec {
    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        match self {
            CommandSpec::Argv(argv) => argv.first().is_none_or(|p| p.trim().is_empty()),
            CommandSpec::Shell(line) => line.trim().is_empty(),
        }
    }

    /// A short human rendering.
    pub fn display(&self) -> String {
        match self {
            CommandSpec::Argv(argv) => argv.join(" "),
            CommandSpec::Shell(line) => line.clone(),
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// Exit code; 128 + N when signal N ended it; `None` if it never started.
    pub exit_code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Whether cancellation killed it.
    pub cancelled: bool,
    /// stdout and stderr interleaved as written, capped with a marker.
    pub output: String,
}

impl CommandOutcome {
    /// Exit code 0, not killed.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }
}

/// Runs `spec` in `cwd`. Output beyond `output_limit` bytes keeps the head
/// and the tail (errors usually come last) with a marker in between. API key
/// variables are removed from the child's environment, so a model cannot
/// print them into a file.
pub async fn run_command(
    spec: &CommandSpec,
    cwd: &Path,
    timeout: Duration,
    output_limit: usize,
    cancel: &CancellationToken,
) -> std::io::Result<CommandOutcome> {
    run_command_with(spec, cwd, timeout, output_limit, cancel, false).await
}

/// [`run_command`], optionally in a new, empty network namespace (only a
/// down loopback interface): the child cannot reach any host, not even
/// this one. When the namespace cannot be made (no privilege), the command
/// does not run and the error says why; it never runs with network instead.
pub async fn run_command_with(
    spec: &CommandSpec,
    cwd: &Path,
    timeout: Duration,
    output_limit: usize,
    cancel: &CancellationToken,
    isolate_network: bool,
) -> std::io::Result<CommandOutcome> {
    let isolation = Isolation {
        network: isolate_network,
        sandbox: None,
    };
    run_command_isolated(spec, cwd, timeout, output_limit, cancel, isolation).await
}

/// [`run_command_with`], optionally under a Landlock ruleset as well. A
/// child that cannot restrict itself does not exec: the error says why.
pub async fn run_command_isolated(
    spec: &CommandSpec,
    cwd: &Path,
    timeout: Duration,
    output_limit: usize,
    cancel: &CancellationToken,
    isolation: Isolation<'_>,
) -> std::io::Result<CommandOutcome> {
    let isolate_network = isolation.network;
    let (program, args): (String, Vec<String>) = match spec {
        CommandSpec::Argv(argv) => match argv.split_first() {
            Some((p, rest)) if !p.is_empty() => (p.clone(), rest.to_vec()),
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "empty command",
                ));
            }
        },
        CommandSpec::Shell(line) => ("sh".into(), vec!["-c".into(), line.clone()]),
    };
    // One pipe for both streams keeps stdout and stderr in the order written.
    let (reader, writer) = rustix::pipe::pipe()?;
    let writer2 = writer.try_clone()?;
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0)
        .kill_on_drop(true);
    for var in Provider::KEY_VARS {
        command.env_remove(var);
    }
    if isolate_network {
        isolate_network_in_child(&mut command);
    }
    if let Some(sandbox) = isolation.sandbox {
        sandbox.apply_in_child(&mut command);
    }
    let mut child = command.spawn().map_err(|e| {
        if isolate_network {
            std::io::Error::new(
                e.kind(),
                format!("refused to run without network isolation (network: none): cannot create a network namespace: {e}"),
            )
        } else {
            e
        }
    })?;
    // Our copies of the write end must go, or the reader never sees EOF.
    drop(command);
    let pgid = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let mut receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(reader)?;
    let reading = tokio::spawn(async move {
        let mut capped = Capped::new(output_limit);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match receiver.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => capped.push(&buf[..n]),
            }
        }
        capped.finish()
    });

    let mut timed_out = false;
    let mut cancelled = false;
    let status = tokio::select! {
        status = child.wait() => Some(status?),
        _ = tokio::time::sleep(timeout) => { timed_out = true; None }
        _ = cancel.cancelled() => { cancelled = true; None }
    };
    // Kill the whole group: on timeout, and also after a normal exit, so
    // background children the command left behind do not outlive it.
    if let Some(pgid) = pgid {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
    let status = match status {
        Some(status) => status,
        None => child.wait().await?,
    };
    let exit_code = status.code().or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        status.signal().map(|s| 128 + s)
    });
    // A process that escaped the group could hold the pipe open forever.
    let mut output = match tokio::time::timeout(Duration::from_secs(2), reading).await {
        Ok(Ok(output)) => output,
        _ => String::from("[output unavailable: the pipe stayed open]"),
    };
    if timed_out {
        output.push_str(&format!(
            "\n[killed: timed out after {}s]",
            timeout.as_secs_f64()
        ));
    }
    Ok(CommandOutcome {
        exit_code,
        timed_out,
        cancelled,
        output,
    })
}

/// Makes the child enter a new network namespace before it execs.
fn isolate_network_in_child(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only
    // makes one system call (async-signal-safe), touching no shared state.
    unsafe {
        command.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Keeps the first and last `limit / 2` bytes of a byte stream.
struct Capped {
    limit: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: usize,
}

impl Capped {
    fn new(limit: usize) -> Self {
        Capped {
            limit,
            head: Vec::new(),
            tail: Default::default(),
            total: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        let head_cap = self.limit / 2;
        let mut rest = bytes;
        if self.head.len() < head_cap {
            let take = (head_cap - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        let tail_cap = self.limit - head_cap;
        self.tail.extend(rest);
        while self.tail.len() > tail_cap {
            self.tail.pop_front();
        }
    }

    fn finish(self) -> String {
        let kept = self.head.len() + self.tail.len();
        let head = String::from_utf8_lossy(&self.head).into_owned();
        let tail_bytes: Vec<u8> = self.tail.into_iter().collect();
        let tail = String::from_utf8_lossy(&tail_bytes);
        if kept < self.total {
            format!(
                "{head}\n[... truncated {} bytes ...]\n{tail}",
                self.total - kept
            )
        } else {
            format!("{head}{tail}")
        }
    }
}

/// Truncates `text` to at most `limit` bytes on a char boundary, with a marker.
pub fn truncate_output(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[... truncated {} bytes ...]",
        &text[..end],
        text.len() - end
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> CommandSpec {
        CommandSpec::Argv(a.iter().map(|s| s.to_string()).collect())
    }

    #[tokio::test]
    async fn captures_exit_code_and_interleaved_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = run_command(
            &CommandSpec::Shell("echo out; echo err >&2; exit 3".into()),
            dir.path(),
            Duration::from_secs(10),
            1000,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.output, "out\nerr\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let out = run_command(
            &argv(&["sh", "-c", &script]),
            dir.path(),
            Duration::from_millis(200),
            1000,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(out.timed_out);
        assert!(!out.success());
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!marker.exists(), "a background child outlived the kill");
    }

    #[tokio::test]
    async fn caps_output_keeping_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let out = run_command(
            &CommandSpec::Shell("echo START; seq 1 10000; echo END".into()),
            dir.path(),
            Duration::from_secs(10),
            200,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(out.output.starts_with("START"));
        assert!(out.output.trim_end().ends_with("END"));
        assert!(out.output.contains("truncated"));
        assert!(out.output.len() < 300);
    }

    #[tokio::test]
    async fn missing_program_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let r = run_command(
            &argv(&["definitely-not-a-program-xyz"]),
            dir.path(),
            Duration::from_secs(1),
            100,
            &CancellationToken::new(),
        )
        .await;
        assert!(r.is_err());
    }

    /// Connects to a loopback listener from a child, with and without
    /// network isolation.
    async fn connects(isolate: bool) -> (bool, std::io::Result<CommandOutcome>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let script = format!("echo hello > /dev/tcp/127.0.0.1/{port}");
        let out = run_command_with(
            &argv(&["bash", "-c", &script]),
            dir.path(),
            Duration::from_secs(20),
            1000,
            &CancellationToken::new(),
            isolate,
        )
        .await;
        (listener.accept().is_ok(), out)
    }

    #[tokio::test]
    async fn isolated_commands_cannot_reach_loopback() {
        let (accepted, out) = connects(false).await;
        assert!(accepted, "the plain command should connect: {out:?}");
        assert!(out.unwrap().success());
        let (accepted, out) = connects(true).await;
        assert!(!accepted, "an isolated command reached the listener");
        match out {
            // Without privilege the command is refused, never run with network.
            Err(e) => assert!(e.to_string().contains("network isolation"), "{e}"),
            Ok(outcome) => assert!(!outcome.success(), "{outcome:?}"),
        }
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "ééééé";
        let t = truncate_output(s, 3);
        assert!(t.starts_with('é'));
        assert!(t.contains("truncated 8 bytes"));
    }
}
