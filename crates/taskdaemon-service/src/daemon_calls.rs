//! Service calls a short-lived process has the running daemon make.
//!
//! A CLI call that opens the store itself spends most of its time before
//! its first row: SQLite parses the whole schema on a new connection and
//! prepares every statement afresh. The daemon's connections did both long
//! ago, so for the calls here (`status`, `rehydrate`, and the agent hooks'
//! session start and compaction marker) the CLI asks the daemon to run the
//! same service method on its store and prints the answer, as pueue's
//! client asks pueued. The daemon passes the calls through unread
//! ([`taskdaemon_daemon::CallHandler`]); this module is both ends, so a
//! call and its answer are defined once.
//!
//! Without a daemon, or with one that does not know a call (it is older
//! than the client), the caller runs the method on a store of its own:
//! same code, same store, same answer.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use taskdaemon_daemon::protocol::{ErrorKind, Request, Response};
use taskdaemon_daemon::{CallError, CallHandler, Client, ClientError};
use taskdaemon_workspace::Workspace;

use crate::{Agent, Result, Service, ServiceError, StatusReport};

/// What a client can have the daemon run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
enum DaemonCall {
    /// [`Service::status`], not detailed (a detailed report's queue rows
    /// carry times that are not serialized).
    Status,
    /// [`Service::rehydrate`]'s Markdown.
    Rehydrate {
        budget: usize,
        session: Option<String>,
        peek: bool,
    },
    /// [`Service::session_start`]: what an agent hook injects.
    SessionStart {
        tool: Option<String>,
        session: Option<String>,
        after_compaction: bool,
        budget: usize,
    },
    /// [`Service::mark_compaction`], answered with nothing.
    MarkCompaction { session: Option<String> },
}

impl DaemonCall {
    /// Whether running the call twice does no harm: it changes nothing, so
    /// when the daemon dies before it answers, the caller runs it itself.
    /// (A rehydrate that is not a peek moves the session's cursor.)
    fn changes_nothing(&self) -> bool {
        match self {
            DaemonCall::Status => true,
            DaemonCall::Rehydrate { peek, .. } => *peek,
            DaemonCall::SessionStart { .. } | DaemonCall::MarkCompaction { .. } => false,
        }
    }

    /// Runs the call on `service`; the answer as JSON.
    fn run(self, service: &Service) -> Result<serde_json::Value> {
        match self {
            DaemonCall::Status => encode(&service.status(false)?),
            DaemonCall::Rehydrate {
                budget,
                session,
                peek,
            } => encode(
                &service
                    .rehydrate(budget, session.as_deref(), peek)?
                    .markdown,
            ),
            DaemonCall::SessionStart {
                tool,
                session,
                after_compaction,
                budget,
            } => {
                let agent = Agent::new(tool.as_deref(), session.as_deref())?;
                encode(&service.session_start(&agent, after_compaction, budget)?)
            }
            DaemonCall::MarkCompaction { session } => {
                service.mark_compaction(session.as_deref())?;
                encode(&())
            }
        }
    }
}

fn encode(answer: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(answer)
        .map_err(|e| ServiceError::Failed(format!("cannot encode the answer: {e}")))
}

impl Service {
    /// What the daemon runs clients' calls with: this service, on the
    /// daemon's own store.
    pub fn call_handler(self: Arc<Self>) -> CallHandler {
        Arc::new(move |call| {
            let call: DaemonCall = serde_json::from_value(call)
                .map_err(|e| CallError::Unknown(format!("not a call this daemon knows: {e}")))?;
            call.run(&self)
                .map_err(|e| CallError::Failed(e.to_string()))
        })
    }

    /// The status report as `workspace`'s running daemon makes it. None
    /// for a `detailed` report and when no daemon can answer: the caller
    /// then makes it with [`Service::status`].
    pub fn status_from_daemon(
        workspace: &Workspace,
        detailed: bool,
    ) -> Result<Option<StatusReport>> {
        if detailed {
            return Ok(None);
        }
        ask(workspace, &DaemonCall::Status)
    }

    /// [`Service::rehydrate`]'s Markdown as `workspace`'s running daemon
    /// renders it. None when no daemon can answer: the caller then renders
    /// it with [`Service::rehydrate`].
    pub fn rehydrate_from_daemon(
        workspace: &Workspace,
        budget: usize,
        session: Option<&str>,
        peek: bool,
    ) -> Result<Option<String>> {
        let call = DaemonCall::Rehydrate {
            budget,
            session: session.map(str::to_owned),
            peek,
        };
        ask(workspace, &call)
    }

    /// [`Service::session_start`]'s text as `workspace`'s running daemon
    /// makes it. None when no daemon can answer: the caller then makes it
    /// with [`Service::session_start`].
    pub fn session_start_from_daemon(
        workspace: &Workspace,
        agent: &Agent,
        after_compaction: bool,
        budget: usize,
    ) -> Result<Option<String>> {
        let call = DaemonCall::SessionStart {
            tool: agent.tool.clone(),
            session: agent.session.clone(),
            after_compaction,
            budget,
        };
        ask(workspace, &call)
    }

    /// Has `workspace`'s running daemon set `session`'s compaction marker;
    /// false when no daemon can: the caller then sets it with
    /// [`Service::mark_compaction`].
    pub fn mark_compaction_in_daemon(workspace: &Workspace, session: Option<&str>) -> Result<bool> {
        let call = DaemonCall::MarkCompaction {
            session: session.map(str::to_owned),
        };
        Ok(ask::<()>(workspace, &call)?.is_some())
    }
}

/// `call`'s answer from `workspace`'s daemon. None when there is nobody to
/// ask (no daemon listens), the daemon cannot run it (it is older than this
/// client), or the connection broke before the answer of a call that
/// changes nothing (the daemon is dying: a killed daemon's listening socket
/// takes connections until its last holder exits). An error when the call
/// ran and failed, or when the connection broke before the answer of a
/// call that may have acted.
fn ask<T: DeserializeOwned>(workspace: &Workspace, call: &DaemonCall) -> Result<Option<T>> {
    let Ok(mut client) = Client::connect(workspace) else {
        return Ok(None);
    };
    let call_changes_nothing = call.changes_nothing();
    let call = encode(call)?;
    match client.request(&Request::Call { call }) {
        Ok(Response::Answer { value }) => serde_json::from_value(value).map(Some).map_err(|e| {
            ServiceError::Failed(format!("the daemon's answer does not read back: {e}"))
        }),
        Ok(other) => Err(ServiceError::Failed(format!(
            "the daemon answered a call with {other:?}"
        ))),
        Err(ClientError::Daemon {
            kind: ErrorKind::Invalid,
            ..
        }) => Ok(None),
        Err(ClientError::Io(_)) if call_changes_nothing => Ok(None),
        Err(e) => Err(ServiceError::Failed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_reads_back_as_written() {
        let call = DaemonCall::Rehydrate {
            budget: 800,
            session: Some("s1".to_owned()),
            peek: true,
        };
        let value = encode(&call).unwrap();
        assert_eq!(value["call"], "rehydrate");
        assert_eq!(serde_json::from_value::<DaemonCall>(value).unwrap(), call);
        let status: DaemonCall =
            serde_json::from_value(encode(&DaemonCall::Status).unwrap()).unwrap();
        assert_eq!(status, DaemonCall::Status);
        let start = DaemonCall::SessionStart {
            tool: Some("claude".to_owned()),
            session: None,
            after_compaction: true,
            budget: 2300,
        };
        let value = encode(&start).unwrap();
        assert_eq!(value["call"], "session_start");
        assert_eq!(serde_json::from_value::<DaemonCall>(value).unwrap(), start);
        assert!(!start.changes_nothing() && DaemonCall::Status.changes_nothing());
    }
}
