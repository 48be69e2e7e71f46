//! Task statuses and the one state machine that says which may follow which.
//!
//! Every store implementation calls [`Status::check_transition`] inside the
//! transaction that changes a status, so an illegal change is an error rather
//! than a silent overwrite, whichever backend or process makes it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, or waiting for a restart after a failed attempt.
    Pending,
    /// Waiting for dependencies that are not done.
    Blocked,
    /// Its process runs (or, for tracked work, someone works on it).
    Running,
    /// Ended with success (exit code 0).
    Succeeded,
    /// Ended with a failure and no restart left.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Its process vanished and no exit status was ever recorded.
    Lost,
}

/// A status change the state machine forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status change for {id}: {from} -> {to}")]
pub struct IllegalTransition {
    pub id: String,
    pub from: Status,
    pub to: Status,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Blocked,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Cancelled,
        Status::Lost,
    ];

    /// The status has ended: nothing runs and nothing will start on its own.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::Cancelled | Status::Lost
        )
    }

    /// Whether `self -> to` is allowed.
    ///
    /// The shape: `pending <-> blocked`, `pending/blocked -> running`,
    /// `running -> pending` (an automatic restart after a failed attempt),
    /// `running -> any end`, `pending -> failed` (could not be started), any non-terminal -> `cancelled`, and any end ->
    /// `pending` (an explicit restart or retry). Nothing goes from one end to
    /// another directly.
    pub fn can_transition_to(self, to: Status) -> bool {
        use Status::*;
        match (self, to) {
            (Pending, Blocked) | (Blocked, Pending) => true,
            (Pending | Blocked, Running) => true,
            (Running, Pending) => true,
            (Running, Succeeded | Failed | Lost) => true,
            (Pending | Blocked | Running, Cancelled) => true,
            // A process that could not be started at all.
            (Pending, Failed) => true,
            (from, Pending) if from.is_terminal() => true,
            _ => false,
        }
    }

    /// [`Self::can_transition_to`] as a `Result` naming the task.
    pub fn check_transition(self, to: Status, id: &str) -> Result<(), IllegalTransition> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(IllegalTransition {
                id: id.to_owned(),
                from: self,
                to,
            })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Blocked => "blocked",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Lost => "lost",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`Status::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status '{0}' (expected pending, blocked, running, succeeded, failed, cancelled or lost)"
)]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, UnknownStatus> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_status() -> impl Strategy<Value = Status> {
        proptest::sample::select(Status::ALL.to_vec())
    }

    #[test]
    fn process_lifecycle_is_legal() {
        use Status::*;
        for (from, to) in [
            (Pending, Running),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Pending),
            (Running, Cancelled),
            (Running, Lost),
            (Failed, Pending),
            (Lost, Pending),
        ] {
            assert!(from.can_transition_to(to), "{from} -> {to}");
        }
    }

    #[test]
    fn ends_do_not_change_into_each_other() {
        let err = Status::Succeeded
            .check_transition(Status::Failed, "TASK-1")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal status change for TASK-1: succeeded -> failed"
        );
        assert!(!Status::Pending.can_transition_to(Status::Succeeded));
        assert!(!Status::Running.can_transition_to(Status::Running));
    }

    proptest! {
        /// Whatever path a task takes, once ended it can only be reopened as pending.
        #[test]
        fn terminal_states_only_reopen(from in any_status(), to in any_status()) {
            if from.is_terminal() && from.can_transition_to(to) {
                prop_assert_eq!(to, Status::Pending);
            }
        }

        /// Success and loss need a running task; failure also covers a start that failed.
        #[test]
        fn results_need_running(from in any_status()) {
            for to in [Status::Succeeded, Status::Lost] {
                prop_assert_eq!(from.can_transition_to(to), from == Status::Running);
            }
            let may_fail = matches!(from, Status::Running | Status::Pending);
            prop_assert_eq!(from.can_transition_to(Status::Failed), may_fail);
        }

        /// No self loops: every accepted change is a real change.
        #[test]
        fn no_self_transitions(s in any_status()) {
            prop_assert!(!s.can_transition_to(s));
        }

        #[test]
        fn names_round_trip(s in any_status()) {
            prop_assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
    }
}
