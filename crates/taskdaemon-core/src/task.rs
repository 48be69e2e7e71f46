//! The task record shared by every kind of task, and the spec for a new process.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::ResourceLimits;
use crate::process::{ExitOutcome, ProcessIdentity, RestartPolicy};
use crate::status::Status;
use crate::time::{Millis, serde_rfc3339};

/// What a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// A supervised command.
    Process,
    /// A task document run by an executor.
    Agent,
    /// An LLM loop.
    Loop,
    /// Tracked work an agent does itself.
    Manual,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Process => "process",
            TaskKind::Agent => "agent",
            TaskKind::Loop => "loop",
            TaskKind::Manual => "manual",
        }
    }
}

impl FromStr for TaskKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "process" => Ok(TaskKind::Process),
            "agent" => Ok(TaskKind::Agent),
            "loop" => Ok(TaskKind::Loop),
            "manual" => Ok(TaskKind::Manual),
            other => Err(format!("unknown task kind '{other}'")),
        }
    }
}

/// Everything needed to start a supervised command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProcess {
    /// Lower-case tool name (`claude`), or none for the default `TASK` prefix.
    pub tool: Option<String>,
    pub name: Option<String>,
    pub session: Option<String>,
    /// Program and arguments; never empty.
    pub argv: Vec<String>,
    /// Working directory, absolute.
    pub cwd: String,
    /// The complete environment the command starts with.
    pub env: Vec<(String, String)>,
    pub restart: RestartPolicy,
    /// Raise a hang alert after this long without output or CPU; none uses the config default.
    pub hang_timeout_ms: Option<u64>,
    /// What the command may use (memory, CPU time, files, niceness).
    #[serde(default)]
    pub limits: ResourceLimits,
    /// Run in a container instead of as a native process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::ContainerSpec>,
}

/// One task as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskRecord {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub uuid: Uuid,
    pub kind: TaskKind,
    pub name: Option<String>,
    pub tool: Option<String>,
    pub session: Option<String>,
    pub status: Status,
    /// The command as one shell-quoted line, for reading.
    pub command: String,
    /// The command exactly.
    pub argv: Vec<String>,
    pub cwd: Option<String>,
    /// Never printed: environments carry secrets.
    #[serde(skip)]
    pub env: Vec<(String, String)>,
    pub restart: RestartPolicy,
    /// Restarts made so far (automatic and manual).
    pub restarts: u32,
    pub hang_timeout_ms: Option<u64>,
    /// What the command may use; empty when unlimited.
    #[serde(default, skip_serializing_if = "ResourceLimits::is_empty")]
    pub limits: ResourceLimits,
    pub pid: Option<i32>,
    pub pgid: Option<i32>,
    /// Start time of `pid` in clock ticks since boot.
    pub start_time: Option<u64>,
    pub boot_id: Option<String>,
    pub shim_pid: Option<i32>,
    pub shim_start_time: Option<u64>,
    /// Container tasks: what runs where (none for native processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::ContainerSpec>,
    /// Container tasks: the engine's id of the container, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Tracked tasks: what the work is about.
    #[serde(default)]
    pub description: Option<String>,
    /// Higher comes first among ready work.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Ids of the tasks that must succeed before this one can start.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Typed links touching this task (either end), sorted; the blocking
    /// `blocks`/`waits-for` ones are also in `depends_on` of their waiting end.
    #[serde(default)]
    pub links: Vec<crate::links::TaskLink>,
    /// Its subtasks counted, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<crate::links::Rollup>,
    /// The agent holding it (`task claim`), and its lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<crate::links::Claim>,
    /// The note given when the task was done, or the reason it failed.
    #[serde(default)]
    pub note: Option<String>,
    /// Files the work touched, as reported by the agent.
    #[serde(default)]
    pub files_modified: Vec<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stop_requested: bool,
    /// Why it failed to start or was lost.
    pub error: Option<String>,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Millis>,
    #[serde(with = "serde_rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Millis>,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
}

impl TaskRecord {
    /// How its command runs: natively, or in a container.
    pub fn mode(&self) -> crate::ExecMode {
        if self.container.is_some() {
            crate::ExecMode::Container
        } else {
            crate::ExecMode::Process
        }
    }

    /// The container image, for container tasks.
    pub fn image(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.image.as_str())
    }

    /// What people call it: the name (a tracked task's title), else the command.
    pub fn title(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.command)
    }

    /// The supervised command's identity, when it was started.
    pub fn process_identity(&self) -> Option<ProcessIdentity> {
        Some(ProcessIdentity {
            boot_id: self.boot_id.clone()?,
            pid: self.pid?,
            start_time: self.start_time?,
        })
    }

    /// The shim's identity, when it was started.
    pub fn shim_identity(&self) -> Option<ProcessIdentity> {
        Some(ProcessIdentity {
            boot_id: self.boot_id.clone()?,
            pid: self.shim_pid?,
            start_time: self.shim_start_time?,
        })
    }

    /// Whether the process was adopted (`taskdaemon adopt PID`): started by
    /// another tool and watched with no shim of ours, which the store
    /// records as the process being its own shim.
    pub fn is_adopted(&self) -> bool {
        self.shim_pid.is_some()
            && self.shim_pid == self.pid
            && self.shim_start_time == self.start_time
    }

    /// The recorded exit, when there is one.
    pub fn exit(&self) -> Option<ExitOutcome> {
        ExitOutcome::from_parts(self.exit_code, self.signal)
    }
}

/// Joins an argv into one line a shell would read back the same way.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| shell_quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    if is_plain_word(arg) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Whether a shell reads `word` back as itself: nothing in it is quoted,
/// expanded, globbed or special.
fn is_plain_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c))
}

/// Words that mean something else to a shell than the program of that name
/// (keywords, builtins with no program, or builtins whose program behaves
/// differently, like `echo -e` or `pwd` under a symlink).
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "[[", "{", "}", "alias", "bg", "break", "case", "cd", "command", "continue",
    "do", "done", "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg",
    "fi", "for", "function", "getopts", "hash", "if", "in", "jobs", "kill", "local", "printf",
    "pwd", "read", "readonly", "return", "select", "set", "shift", "source", "then", "time",
    "times", "trap", "type", "typeset", "ulimit", "umask", "unalias", "unset", "until", "wait",
    "while",
];

/// The argv that `sh -c script` would run, when `script` is a simple
/// command a shell adds nothing to: one line of plain words (no quotes,
/// expansions, globs, redirections, operators or assignments) whose first
/// word is not a shell keyword or builtin. Running that argv directly
/// spares a shell per task; anything else needs `sh -c`.
pub fn simple_argv(script: &str) -> Option<Vec<String>> {
    let words: Vec<&str> = script
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    let program = *words.first()?;
    let simple = words.iter().all(|w| is_plain_word(w))
        && !program.contains('=')
        && !SHELL_WORDS.contains(&program);
    simple.then(|| words.iter().map(|w| (*w).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands_split_into_their_words() {
        assert_eq!(simple_argv("true").unwrap(), ["true"]);
        assert_eq!(
            simple_argv("  make -j4\tcheck X=1 ").unwrap(),
            ["make", "-j4", "check", "X=1"]
        );
        assert_eq!(simple_argv("/usr/bin/env").unwrap(), ["/usr/bin/env"]);
    }

    #[test]
    fn anything_a_shell_would_change_needs_the_shell() {
        for script in [
            "",
            "   ",
            "echo *",
            "ls ~",
            "echo $HOME",
            "echo 'a b'",
            "echo \"a\"",
            "a && b",
            "a; b",
            "a | b",
            "a > out",
            "a\nb",
            "X=1 make",
            "cd /tmp",
            "exit 3",
            "echo hi",
            "pwd",
            "a # comment",
            "f(x)",
            "a\\b",
            "{a,b}",
            "a?",
            "[ab]",
        ] {
            assert_eq!(simple_argv(script), None, "{script:?}");
        }
    }

    #[test]
    fn shell_join_quotes_only_what_needs_it() {
        let argv = ["sh", "-c", "echo it's $HOME", ""].map(String::from);
        assert_eq!(shell_join(&argv), r"sh -c 'echo it'\''s $HOME' ''");
    }
}
