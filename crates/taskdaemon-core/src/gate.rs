//! Gates: a tracked task waits until an outside event happens (a supervised
//! task succeeds, a command exits 0, a time passes, a person approves).
//!
//! This module owns the rules: what a gate is, when one opens, when one can
//! never open (and why), and how often a command gate is retried. The store
//! keeps gates and applies these rules; the daemon only decides when to ask.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::Status;
use crate::time::{Millis, serde_rfc3339, to_rfc3339};

/// The first retry of a failing command gate comes after this long.
pub const COMMAND_BACKOFF_START: Duration = Duration::from_secs(1);
/// A failing command gate is retried at least this often.
pub const COMMAND_BACKOFF_CAP: Duration = Duration::from_secs(60);

/// What a gate waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum GateKind {
    /// A supervised process, queue task or loop (by id) succeeds.
    UntilSucceeds,
    /// A shell command exits 0.
    UntilCommand,
    /// A point in time passes.
    Until,
    /// A person runs `task approve`.
    Approval,
}

impl GateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::UntilSucceeds => "until-succeeds",
            GateKind::UntilCommand => "until-command",
            GateKind::Until => "until",
            GateKind::Approval => "approval",
        }
    }
}

impl fmt::Display for GateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            GateKind::UntilSucceeds,
            GateKind::UntilCommand,
            GateKind::Until,
            GateKind::Approval,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown gate kind '{s}'"))
    }
}

/// A gate about to be added to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewGate {
    UntilSucceeds(String),
    UntilCommand(String),
    Until(Millis),
    Approval,
}

impl NewGate {
    pub fn kind(&self) -> GateKind {
        match self {
            NewGate::UntilSucceeds(_) => GateKind::UntilSucceeds,
            NewGate::UntilCommand(_) => GateKind::UntilCommand,
            NewGate::Until(_) => GateKind::Until,
            NewGate::Approval => GateKind::Approval,
        }
    }

    /// The task id or command the gate names, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            NewGate::UntilSucceeds(t) | NewGate::UntilCommand(t) => Some(t),
            NewGate::Until(_) | NewGate::Approval => None,
        }
    }

    pub fn until(&self) -> Option<Millis> {
        match self {
            NewGate::Until(at) => Some(*at),
            _ => None,
        }
    }

    /// Refuses what the store cannot check: an empty id or command.
    pub fn validate(&self) -> Result<(), String> {
        match self.target() {
            Some(t) if t.trim().is_empty() => Err(format!(
                "--{} needs a non-empty value",
                self.kind().as_str()
            )),
            _ => Ok(()),
        }
    }
}

/// Gates as an interface asks for them: the CLI's flags, an MCP tool's
/// arguments, a web request's body. [`GateRequest::gates`] is the one
/// place that turns them into [`NewGate`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct GateRequest {
    /// Wait until these supervised processes, queue tasks or loops succeed.
    pub until_succeeds: Vec<String>,
    /// Wait until each of these shell commands exits 0 (run by the daemon
    /// in the workspace root, retried with backoff).
    pub until_command: Vec<String>,
    /// Wait until this time (RFC 3339, e.g. 2026-12-01T10:00:00Z).
    pub until: Option<String>,
    /// Wait this long from now (e.g. 90s, 2h, 1d).
    pub after: Option<String>,
    /// Wait until a person approves.
    pub approval: bool,
}

impl GateRequest {
    /// The gates asked for, in a stable order (processes, commands, time,
    /// approval); a time given both ways, a bad time, or no gate at all is
    /// refused with the field named.
    pub fn gates(self, now: Millis) -> Result<Vec<NewGate>, String> {
        let time = parse_time_gate(self.until.as_deref(), self.after.as_deref(), now)?;
        let gates: Vec<NewGate> = self
            .until_succeeds
            .into_iter()
            .map(NewGate::UntilSucceeds)
            .chain(self.until_command.into_iter().map(NewGate::UntilCommand))
            .chain(time.map(NewGate::Until))
            .chain(self.approval.then_some(NewGate::Approval))
            .collect();
        if gates.is_empty() {
            return Err(
                "name a gate: until-succeeds, until-command, until, after or approval".to_owned(),
            );
        }
        Ok(gates)
    }
}

/// A gate as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gate {
    pub task_id: String,
    /// The gate's number on its task (1, 2, ...), for `task ungate ID N`.
    pub seq: i64,
    pub kind: GateKind,
    /// The awaited task id or the command.
    pub target: Option<String>,
    #[serde(with = "serde_rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub until: Option<Millis>,
    /// When the awaited event happened; `None` while the gate is shut.
    #[serde(with = "serde_rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub opened_at: Option<Millis>,
    /// Why the gate can never open (its process failed, was killed or lost).
    pub failed: Option<String>,
    /// Command gates: how many runs failed so far, and when to run next.
    pub attempts: u32,
    #[serde(with = "serde_rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_check: Option<Millis>,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
}

/// Where a gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateState {
    Waiting,
    Open,
    /// The awaited event can no longer happen; the task is blocked.
    Never,
}

impl Gate {
    pub fn state(&self) -> GateState {
        if self.opened_at.is_some() {
            GateState::Open
        } else if self.failed.is_some() {
            GateState::Never
        } else {
            GateState::Waiting
        }
    }

    /// A shut gate (waiting or never opening) keeps its task from being ready.
    pub fn is_shut(&self) -> bool {
        self.opened_at.is_none()
    }

    /// One line for humans: `#1 until-succeeds CLAUDE-7: waiting`.
    pub fn describe(&self) -> String {
        let what = match (self.kind, &self.target, self.until) {
            (GateKind::Until, _, Some(at)) => format!("until {}", to_rfc3339(at)),
            (kind, Some(target), _) => format!("{kind} {target}"),
            (kind, _, _) => kind.to_string(),
        };
        let state = match (self.state(), &self.failed) {
            (GateState::Never, Some(reason)) => format!("can never open: {reason}"),
            (GateState::Open, _) => "open".to_owned(),
            _ => "waiting".to_owned(),
        };
        format!("#{} {what}: {state}", self.seq)
    }
}

/// What evaluating a shut gate decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// The event happened.
    Open,
    /// The event can never happen, with the reason.
    Never(String),
    /// A command gate failed this time; run it again at this time.
    Retry { next_check: Millis },
}

/// The rule for an `until-succeeds` gate, given its target's status:
/// `None` while the target has not ended.
pub fn succeeds_outcome(target: &str, status: Status) -> Option<GateOutcome> {
    match status {
        Status::Succeeded => Some(GateOutcome::Open),
        Status::Failed | Status::Cancelled | Status::Lost => {
            Some(GateOutcome::Never(format!("{target} {status}")))
        }
        Status::Pending | Status::Blocked | Status::Running => None,
    }
}

/// The rule for a time gate: open once `now` reaches its time.
pub fn time_outcome(until: Millis, now: Millis) -> Option<GateOutcome> {
    (now >= until).then_some(GateOutcome::Open)
}

/// How long to wait before running a command gate again after `attempts`
/// failed runs: doubling from [`COMMAND_BACKOFF_START`], capped at
/// [`COMMAND_BACKOFF_CAP`].
pub fn command_backoff(attempts: u32) -> Duration {
    let factor = 1u32 << attempts.min(16);
    COMMAND_BACKOFF_START
        .saturating_mul(factor)
        .min(COMMAND_BACKOFF_CAP)
}

/// When a shut gate next needs looking at by time: a time gate at its time,
/// a command gate at its next check; `None` for gates that wait on an event
/// (a process exit, an approval) or can never open.
pub fn due_at(gate: &Gate) -> Option<Millis> {
    if gate.state() != GateState::Waiting {
        return None;
    }
    match gate.kind {
        GateKind::Until => gate.until,
        GateKind::UntilCommand => Some(gate.next_check.unwrap_or(gate.created_at)),
        GateKind::UntilSucceeds | GateKind::Approval => None,
    }
}

/// Why gates block a task for good: each gate that can never open, in
/// words; `None` when every gate may still open.
pub fn blocked_reason(gates: &[Gate]) -> Option<String> {
    let never: Vec<String> = gates
        .iter()
        .filter(|g| g.state() == GateState::Never)
        .map(Gate::describe)
        .collect();
    (!never.is_empty()).then(|| format!("gate {}", never.join("; gate ")))
}

/// The time a `--until` (RFC 3339) or `--after` (a duration from `now`)
/// gate waits for.
pub fn parse_time_gate(
    until: Option<&str>,
    after: Option<&str>,
    now: Millis,
) -> Result<Option<Millis>, String> {
    match (until, after) {
        (Some(_), Some(_)) => Err("give --until or --after, not both".to_owned()),
        (Some(text), None) => chrono::DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|e| {
                format!(
                    "--until '{text}': expected an RFC 3339 time such as 2026-12-01T10:00:00Z ({e})"
                )
            }),
        (None, Some(text)) => crate::duration::parse_duration(text)
            .map(|d| Some(now.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)))
            .map_err(|e| format!("--after: {e}")),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(command_backoff(0), Duration::from_secs(1));
        assert_eq!(command_backoff(3), Duration::from_secs(8));
        assert_eq!(command_backoff(10), COMMAND_BACKOFF_CAP);
        assert_eq!(command_backoff(u32::MAX), COMMAND_BACKOFF_CAP);
    }

    #[test]
    fn succeeds_rule_follows_the_target() {
        assert_eq!(succeeds_outcome("P-1", Status::Running), None);
        assert_eq!(
            succeeds_outcome("P-1", Status::Succeeded),
            Some(GateOutcome::Open)
        );
        assert_eq!(
            succeeds_outcome("P-1", Status::Failed),
            Some(GateOutcome::Never("P-1 failed".to_owned()))
        );
    }

    #[test]
    fn time_gates_parse_until_or_after() {
        assert_eq!(parse_time_gate(None, None, 5), Ok(None));
        assert_eq!(parse_time_gate(None, Some("2s"), 5), Ok(Some(2005)));
        assert_eq!(
            parse_time_gate(Some("1970-01-01T00:00:01Z"), None, 5),
            Ok(Some(1000))
        );
        assert!(
            parse_time_gate(Some("tomorrow"), None, 5)
                .unwrap_err()
                .contains("--until")
        );
        assert!(parse_time_gate(Some("x"), Some("1s"), 5).is_err());
    }

    #[test]
    fn only_a_gate_that_can_never_open_gives_a_reason() {
        let mut gate = Gate {
            task_id: "T-1".into(),
            seq: 1,
            kind: GateKind::UntilSucceeds,
            target: Some("P-2".into()),
            until: None,
            opened_at: None,
            failed: None,
            attempts: 0,
            next_check: None,
            created_at: 0,
        };
        assert_eq!(blocked_reason(std::slice::from_ref(&gate)), None);
        gate.failed = Some("P-2 failed".into());
        let reason = blocked_reason(&[gate]).unwrap();
        assert!(
            reason.contains("until-succeeds P-2: can never open: P-2 failed"),
            "{reason}"
        );
    }

    #[test]
    fn a_request_lists_its_gates_in_order_and_needs_one() {
        let request = GateRequest {
            until_succeeds: vec!["P-1".into()],
            until_command: vec!["test -f x".into()],
            after: Some("2s".into()),
            approval: true,
            ..GateRequest::default()
        };
        assert_eq!(
            request.gates(5),
            Ok(vec![
                NewGate::UntilSucceeds("P-1".into()),
                NewGate::UntilCommand("test -f x".into()),
                NewGate::Until(2005),
                NewGate::Approval,
            ])
        );
        let none = GateRequest::default().gates(5).unwrap_err();
        assert!(none.contains("name a gate"), "{none}");
        let both = GateRequest {
            until: Some("1970-01-01T00:00:01Z".into()),
            after: Some("1s".into()),
            ..GateRequest::default()
        };
        assert!(both.gates(5).is_err());
    }

    #[test]
    fn time_rule_opens_at_its_time() {
        assert_eq!(time_outcome(10, 9), None);
        assert_eq!(time_outcome(10, 10), Some(GateOutcome::Open));
    }
}
