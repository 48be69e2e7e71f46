//! Running `git`: one place that fixes the environment (no prompts, C locale,
//! no editor, no inherited `GIT_DIR`), never uses a shell, and turns a failure
//! into a [`GitError::Command`] carrying the command line and stderr.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::GitError;

/// Variables a parent git (a hook, `git rebase --exec`) may have set that
/// would point our commands at another repository or index.
const INHERITED: [&str; 8] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

pub(crate) struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// One git invocation in `dir`.
pub(crate) struct Git {
    dir: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(&'static str, String)>,
    stdin: Option<Vec<u8>>,
}

pub(crate) fn git(dir: &Path) -> Git {
    Git {
        dir: dir.to_owned(),
        args: Vec::new(),
        envs: Vec::new(),
        stdin: None,
    }
}

impl Git {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.envs.push((key, value.into()));
        self
    }

    pub fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = Some(input);
        self
    }

    /// `git a b c`, for messages.
    pub fn describe(&self) -> String {
        let mut line = String::from("git");
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }

    /// Runs the command whatever its exit status; only a failure to start it is an error.
    pub fn output(&self) -> Result<Output, GitError> {
        let mut command = Command::new("git");
        command
            .args(&self.args)
            .current_dir(&self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("GIT_EDITOR", "true")
            .env("GIT_MERGE_AUTOEDIT", "no")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for key in INHERITED {
            command.env_remove(key);
        }
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        let spawn_error = |source| GitError::Spawn {
            repo: self.dir.clone(),
            command: self.describe(),
            source,
        };
        let started = std::time::Instant::now();
        let mut child = command.spawn().map_err(spawn_error)?;
        // Written from a thread: git may fill its stdout pipe before it has
        // read all of its input.
        let writer = match (child.stdin.take(), self.stdin.clone()) {
            (Some(mut pipe), Some(input)) => {
                Some(std::thread::spawn(move || pipe.write_all(&input)))
            }
            _ => None,
        };
        let output = child.wait_with_output().map_err(spawn_error)?;
        if let Some(writer) = writer {
            // A write error means git exited early; its status says why.
            let _ = writer.join();
        }
        tracing::debug!(
            dir = %self.dir.display(),
            command = %self.describe(),
            status = ?output.status.code(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "git"
        );
        Ok(Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }

    /// Runs the command and returns its stdout; a non-zero exit is an error.
    pub fn run(&self) -> Result<String, GitError> {
        let output = self.output()?;
        if output.success() {
            Ok(output.stdout)
        } else {
            Err(self.failed(&output))
        }
    }

    pub fn failed(&self, output: &Output) -> GitError {
        GitError::Command {
            repo: self.dir.clone(),
            command: self.describe(),
            status: output
                .code
                .map_or_else(|| "a signal".to_owned(), |code| format!("status {code}")),
            stderr: if output.stderr.is_empty() {
                output.stdout.trim().to_owned()
            } else {
                output.stderr.clone()
            },
        }
    }
}
