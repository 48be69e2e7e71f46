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
//! than the client), the method runs on the service the caller opens (the
//! `open` argument of each `*_via_daemon` function): same code, same store,
//! same answer.

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

    /// The status report, made by `workspace`'s running daemon on its
    /// store; a `detailed` one (its queue rows carry times that are not
    /// serialized), or one no daemon can make, by the service `open`
    /// returns.
    pub fn status_via_daemon<E: From<ServiceError>>(
        workspace: &Workspace,
        detailed: bool,
        open: impl FnOnce() -> std::result::Result<Service, E>,
    ) -> std::result::Result<StatusReport, E> {
        if !detailed && let Some(report) = ask(workspace, &DaemonCall::Status)? {
            return Ok(report);
        }
        Ok(open()?.status(detailed)?)
    }

    /// [`Service::rehydrate`]'s Markdown, rendered by `workspace`'s running
    /// daemon; when none can answer, by the service `open` returns.
    pub fn rehydrate_via_daemon<E: From<ServiceError>>(
        workspace: &Workspace,
        budget: usize,
        session: Option<&str>,
        peek: bool,
        open: impl FnOnce() -> std::result::Result<Service, E>,
    ) -> std::result::Result<String, E> {
        let call = DaemonCall::Rehydrate {
            budget,
            session: session.map(str::to_owned),
            peek,
        };
        if let Some(markdown) = ask(workspace, &call)? {
            return Ok(markdown);
        }
        Ok(open()?.rehydrate(budget, session, peek)?.markdown)
    }

    /// [`Service::session_start`]'s text, made by `workspace`'s running
    /// daemon; when none can answer, by the service `open` returns.
    pub fn session_start_via_daemon<E: From<ServiceError>>(
        workspace: &Workspace,
        agent: &Agent,
        after_compaction: bool,
        budget: usize,
        open: impl FnOnce() -> std::result::Result<Service, E>,
    ) -> std::result::Result<String, E> {
        let call = DaemonCall::SessionStart {
            tool: agent.tool.clone(),
            session: agent.session.clone(),
            after_compaction,
            budget,
        };
        if let Some(text) = ask(workspace, &call)? {
            return Ok(text);
        }
        Ok(open()?.session_start(agent, after_compaction, budget)?)
    }

    /// Sets `session`'s compaction marker ([`Service::mark_compaction`])
    /// through `workspace`'s running daemon; when none can, through the
    /// service `open` returns.
    pub fn mark_compaction_via_daemon<E: From<ServiceError>>(
        workspace: &Workspace,
        session: Option<&str>,
        open: impl FnOnce() -> std::result::Result<Service, E>,
    ) -> std::result::Result<(), E> {
        let call = DaemonCall::MarkCompaction {
            session: session.map(str::to_owned),
        };
        if ask::<()>(workspace, &call)?.is_none() {
            open()?.mark_compaction(session)?;
        }
        Ok(())
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
