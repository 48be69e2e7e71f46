//! Which taskdaemon session and tool an MCP client's calls belong to.
//!
//! The command line (`--session`, `TASKDAEMON_SESSION`) wins. Otherwise the
//! session is the client's own when it tells its servers (Claude Code sets
//! `CLAUDE_CODE_SESSION_ID`, the id its hooks also receive, so hooks and
//! tools name one session), else a fresh id for this connection. The tool
//! (the id prefix: `CLAUDE-3`) is the first word of the client's name:
//! `claude-code` is `claude`, `codex-mcp-client` is `codex`.

use taskdaemon_service::{Agent, tool_name};

/// The variable in which Claude Code gives its session id to the processes it starts.
pub const CLAUDE_SESSION_ENV: &str = "CLAUDE_CODE_SESSION_ID";

/// The agent for a client named `client`: `tool` when given, else the
/// client's first word; the client's session, else a new one.
pub fn agent_for_client(client: &str, tool: Option<&str>) -> Agent {
    let tool = match tool {
        Some(tool) => Some(tool.to_owned()),
        None => tool_of_client(client),
    };
    let session = std::env::var(CLAUDE_SESSION_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| {
            format!(
                "{}-{}",
                tool.as_deref().unwrap_or("mcp"),
                uuid::Uuid::now_v7().simple()
            )
        });
    Agent {
        tool,
        session: Some(session),
    }
}

/// The tool a client name stands for, when it makes a valid tool name.
pub fn tool_of_client(client: &str) -> Option<String> {
    let word = client
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| !w.is_empty())?;
    tool_name(Some(word)).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_is_the_first_word_of_the_client() {
        assert_eq!(tool_of_client("claude-code").as_deref(), Some("claude"));
        assert_eq!(tool_of_client("codex-mcp-client").as_deref(), Some("codex"));
        assert_eq!(tool_of_client("Cursor VSCode").as_deref(), Some("cursor"));
        assert_eq!(tool_of_client("--"), None);
        assert_eq!(tool_of_client("42-client"), None);
    }

    #[test]
    fn a_given_tool_wins_and_a_session_is_always_set() {
        let agent = agent_for_client("claude-code", Some("mine"));
        assert_eq!(agent.tool.as_deref(), Some("mine"));
        assert!(agent.session.is_some());
    }
}
