//! Tool profiles: how many tools the server offers. Every tool's schema sits
//! in the agent's context, so an agent that only tracks work can ask for the
//! `core` set (`--profile core` or `TASKDAEMON_MCP_PROFILE=core`).

use std::fmt;
use std::str::FromStr;

/// Which tools the server lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolProfile {
    /// Tracked work and the few process tools an agent needs every turn.
    Core,
    /// Core, plus links, gates, process control, search and history.
    Standard,
    /// Every tool (queues and loops too).
    #[default]
    All,
}

const CORE: &[&str] = &[
    "rehydrate",
    "spawn",
    "ps",
    "logs",
    "wait",
    "task_add",
    "task_list",
    "task_ready",
    "task_next",
    "task_claim",
    "task_done",
    "remember",
];

const STANDARD: &[&str] = &[
    "kill",
    "restart",
    "task_start",
    "task_fail",
    "task_resume",
    "task_context",
    "task_link",
    "task_unlink",
    "task_gate",
    "task_gates",
    "task_approve",
    "search",
    "history",
];

impl ToolProfile {
    /// Whether the profile offers the tool `name`.
    pub fn offers(self, name: &str) -> bool {
        match self {
            ToolProfile::Core => CORE.contains(&name),
            ToolProfile::Standard => CORE.contains(&name) || STANDARD.contains(&name),
            ToolProfile::All => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ToolProfile::Core => "core",
            ToolProfile::Standard => "standard",
            ToolProfile::All => "all",
        }
    }
}

impl fmt::Display for ToolProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ToolProfile {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [ToolProfile::Core, ToolProfile::Standard, ToolProfile::All]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                format!("unknown tool profile '{text}' (expected core, standard or all)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_nest() {
        assert!(ToolProfile::Core.offers("task_next"));
        assert!(!ToolProfile::Core.offers("task_link"));
        assert!(ToolProfile::Standard.offers("task_link"));
        assert!(!ToolProfile::Core.offers("task_gate"));
        assert!(ToolProfile::Standard.offers("task_gate"));
        assert!(!ToolProfile::Standard.offers("loop_run"));
        assert!(ToolProfile::All.offers("loop_run"));
        assert_eq!("Standard".parse(), Ok(ToolProfile::Standard));
        assert!("most".parse::<ToolProfile>().is_err());
    }
}
