//! Who acts on tracked work: an agent's tool (for id prefixes) and session.

use taskdaemon_core::id::normalize_tool;
use taskdaemon_store::Store;

use crate::{Result, Service, ServiceError};

/// Validates and normalises a tool name (`Claude` and `claude` are one tool).
pub fn tool_name(tool: Option<&str>) -> Result<Option<String>> {
    tool.map(normalize_tool)
        .transpose()
        .map_err(|e| ServiceError::BadInput(e.to_string()))
}

/// The agent acting on tracked work: its tool (for id prefixes) and session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    pub tool: Option<String>,
    pub session: Option<String>,
}

impl Agent {
    /// Checks the tool and session given by an interface.
    pub fn new(tool: Option<&str>, session: Option<&str>) -> Result<Self> {
        let session = session.map(str::trim);
        if session == Some("") {
            return Err(ServiceError::BadInput(
                "--session must not be empty".to_owned(),
            ));
        }
        Ok(Self {
            tool: tool_name(tool)?,
            session: session.map(str::to_owned),
        })
    }

    /// An agent that is only a session (ending it, for example).
    pub fn session(session: &str) -> Self {
        Self {
            tool: None,
            session: Some(session.to_owned()),
        }
    }

    /// Who the events name: `cli`, or `cli:SESSION` for an agent's session.
    pub fn actor(&self) -> String {
        match &self.session {
            Some(session) => format!("cli:{session}"),
            None => "cli".to_owned(),
        }
    }

    /// Records that the session is active, if there is one, and renews
    /// the leases of the tasks it claimed.
    pub(crate) fn touch(&self, store: &dyn Store) -> Result<()> {
        if let Some(session) = &self.session {
            store.touch_session(session, self.tool.as_deref())?;
            crate::links::renew(self, store)?;
        }
        Ok(())
    }
}

impl Service {
    /// Records that the agent's session is active (a session start, a
    /// client connecting); nothing for an agent without a session.
    pub fn begin_session(&self, agent: &Agent) -> Result<()> {
        agent.touch(&*self.store)
    }
}
