//! Supervised processes: identity, exit outcomes and the restart policy.
//!
//! A PID alone does not name a process: the kernel recycles PIDs. A
//! [`ProcessIdentity`] adds the boot and the start time so that a recycled PID
//! is recognised and never signalled. What happens after an exit (succeeded,
//! failed, restart after a backoff, cancelled) is decided by [`decide_after_exit`]
//! and nowhere else.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::Status;

/// `(boot_id, pid, start_time)`: names one process for the life of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// `/proc/sys/kernel/random/boot_id`; differs after a reboot.
    pub boot_id: String,
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat`: start time in clock ticks since boot.
    pub start_time: u64,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitOutcome {
    /// The exit code, when the process exited on its own.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
}

impl ExitOutcome {
    pub fn exited(code: i32) -> Self {
        Self {
            code: Some(code),
            signal: None,
        }
    }

    pub fn signalled(signal: i32) -> Self {
        Self {
            code: None,
            signal: Some(signal),
        }
    }

    /// The outcome stored as an exit code and a signal: none until either is.
    pub fn from_parts(code: Option<i32>, signal: Option<i32>) -> Option<Self> {
        (code.is_some() || signal.is_some()).then_some(Self { code, signal })
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The code a shell would report: the exit code, or 128 + signal.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }
}

impl fmt::Display for ExitOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit {code}"),
            (None, Some(signal)) => write!(f, "signal {signal}"),
            (None, None) => f.write_str("unknown exit"),
        }
    }
}

/// When a supervised command is started again after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    /// Never restart.
    #[default]
    Never,
    /// Restart after a non-zero exit or a signal.
    OnFailure,
    /// Restart after any exit.
    Always,
}

impl RestartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartMode::Never => "never",
            RestartMode::OnFailure => "on-failure",
            RestartMode::Always => "always",
        }
    }
}

impl FromStr for RestartMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "never" | "no" => Ok(RestartMode::Never),
            "on-failure" => Ok(RestartMode::OnFailure),
            "always" => Ok(RestartMode::Always),
            other => Err(format!(
                "unknown restart mode '{other}' (expected never, on-failure or always)"
            )),
        }
    }
}

/// Restart mode plus limits and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// How many restarts are allowed in all.
    pub max_restarts: u32,
    /// Delay before the first restart; it doubles each time up to [`Self::MAX_BACKOFF`].
    #[serde(with = "millis_duration")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub initial_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            mode: RestartMode::Never,
            max_restarts: 0,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

impl RestartPolicy {
    /// The longest wait between two restarts.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

    /// The delay before restart number `restart` (1-based): exponential, capped.
    pub fn backoff(&self, restart: u32) -> Duration {
        let exponent = restart.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(Self::MAX_BACKOFF)
    }
}

/// What to do once a supervised process has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDecision {
    /// Record this final status.
    Finish(Status),
    /// Go back to pending and start again after `delay`; this is restart number `restart`.
    Restart { restart: u32, delay: Duration },
}

/// Decides the consequence of an exit, given how many restarts were already made
/// and whether someone asked the process to stop.
pub fn decide_after_exit(
    policy: &RestartPolicy,
    restarts_done: u32,
    outcome: ExitOutcome,
    stop_requested: bool,
) -> ExitDecision {
    if stop_requested {
        return ExitDecision::Finish(Status::Cancelled);
    }
    let wants_restart = match policy.mode {
        RestartMode::Never => false,
        RestartMode::OnFailure => !outcome.success(),
        RestartMode::Always => true,
    };
    if wants_restart && restarts_done < policy.max_restarts {
        let restart = restarts_done + 1;
        return ExitDecision::Restart {
            restart,
            delay: policy.backoff(restart),
        };
    }
    ExitDecision::Finish(if outcome.success() {
        Status::Succeeded
    } else {
        Status::Failed
    })
}

/// Decides the consequence of an attempt whose worker vanished (its lease
/// expired: the worker was killed or its host was lost). The attempt counts
/// like a failed one: another follows while restarts are left, else the task
/// is `lost`, since no exit status was ever recorded. A requested stop wins.
pub fn decide_after_lost_attempt(
    policy: &RestartPolicy,
    restarts_done: u32,
    stop_requested: bool,
) -> ExitDecision {
    if stop_requested {
        return ExitDecision::Finish(Status::Cancelled);
    }
    if policy.mode != RestartMode::Never && restarts_done < policy.max_restarts {
        let restart = restarts_done + 1;
        return ExitDecision::Restart {
            restart,
            delay: policy.backoff(restart),
        };
    }
    ExitDecision::Finish(Status::Lost)
}

mod millis_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn on_failure(max: u32) -> RestartPolicy {
        RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: max,
            initial_backoff: Duration::from_millis(100),
        }
    }

    #[test]
    fn a_lost_attempt_counts_towards_the_limit() {
        let policy = on_failure(1);
        assert!(matches!(
            decide_after_lost_attempt(&policy, 0, false),
            ExitDecision::Restart { restart: 1, .. }
        ));
        assert_eq!(
            decide_after_lost_attempt(&policy, 1, false),
            ExitDecision::Finish(Status::Lost)
        );
        assert_eq!(
            decide_after_lost_attempt(&policy, 0, true),
            ExitDecision::Finish(Status::Cancelled)
        );
        assert_eq!(
            decide_after_lost_attempt(&RestartPolicy::default(), 0, false),
            ExitDecision::Finish(Status::Lost)
        );
    }

    #[test]
    fn failure_restarts_until_the_limit() {
        let policy = on_failure(2);
        let fail = ExitOutcome::exited(3);
        assert_eq!(
            decide_after_exit(&policy, 0, fail, false),
            ExitDecision::Restart {
                restart: 1,
                delay: Duration::from_millis(100)
            }
        );
        assert_eq!(
            decide_after_exit(&policy, 1, fail, false),
            ExitDecision::Restart {
                restart: 2,
                delay: Duration::from_millis(200)
            }
        );
        assert_eq!(
            decide_after_exit(&policy, 2, fail, false),
            ExitDecision::Finish(Status::Failed)
        );
    }

    #[test]
    fn success_and_stop_requests_end_it() {
        let policy = on_failure(5);
        assert_eq!(
            decide_after_exit(&policy, 0, ExitOutcome::exited(0), false),
            ExitDecision::Finish(Status::Succeeded)
        );
        assert_eq!(
            decide_after_exit(&policy, 0, ExitOutcome::signalled(15), true),
            ExitDecision::Finish(Status::Cancelled)
        );
    }

    #[test]
    fn shell_codes_follow_convention() {
        assert_eq!(ExitOutcome::exited(7).shell_code(), 7);
        assert_eq!(ExitOutcome::signalled(9).shell_code(), 137);
    }

    proptest! {
        #[test]
        fn backoff_is_monotonic_and_capped(initial_ms in 1u64..10_000, n in 1u32..100) {
            let policy = RestartPolicy { initial_backoff: Duration::from_millis(initial_ms), ..on_failure(100) };
            prop_assert!(policy.backoff(n) <= policy.backoff(n + 1));
            prop_assert!(policy.backoff(n) <= RestartPolicy::MAX_BACKOFF);
        }

        #[test]
        fn never_more_restarts_than_allowed(max in 0u32..10, done in 0u32..20, code in -1i32..3, always in any::<bool>()) {
            let policy = RestartPolicy { mode: if always { RestartMode::Always } else { RestartMode::OnFailure }, ..on_failure(max) };
            if let ExitDecision::Restart { restart, .. } = decide_after_exit(&policy, done, ExitOutcome::exited(code), false) {
                prop_assert!(restart <= max);
                prop_assert_eq!(restart, done + 1);
            }
        }
    }
}
