//! The append-only audit record of every state change.
//!
//! History, rehydrate's "since last time" and (later) the live feeds are all
//! views of these events, so each change writes exactly one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::{Millis, serde_rfc3339};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Started,
    /// The process exited and will be started again.
    Restarting,
    /// The process ended for good (succeeded, failed or cancelled).
    Exited,
    /// A start that never produced a process.
    StartFailed,
    StopRequested,
    /// A restart requested by a user.
    RestartRequested,
    /// The daemon took over watching a process after its own restart.
    Adopted,
    Lost,
    /// Something needs attention, e.g. a hang.
    Alert,
    AlertCleared,
    /// A waiting task has dependencies that are not done.
    Blocked,
    /// Every dependency of a blocked task is done.
    Unblocked,
    DependencyAdded,
    DependencyRemoved,
    /// Files or notes about the work on a tracked task changed.
    ContextUpdated,
    /// A tracked task ended: done, failed or cancelled.
    Finished,
    /// A tracked task's title, description, priority or labels changed.
    Edited,
    /// A memory was recorded or replaced.
    Remembered,
    SessionEnded,
    /// A loop iteration started.
    IterationStarted,
    /// A loop iteration ended; the message carries the validation result.
    IterationFinished,
    /// The daemon loaded a new version of the loop types (`taskdaemon.yml`).
    ConfigLoaded,
    /// A plan was created (`new-plan`).
    PlanCreated,
    /// The plan loop handed over the plan's title, summary and body.
    PlanSubmitted,
    /// A plan's status changed (approve, cancel, resume, the driver).
    PlanStatus,
    SpecCreated,
    SpecStatus,
    PhaseCreated,
    PhaseStatus,
    /// A coordinator message was sent.
    MessageSent,
    MessageDelivered,
    /// A query got its answer.
    MessageAnswered,
    /// A message could not be delivered and went to the dead letters.
    MessageDead,
    /// A typed link between two tracked tasks was made (`task link`).
    LinkAdded,
    /// Typed links between two tracked tasks were removed (`task unlink`).
    LinkRemoved,
    /// A gate was added to a tracked task.
    GateAdded,
    /// Gates were removed from a tracked task.
    GateRemoved,
    /// A gate's event happened (its process succeeded, its command exited 0,
    /// its time passed, a person approved).
    GateOpened,
    /// A gate can never open (its process failed, was cancelled or lost).
    GateFailed,
    /// An agent renewed its claim on a task, or took over a stale one.
    ClaimRenewed,
}

impl EventKind {
    pub const ALL: [EventKind; 41] = [
        EventKind::Created,
        EventKind::Started,
        EventKind::Restarting,
        EventKind::Exited,
        EventKind::StartFailed,
        EventKind::StopRequested,
        EventKind::RestartRequested,
        EventKind::Adopted,
        EventKind::Lost,
        EventKind::Alert,
        EventKind::AlertCleared,
        EventKind::Blocked,
        EventKind::Unblocked,
        EventKind::DependencyAdded,
        EventKind::DependencyRemoved,
        EventKind::ContextUpdated,
        EventKind::Finished,
        EventKind::Edited,
        EventKind::Remembered,
        EventKind::SessionEnded,
        EventKind::IterationStarted,
        EventKind::IterationFinished,
        EventKind::ConfigLoaded,
        EventKind::PlanCreated,
        EventKind::PlanSubmitted,
        EventKind::PlanStatus,
        EventKind::SpecCreated,
        EventKind::SpecStatus,
        EventKind::PhaseCreated,
        EventKind::PhaseStatus,
        EventKind::MessageSent,
        EventKind::MessageDelivered,
        EventKind::MessageAnswered,
        EventKind::MessageDead,
        EventKind::LinkAdded,
        EventKind::LinkRemoved,
        EventKind::GateAdded,
        EventKind::GateRemoved,
        EventKind::GateOpened,
        EventKind::GateFailed,
        EventKind::ClaimRenewed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Started => "started",
            EventKind::Restarting => "restarting",
            EventKind::Exited => "exited",
            EventKind::StartFailed => "start_failed",
            EventKind::StopRequested => "stop_requested",
            EventKind::RestartRequested => "restart_requested",
            EventKind::Adopted => "adopted",
            EventKind::Lost => "lost",
            EventKind::Alert => "alert",
            EventKind::AlertCleared => "alert_cleared",
            EventKind::Blocked => "blocked",
            EventKind::Unblocked => "unblocked",
            EventKind::DependencyAdded => "dependency_added",
            EventKind::DependencyRemoved => "dependency_removed",
            EventKind::ContextUpdated => "context_updated",
            EventKind::Finished => "finished",
            EventKind::Edited => "edited",
            EventKind::Remembered => "remembered",
            EventKind::SessionEnded => "session_ended",
            EventKind::IterationStarted => "iteration_started",
            EventKind::IterationFinished => "iteration_finished",
            EventKind::ConfigLoaded => "config_loaded",
            EventKind::PlanCreated => "plan_created",
            EventKind::PlanSubmitted => "plan_submitted",
            EventKind::PlanStatus => "plan_status",
            EventKind::SpecCreated => "spec_created",
            EventKind::SpecStatus => "spec_status",
            EventKind::PhaseCreated => "phase_created",
            EventKind::PhaseStatus => "phase_status",
            EventKind::MessageSent => "message_sent",
            EventKind::MessageDelivered => "message_delivered",
            EventKind::MessageAnswered => "message_answered",
            EventKind::MessageDead => "message_dead",
            EventKind::LinkAdded => "link_added",
            EventKind::LinkRemoved => "link_removed",
            EventKind::GateAdded => "gate_added",
            EventKind::GateRemoved => "gate_removed",
            EventKind::GateOpened => "gate_opened",
            EventKind::GateFailed => "gate_failed",
            EventKind::ClaimRenewed => "claim_renewed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| format!("unknown event kind '{text}'"))
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    /// Who made the change: `cli`, `daemon`, `shim`, `watchdog`.
    pub actor: String,
    pub message: String,
}

impl NewEvent {
    pub fn new(kind: EventKind, actor: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            actor: actor.to_owned(),
            message: message.into(),
        }
    }
}

/// An appended event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Position in the log; increases with every event.
    pub seq: i64,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Millis,
    pub task_id: Option<String>,
    pub actor: String,
    pub kind: EventKind,
    pub message: String,
    /// The changed fields before the change.
    pub before: Option<serde_json::Value>,
    /// The changed fields after the change.
    pub after: Option<serde_json::Value>,
}
