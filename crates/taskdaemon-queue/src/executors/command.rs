//! The `command` executor: `sh -c <script>`, where the script is the
//! `command:` field or else the document's body. Its output is plain text:
//! the report shows its end, and it says nothing about cost or tokens.
//!
//! A script the shell would add nothing to (plain words, a program found on
//! the task's PATH: see [`taskdaemon_core::task::simple_argv`]) runs as that
//! argv directly, which spares a shell per task; a program not found still
//! goes through `sh`, so it fails the way a shell fails (exit 127).

use std::ffi::OsStr;
use std::path::Path;

use taskdaemon_core::task::simple_argv;
use taskdaemon_supervisor::spawn::{find_on_path, is_executable_file};

use super::{Executor, Launch};
use crate::document::{DocumentError, TaskDocument};
use crate::executor::ExecutorSettings;

/// The `command` executor.
pub(super) struct Command;

impl Command {
    /// `command:`, else the body.
    fn script(doc: &TaskDocument) -> String {
        doc.option::<String>("command")
            .ok()
            .flatten()
            .unwrap_or_else(|| doc.body.trim().to_owned())
    }
}

impl Executor for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["command"]
    }

    fn check(&self, doc: &TaskDocument) -> Result<(), DocumentError> {
        let script = doc
            .option::<String>("command")?
            .unwrap_or_else(|| doc.body.clone());
        if script.trim().is_empty() {
            return Err(doc.error_at_body(
                Some("command"),
                "the command executor needs `command:` (or the command as the body)",
            ));
        }
        Ok(())
    }

    fn launch(&self, doc: &TaskDocument, settings: &ExecutorSettings) -> Launch {
        let script = Self::script(doc);
        let path = doc.env.get("PATH").map(String::as_str).or_else(|| {
            settings
                .base_env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.as_str())
        });
        let argv = simple_argv(&script)
            .filter(|argv| is_program(&argv[0], path))
            .unwrap_or_else(|| vec!["sh".to_owned(), "-c".to_owned(), script]);
        Launch {
            argv,
            env: Vec::new(),
            container: None,
        }
    }
}

/// Whether `program` names an executable file: an absolute path, or a name
/// found on `path` the way `execvp` looks it up. (A relative path depends
/// on the working directory at start: the shell decides it.)
fn is_program(program: &str, path: Option<&str>) -> bool {
    if program.contains('/') {
        let file = Path::new(program);
        return file.is_absolute() && is_executable_file(file);
    }
    path.is_some_and(|path| find_on_path(program, OsStr::new(path)).is_some())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn launch(text: &str) -> Vec<String> {
        let settings = ExecutorSettings {
            claude_path: PathBuf::from("claude"),
            workspace_root: PathBuf::from("/ws"),
            base_env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            default_max_attempts: 1,
            retry_backoff: Duration::from_secs(1),
        };
        Command
            .launch(&TaskDocument::parse(text).unwrap(), &settings)
            .argv
    }

    #[test]
    fn the_script_is_the_field_else_the_body() {
        assert_eq!(
            launch("---\nexecutor: command\ncommand: make check | tee log\n---\nnotes\n"),
            ["sh", "-c", "make check | tee log"]
        );
        assert_eq!(
            launch("---\nexecutor: command\n---\necho hi\n"),
            ["sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn a_simple_command_on_the_path_runs_without_a_shell() {
        assert_eq!(
            launch("---\nexecutor: command\ncommand: sleep 5\n---\n"),
            ["sleep", "5"]
        );
        assert_eq!(
            launch("---\nexecutor: command\ncommand: /bin/true\n---\n"),
            ["/bin/true"]
        );
        // Globs, quotes and missing programs keep the shell's meaning.
        assert_eq!(
            launch("---\nexecutor: command\ncommand: ls *.md\n---\n"),
            ["sh", "-c", "ls *.md"]
        );
        assert_eq!(
            launch("---\nexecutor: command\ncommand: no-such-program-td\n---\n"),
            ["sh", "-c", "no-such-program-td"]
        );
        assert_eq!(
            launch("---\nexecutor: command\ncommand: ./build.sh\n---\n"),
            ["sh", "-c", "./build.sh"]
        );
        // The document's PATH is the one searched.
        assert_eq!(
            launch("---\nexecutor: command\ncommand: sleep 5\nenv: {PATH: /nowhere}\n---\n"),
            ["sh", "-c", "sleep 5"]
        );
    }

    #[test]
    fn an_empty_script_names_the_field() {
        let err = TaskDocument::parse("---\nexecutor: command\n---\n\n").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("command"), "{err}");
        let err = TaskDocument::parse("---\nexecutor: command\ncommand: [make, test]\n---\n")
            .unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (3, Some("command")),
            "{err}"
        );
    }
}
