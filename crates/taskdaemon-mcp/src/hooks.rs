//! Claude Code's hooks: `taskdaemon hook session-start` and `taskdaemon hook
//! pre-compact`, run by Claude Code with the hook's JSON on stdin.
//!
//! - **SessionStart** (startup, resume, compact, clear) answers with the
//!   rehydrate summary as `hookSpecificOutput.additionalContext`, which
//!   Claude Code adds to the model's context. Claude Code caps injected
//!   context at 10,000 characters, so the summary's budget and a final
//!   cut keep it below [`CONTEXT_CAP`]. After a compaction (`source:
//!   compact`) the summary reaches back to the PreCompact marker.
//! - **PreCompact** records that marker in the store.
//!
//! A hook never breaks the agent's session: every failure (no workspace, a
//! broken store, unreadable input, even a panic) ends in a short notice and
//! exit code 0. Outside a workspace the hooks say nothing at all, so a
//! user-wide install stays quiet in projects that do not use taskdaemon.
//!
//! Docs: <https://code.claude.com/docs/en/hooks>.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use taskdaemon_service::{Agent, Service, ServiceError, error_message};
use taskdaemon_workspace::{Workspace, WorkspaceError};

/// Claude Code's cap on the context a hook injects, in characters.
pub const CONTEXT_CAP: usize = 10_000;
/// The summary's budget in tokens (the renderer counts 4 characters a
/// token), leaving room under the cap for the header.
pub const SESSION_START_BUDGET: usize = 2_300;
/// The tool Claude Code's sessions are recorded under.
const CLAUDE_TOOL: &str = "claude";

/// The hook events taskdaemon answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEvent {
    SessionStart,
    PreCompact,
}

impl HookEvent {
    /// The name Claude Code gives the event in settings and hook input.
    pub fn claude_name(self) -> &'static str {
        match self {
            HookEvent::SessionStart => "SessionStart",
            HookEvent::PreCompact => "PreCompact",
        }
    }

    /// The `taskdaemon hook` subcommand that answers it.
    pub fn subcommand(self) -> &'static str {
        match self {
            HookEvent::SessionStart => "session-start",
            HookEvent::PreCompact => "pre-compact",
        }
    }
}

/// The fields of Claude Code's hook input that taskdaemon reads; the rest
/// (transcript_path, permission_mode, ...) is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HookInput {
    pub session_id: Option<String>,
    pub hook_event_name: Option<String>,
    /// SessionStart: `startup`, `resume`, `clear` or `compact`.
    pub source: Option<String>,
    /// PreCompact: `manual` or `auto`.
    pub trigger: Option<String>,
    pub cwd: Option<PathBuf>,
    pub transcript_path: Option<PathBuf>,
}

impl HookInput {
    /// Parses the hook's stdin; anything unreadable counts as no input.
    pub fn parse(stdin: &str) -> Self {
        serde_json::from_str(stdin).unwrap_or_default()
    }
}

/// What a hook prints. The exit code is always 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Answers `event` for the hook input `stdin`. The workspace is
/// `workspace` when given, else found from the input's `cwd`, then
/// `$CLAUDE_PROJECT_DIR`, then `cwd`.
pub fn run_hook(event: HookEvent, stdin: &str, workspace: Option<&Path>, cwd: &Path) -> HookOutput {
    let input = HookInput::parse(stdin);
    let answered = std::panic::catch_unwind(|| answer(event, &input, workspace, cwd));
    let failure = match answered {
        Ok(Ok(output)) => return output,
        Ok(Err(HookError::NoWorkspace)) => return HookOutput::default(),
        Ok(Err(HookError::Service(e))) => error_message(&e),
        Err(_) => "the hook failed unexpectedly".to_owned(),
    };
    let notice = format!(
        "taskdaemon: {failure} (the {} hook skipped its work; `taskdaemon repair` checks the store)",
        event.claude_name()
    );
    match event {
        // The agent should know its context could not be restored.
        HookEvent::SessionStart => HookOutput {
            stdout: session_start_json(&notice),
            stderr: String::new(),
        },
        // PreCompact's stdout would steer the summary; the notice goes to stderr.
        HookEvent::PreCompact => HookOutput {
            stdout: String::new(),
            stderr: notice,
        },
    }
}

enum HookError {
    NoWorkspace,
    Service(ServiceError),
}

impl From<ServiceError> for HookError {
    fn from(e: ServiceError) -> Self {
        HookError::Service(e)
    }
}

fn answer(
    event: HookEvent,
    input: &HookInput,
    workspace: Option<&Path>,
    cwd: &Path,
) -> Result<HookOutput, HookError> {
    let workspace = find_workspace(input, workspace, cwd)?;
    let agent = Agent::new(Some(CLAUDE_TOOL), input.session_id.as_deref())?;
    match event {
        HookEvent::SessionStart => {
            let after_compaction = input.source.as_deref() == Some("compact");
            let text = Service::session_start_via_daemon(
                &workspace,
                &agent,
                after_compaction,
                SESSION_START_BUDGET,
                || open(&workspace),
            )?;
            Ok(HookOutput {
                stdout: session_start_json(&context_text(&text)),
                stderr: String::new(),
            })
        }
        HookEvent::PreCompact => {
            let session = agent.session.as_deref();
            Service::mark_compaction_via_daemon(&workspace, session, || open(&workspace))?;
            Ok(HookOutput::default())
        }
    }
}

/// The hook's workspace: `workspace` when given, else found from the
/// input's `cwd`, then `$CLAUDE_PROJECT_DIR`, then `cwd`.
fn find_workspace(
    input: &HookInput,
    workspace: Option<&Path>,
    cwd: &Path,
) -> Result<Workspace, HookError> {
    let found = match workspace {
        Some(root) => Workspace::open(root),
        None => {
            let project = std::env::var_os("CLAUDE_PROJECT_DIR").map(PathBuf::from);
            let start = input.cwd.as_deref().or(project.as_deref()).unwrap_or(cwd);
            Workspace::discover(start)
        }
    };
    match found {
        Ok(workspace) => Ok(workspace),
        Err(WorkspaceError::NotFound(_)) => Err(HookError::NoWorkspace),
        Err(e) => Err(ServiceError::from(e).into()),
    }
}

/// Opens the service of the hook's workspace.
fn open(workspace: &Workspace) -> Result<Service, HookError> {
    Ok(Service::open(workspace.clone())?.on_warning(|message| eprintln!("warning: {message}")))
}

/// The summary under a heading, cut to fit Claude Code's cap.
fn context_text(summary: &str) -> String {
    let text = format!(
        "taskdaemon: where work stands in this workspace (from `taskdaemon rehydrate`).\n\n{summary}"
    );
    cut_to(&text, CONTEXT_CAP)
}

/// `text` cut at a character boundary to at most `cap` characters.
fn cut_to(text: &str, cap: usize) -> String {
    match text.char_indices().nth(cap) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

/// SessionStart's answer: the text as additional context.
fn session_start_json(text: &str) -> String {
    serde_json::json!({
        "hookSpecificOutput": {
            "hookEventName": "SessionStart",
            "additionalContext": text,
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_read_leniently() {
        let input = HookInput::parse(
            r#"{"session_id":"abc","hook_event_name":"SessionStart","source":"compact","transcript_path":"/t.jsonl","cwd":"/p","model":"x"}"#,
        );
        assert_eq!(input.session_id.as_deref(), Some("abc"));
        assert_eq!(input.source.as_deref(), Some("compact"));
        assert_eq!(input.cwd.as_deref(), Some(Path::new("/p")));
        assert!(HookInput::parse("not json").session_id.is_none());
    }

    #[test]
    fn context_is_cut_at_the_cap_on_a_char_boundary() {
        let text = context_text(&"é".repeat(20_000));
        assert_eq!(text.chars().count(), CONTEXT_CAP);
        assert!(context_text("short").ends_with("short"));
    }

    #[test]
    fn outside_a_workspace_the_hooks_say_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let input = format!(r#"{{"session_id":"s","cwd":"{}"}}"#, dir.path().display());
        for event in [HookEvent::SessionStart, HookEvent::PreCompact] {
            assert_eq!(
                run_hook(event, &input, None, dir.path()),
                HookOutput::default()
            );
        }
    }

    #[test]
    fn a_broken_store_gives_a_notice_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".taskdaemon")).unwrap();
        std::fs::write(dir.path().join(".taskdaemon/state.db"), "not a database").unwrap();
        let input = r#"{"session_id":"s","source":"startup"}"#;
        let out = run_hook(HookEvent::SessionStart, input, Some(dir.path()), dir.path());
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let context = json["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap();
        assert!(context.starts_with("taskdaemon: "), "{context}");
        assert!(context.contains("SessionStart hook skipped"), "{context}");
        let out = run_hook(HookEvent::PreCompact, input, Some(dir.path()), dir.path());
        assert!(out.stdout.is_empty());
        assert!(
            out.stderr.contains("PreCompact hook skipped"),
            "{}",
            out.stderr
        );
    }
}
