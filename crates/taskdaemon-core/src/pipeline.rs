//! The Plan -> Spec -> Phase pipeline as data: statuses and the one state
//! machine they follow, the records the store keeps, what creates them, the
//! rules a model's structure must obey (spec names, a spec DAG), and the
//! coordinator's durable messages.
//!
//! Nothing here runs anything: the store applies these rules inside its
//! transactions, the daemon's driver decides when to call the store.
//! Ids: a plan is `PLAN-N` (the workspace's one id counter), a spec is
//! `PLAN-N/name`, a phase `PLAN-N/name/K` (K counts from 1 within a spec).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::graph::{EdgeError, check_new_edge};
use crate::id::HumanId;
use crate::time::{Millis, serde_rfc3339};

/// The tool name plans get their id prefix from: `PLAN-N`.
pub const PLAN_TOOL: &str = "plan";

/// Longest spec name.
pub const MAX_NAME_LEN: usize = 48;

/// Longest phase name, in bytes (a phase name is free text on one line).
pub const MAX_PHASE_NAME_BYTES: usize = 100;

/// Where a plan, spec or phase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PipelineStatus {
    /// A plan waiting for `plan approve`.
    Draft,
    /// Approved or created, waiting for the scheduler.
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Cannot go on until something else changes (e.g. a dependency failed).
    Blocked,
    /// Stopped by a merge conflict or on request; `plan resume` continues it.
    Paused,
}

impl PipelineStatus {
    pub const ALL: [PipelineStatus; 8] = [
        PipelineStatus::Draft,
        PipelineStatus::Pending,
        PipelineStatus::Running,
        PipelineStatus::Succeeded,
        PipelineStatus::Failed,
        PipelineStatus::Cancelled,
        PipelineStatus::Blocked,
        PipelineStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PipelineStatus::Draft => "draft",
            PipelineStatus::Pending => "pending",
            PipelineStatus::Running => "running",
            PipelineStatus::Succeeded => "succeeded",
            PipelineStatus::Failed => "failed",
            PipelineStatus::Cancelled => "cancelled",
            PipelineStatus::Blocked => "blocked",
            PipelineStatus::Paused => "paused",
        }
    }

    /// Nothing can follow: the work is done or abandoned for good.
    pub fn is_final(self) -> bool {
        matches!(self, PipelineStatus::Succeeded | PipelineStatus::Cancelled)
    }

    /// Work in this status has not finished (a failed one may still be resumed).
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            PipelineStatus::Succeeded | PipelineStatus::Cancelled | PipelineStatus::Failed
        )
    }

    /// Whether `self -> to` is allowed: the one table for plans, specs and phases.
    ///
    /// `draft -> pending` is approval; `running -> pending` puts work back
    /// after the daemon died under it; `failed/paused -> pending` is resume;
    /// `succeeded` and `cancelled` are final. Draft is never re-entered.
    pub fn can_transition_to(self, to: PipelineStatus) -> bool {
        use PipelineStatus::*;
        matches!(
            (self, to),
            (Draft, Pending | Cancelled)
                | (Pending, Running | Blocked | Failed | Cancelled)
                | (Blocked, Pending | Failed | Cancelled)
                | (
                    Running,
                    Succeeded | Failed | Cancelled | Paused | Pending | Blocked
                )
                | (Paused, Pending | Running | Failed | Cancelled)
                | (Failed, Pending | Cancelled)
        )
    }

    /// [`Self::can_transition_to`] as a `Result` naming the work and both states.
    pub fn check_transition(
        self,
        to: PipelineStatus,
        id: &str,
    ) -> Result<(), IllegalPipelineTransition> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(IllegalPipelineTransition {
                id: id.to_owned(),
                from: self,
                to,
            })
        }
    }
}

impl fmt::Display for PipelineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PipelineStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        PipelineStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!(
                    "unknown pipeline status '{text}' (expected draft, pending, running, \
                     succeeded, failed, cancelled, blocked or paused)"
                )
            })
    }
}

/// A status change the pipeline's state machine forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status change for {id}: {from} -> {to}")]
pub struct IllegalPipelineTransition {
    pub id: String,
    pub from: PipelineStatus,
    pub to: PipelineStatus,
}

/// Structure a model or a person handed over that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "invalid {what} name '{name}': use 1 to {MAX_NAME_LEN} lower-case letters, digits or '-', starting with a letter or digit"
    )]
    InvalidName { what: &'static str, name: String },
    #[error("'{0}' is reserved for message addressing: choose another spec name")]
    ReservedName(String),
    #[error("invalid phase name '{0}': use one line of at most {MAX_PHASE_NAME_BYTES} bytes")]
    InvalidPhaseName(String),
    #[error("spec '{0}' is given twice")]
    DuplicateSpec(String),
    #[error("phase '{0}' is given twice")]
    DuplicatePhase(String),
    #[error("spec '{spec}' depends on '{missing}', which is not a spec of this plan")]
    UnknownDependency { spec: String, missing: String },
    #[error("spec '{0}' cannot depend on itself")]
    SelfDependency(String),
    #[error("the specs' dependencies form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error(
        "invalid pipeline id '{0}': expected PLAN-N, PLAN-N/spec or PLAN-N/spec/K such as PLAN-3/auth/2"
    )]
    InvalidId(String),
}

/// Checks a name in the spec-name form: `[a-z0-9][a-z0-9-]*`, at most 48 characters.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), PipelineError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(PipelineError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

/// Checks a spec's name: the name form of [`validate_name`], and not one
/// of the message targets ([`HUMAN`], [`BROADCAST`]).
pub fn validate_spec_name(name: &str) -> Result<(), PipelineError> {
    validate_name("spec", name)?;
    if name == HUMAN || name == BROADCAST {
        return Err(PipelineError::ReservedName(name.to_owned()));
    }
    Ok(())
}

/// Checks a phase's name: one line of at most [`MAX_PHASE_NAME_BYTES`]
/// (phases are addressed by number; the name is a label).
pub fn validate_phase_name(name: &str) -> Result<(), PipelineError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.contains(['\n', '\r']) || trimmed.len() > MAX_PHASE_NAME_BYTES
    {
        return Err(PipelineError::InvalidPhaseName(name.to_owned()));
    }
    Ok(())
}

/// The id of plan number `number`: `PLAN-7`.
pub fn plan_id(number: u64) -> String {
    // The prefix is a constant that passes the tool-name rule.
    HumanId::for_tool(Some(PLAN_TOOL), number)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| format!("PLAN-{number}"))
}

/// The number in a plan id (`PLAN-7` is 7).
pub fn plan_number(id: &str) -> Option<u64> {
    match id.parse::<PipelineRef>().ok()? {
        PipelineRef::Plan(plan) => plan.parse::<HumanId>().ok().map(|h| h.number()),
        _ => None,
    }
}

/// The git branch of a spec: `td/PLAN-3/auth`.
pub fn spec_branch(plan: &str, spec: &str) -> String {
    format!("td/{plan}/{spec}")
}

/// A spec's worktree, relative to the workspace root.
pub fn spec_worktree(plan: &str, spec: &str) -> String {
    format!(".taskdaemon/worktrees/{plan}/{spec}")
}

/// What a pipeline id names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PipelineRef {
    Plan(String),
    Spec {
        plan: String,
        spec: String,
    },
    Phase {
        plan: String,
        spec: String,
        number: u32,
    },
}

impl PipelineRef {
    /// The plan's id.
    pub fn plan(&self) -> &str {
        match self {
            PipelineRef::Plan(plan)
            | PipelineRef::Spec { plan, .. }
            | PipelineRef::Phase { plan, .. } => plan,
        }
    }
}

impl fmt::Display for PipelineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineRef::Plan(plan) => f.write_str(plan),
            PipelineRef::Spec { plan, spec } => write!(f, "{plan}/{spec}"),
            PipelineRef::Phase { plan, spec, number } => write!(f, "{plan}/{spec}/{number}"),
        }
    }
}

impl FromStr for PipelineRef {
    type Err = PipelineError;

    /// Parses `PLAN-N`, `PLAN-N/spec` or `PLAN-N/spec/K`; the plan part is
    /// case-insensitive (`plan-3` is `PLAN-3`).
    fn from_str(text: &str) -> Result<Self, PipelineError> {
        let invalid = || PipelineError::InvalidId(text.to_owned());
        let mut parts = text.split('/');
        let plan = parts.next().ok_or_else(invalid)?;
        let plan: HumanId = plan.parse().map_err(|_| invalid())?;
        if plan.prefix() != "PLAN" {
            return Err(invalid());
        }
        let plan = plan.to_string();
        let Some(spec) = parts.next() else {
            return Ok(PipelineRef::Plan(plan));
        };
        validate_name("spec", spec).map_err(|_| invalid())?;
        let spec = spec.to_owned();
        let Some(number) = parts.next() else {
            return Ok(PipelineRef::Spec { plan, spec });
        };
        let number: u32 = number.parse().ok().filter(|n| *n > 0).ok_or_else(invalid)?;
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(PipelineRef::Phase { plan, spec, number })
    }
}

/// Tokens and money spent; a spec's totals include its phases', a plan's its specs'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineCost {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl PipelineCost {
    pub fn is_zero(&self) -> bool {
        self.input_tokens == 0 && self.output_tokens == 0 && self.cost_usd == 0.0
    }

    /// What one loop iteration spent.
    pub fn of_iteration(it: &crate::LoopIteration) -> Self {
        PipelineCost {
            input_tokens: it.input_tokens,
            output_tokens: it.output_tokens,
            cost_usd: it.cost_usd,
        }
    }
}

/// A plan about to be created by `new-plan`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPlan {
    /// The user's request: what the plan loop is asked to plan.
    pub goal: String,
    /// Known up front only when a person wrote the plan; the plan loop's
    /// `submit_plan` sets them otherwise.
    pub title: Option<String>,
    pub summary: Option<String>,
    pub body: Option<String>,
    /// The branch specs are merged into.
    pub target_branch: String,
    /// The commit of the target branch the plan starts from.
    pub base_commit: String,
    /// Skip `plan approve`: the plan is created `pending`.
    pub auto_approve: bool,
}

impl NewPlan {
    /// Checks what the store cannot: a goal, a branch, a commit.
    pub fn validate(&self) -> Result<(), PipelineError> {
        if self.goal.trim().is_empty() {
            return Err(PipelineError::Empty("a plan's goal"));
        }
        if self.target_branch.trim().is_empty() {
            return Err(PipelineError::Empty("a plan's target branch"));
        }
        if self.base_commit.trim().is_empty() {
            return Err(PipelineError::Empty("a plan's base commit"));
        }
        Ok(())
    }

    /// The status a new plan starts in.
    pub fn initial_status(&self) -> PipelineStatus {
        if self.auto_approve {
            PipelineStatus::Pending
        } else {
            PipelineStatus::Draft
        }
    }
}

/// What the plan loop's `submit_plan {title, summary, body}` hands over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanContent {
    pub title: String,
    pub summary: String,
    pub body: String,
}

impl PlanContent {
    pub fn validate(&self) -> Result<(), PipelineError> {
        if self.title.trim().is_empty() {
            return Err(PipelineError::Empty("a plan's title"));
        }
        if self.body.trim().is_empty() {
            return Err(PipelineError::Empty("a plan's body"));
        }
        Ok(())
    }
}

/// A spec the spec loop's `create_spec` hands over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSpec {
    pub name: String,
    pub title: String,
    pub body: String,
    /// Names of specs of the same plan that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
}

impl NewSpec {
    /// Whether `existing` holds the same content, so adding this again is a no-op
    /// (dependency order does not matter).
    pub fn same_as(&self, existing: &SpecRecord) -> bool {
        let sorted = |deps: &[String]| {
            let mut deps = deps.to_vec();
            deps.sort();
            deps.dedup();
            deps
        };
        self.title == existing.title
            && self.body == existing.body
            && self.priority == existing.priority
            && sorted(&self.depends_on) == sorted(&existing.depends_on)
    }
}

/// A phase the phase loop's `create_phase` hands over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPhase {
    pub name: String,
    pub title: String,
    pub body: String,
    /// A shell command run in the spec's worktree; exit 0 means the phase is done.
    pub validation: String,
}

impl NewPhase {
    pub fn validate(&self) -> Result<(), PipelineError> {
        validate_phase_name(&self.name)?;
        if self.title.trim().is_empty() {
            return Err(PipelineError::Empty("a phase's title"));
        }
        if self.validation.trim().is_empty() {
            return Err(PipelineError::Empty("a phase's validation command"));
        }
        Ok(())
    }

    pub fn same_as(&self, existing: &PhaseRecord) -> bool {
        self.title == existing.title
            && self.body == existing.body
            && self.validation == existing.validation
    }
}

/// Checks a set of new specs against the specs a plan has: valid and
/// distinct names, dependencies that exist (in the plan or in the set), and
/// no cycle. `existing` gives each existing spec's name and dependencies.
///
/// The cycle check uses the dependency graph's own rule, edge by edge, so
/// the refusal names the loop (`a -> b -> a`).
pub fn validate_spec_set(
    existing: &[(String, Vec<String>)],
    new: &[NewSpec],
) -> Result<(), PipelineError> {
    let mut graph: HashMap<String, Vec<String>> = existing.iter().cloned().collect();
    let mut names: HashSet<&str> = HashSet::new();
    for spec in new {
        validate_spec_name(&spec.name)?;
        if spec.title.trim().is_empty() {
            return Err(PipelineError::Empty("a spec's title"));
        }
        if !names.insert(&spec.name) {
            return Err(PipelineError::DuplicateSpec(spec.name.clone()));
        }
    }
    for spec in new {
        for dep in &spec.depends_on {
            if !graph.contains_key(dep) && !names.contains(dep.as_str()) {
                return Err(PipelineError::UnknownDependency {
                    spec: spec.name.clone(),
                    missing: dep.clone(),
                });
            }
        }
        graph.entry(spec.name.clone()).or_default();
    }
    for spec in new {
        for dep in &spec.depends_on {
            let lookup = |name: &str| {
                Ok::<_, std::convert::Infallible>(graph.get(name).cloned().unwrap_or_default())
            };
            match check_new_edge(&spec.name, dep, lookup) {
                Ok(Ok(())) => {}
                Ok(Err(EdgeError::SelfDependency(name))) => {
                    return Err(PipelineError::SelfDependency(name));
                }
                Ok(Err(EdgeError::Cycle { cycle, .. })) => return Err(PipelineError::Cycle(cycle)),
                Err(never) => match never {},
            }
            let edges = graph.entry(spec.name.clone()).or_default();
            if !edges.contains(dep) {
                edges.push(dep.clone());
            }
        }
    }
    Ok(())
}

/// A plan as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanRecord {
    /// `PLAN-N`.
    pub id: String,
    pub goal: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub body: Option<String>,
    pub status: PipelineStatus,
    pub target_branch: String,
    pub base_commit: String,
    pub auto_approve: bool,
    /// Why it failed, paused or was cancelled.
    pub note: Option<String>,
    /// The loop task running its plan or spec loop, if any.
    pub loop_task: Option<String>,
    /// Its own loops' spending plus every spec's.
    pub cost: PipelineCost,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
}

impl PlanRecord {
    /// The title, or the goal's first line while the plan has none.
    pub fn display_title(&self) -> &str {
        match &self.title {
            Some(title) => title,
            None => self.goal.lines().next().unwrap_or_default(),
        }
    }
}

/// A spec as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpecRecord {
    /// `PLAN-N/name`.
    pub id: String,
    pub plan: String,
    pub name: String,
    pub title: String,
    pub body: String,
    pub status: PipelineStatus,
    pub priority: i32,
    pub depends_on: Vec<String>,
    /// `td/PLAN-N/name`.
    pub branch: String,
    /// Relative to the workspace root.
    pub worktree: String,
    pub note: Option<String>,
    pub loop_task: Option<String>,
    pub cost: PipelineCost,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
}

/// A phase as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhaseRecord {
    /// `PLAN-N/spec/K`.
    pub id: String,
    pub plan: String,
    pub spec: String,
    /// 1-based, in creation order within the spec; phases run in this order.
    pub number: u32,
    pub name: String,
    pub title: String,
    pub body: String,
    pub validation: String,
    pub status: PipelineStatus,
    pub note: Option<String>,
    pub loop_task: Option<String>,
    pub cost: PipelineCost,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
}

/// A spec with its phases, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpecTree {
    #[serde(flatten)]
    pub spec: SpecRecord,
    pub phases: Vec<PhaseRecord>,
}

/// A plan with its specs (in creation order) and their phases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanTree {
    #[serde(flatten)]
    pub plan: PlanRecord,
    pub specs: Vec<SpecTree>,
}

impl PlanTree {
    /// Specs succeeded and in all.
    pub fn progress(&self) -> (usize, usize) {
        let done = self
            .specs
            .iter()
            .filter(|s| s.spec.status == PipelineStatus::Succeeded)
            .count();
        (done, self.specs.len())
    }
}

/// What a coordinator message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MessageKind {
    /// Needs a person's attention.
    Alert,
    /// A finding for sibling loops' next iteration.
    Share,
    /// A question whose answer comes back later.
    Query,
    /// Stop a loop or the plan.
    Stop,
}

impl MessageKind {
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Alert,
        MessageKind::Share,
        MessageKind::Query,
        MessageKind::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Alert => "alert",
            MessageKind::Share => "share",
            MessageKind::Query => "query",
            MessageKind::Stop => "stop",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        MessageKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!("unknown message kind '{text}' (expected alert, share, query or stop)")
            })
    }
}

/// The recipient (or sender) that is the person driving taskdaemon.
pub const HUMAN: &str = "human";
/// The recipient that broadcasts to every loop of the plan.
pub const BROADCAST: &str = "plan";

/// Checks a message's sender or recipient: `human`, `plan`, or a spec name.
pub fn validate_party(what: &'static str, party: &str) -> Result<(), PipelineError> {
    if party == HUMAN || party == BROADCAST {
        return Ok(());
    }
    validate_name(what, party)
}

/// A coordinator message about to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The plan's id.
    pub plan: String,
    /// `human`, `plan` (the plan's own loop) or a spec name.
    pub from: String,
    /// `human`, `plan` (every loop of the plan) or a spec name.
    pub to: String,
    pub kind: MessageKind,
    pub body: String,
}

impl NewMessage {
    pub fn validate(&self) -> Result<(), PipelineError> {
        validate_party("sender", &self.from)?;
        validate_party("recipient", &self.to)?;
        if self.body.trim().is_empty() {
            return Err(PipelineError::Empty("a message's body"));
        }
        Ok(())
    }
}

/// Where a message stands in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Delivery {
    Pending,
    /// Handed to its recipient (a loop's next context, a person's screen).
    Delivered,
    /// A query that got its answer.
    Answered,
    /// Could not be delivered; the message's `reason` says why.
    Dead,
}

impl Delivery {
    pub const ALL: [Delivery; 4] = [
        Delivery::Pending,
        Delivery::Delivered,
        Delivery::Answered,
        Delivery::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::Answered => "answered",
            Delivery::Dead => "dead",
        }
    }

    /// Whether a message may move `self -> to`: pending -> delivered,
    /// pending/delivered -> answered (queries only, checked by the caller)
    /// or dead.
    pub fn can_move_to(self, to: Delivery) -> bool {
        use Delivery::*;
        matches!(
            (self, to),
            (Pending, Delivered | Answered | Dead) | (Delivered, Answered | Dead)
        )
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Delivery {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Delivery::ALL
            .into_iter()
            .find(|d| d.as_str() == text)
            .ok_or_else(|| format!("unknown delivery state '{text}'"))
    }
}

/// The prefix of message ids.
pub const MESSAGE_PREFIX: &str = "MSG";

/// `MSG-12` for row 12.
pub fn message_id(number: i64) -> String {
    format!("{MESSAGE_PREFIX}-{number}")
}

/// The row number in a message id (`MSG-12`, `msg-12`, or `12`).
pub fn parse_message_id(text: &str) -> Option<i64> {
    let number = match text.split_once('-') {
        Some((prefix, n)) if prefix.eq_ignore_ascii_case(MESSAGE_PREFIX) => n,
        Some(_) => return None,
        None => text,
    };
    number.parse().ok().filter(|n| *n > 0)
}

/// A stored coordinator message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageRecord {
    /// `MSG-N`.
    pub id: String,
    pub plan: String,
    pub from: String,
    pub to: String,
    pub kind: MessageKind,
    pub body: String,
    pub delivery: Delivery,
    /// A query's answer, once given.
    pub answer: Option<String>,
    /// Why it could not be delivered (dead letters only).
    pub reason: Option<String>,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
    /// A broadcast's delivery to each loop that read it or missed it,
    /// oldest first; for an answered query, the answer's delivery to the
    /// spec that asked, once its loop read it (empty otherwise: an
    /// addressed message's `delivery` says it all). A broadcast's own
    /// `delivery` stays `pending` while specs of the plan may still read it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<RecipientDelivery>,
}

/// One recipient's delivery of a broadcast: `delivered` once its loop read
/// it, `dead` (with the reason) when its spec ended without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecipientDelivery {
    /// The spec whose loop it is.
    pub recipient: String,
    pub delivery: Delivery,
    pub reason: Option<String>,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Millis,
}

impl MessageRecord {
    /// Whether it goes to every loop of the plan.
    pub fn is_broadcast(&self) -> bool {
        self.to == BROADCAST
    }

    /// Refuses an answer from the loop of spec `spec` of plan `plan`
    /// unless this is a query of that plan asked of that spec and still
    /// waiting: a loop answers only the questions put to it.
    pub fn check_answerable_by(&self, plan: &str, spec: &str) -> Result<(), String> {
        if self.plan != plan {
            return Err(format!("{} belongs to {}, not {plan}", self.id, self.plan));
        }
        if self.kind != MessageKind::Query {
            return Err(format!(
                "{} is a {}, not a query: only a question can be answered",
                self.id, self.kind
            ));
        }
        if self.to != spec {
            return Err(format!(
                "{} asks {}, not {spec}: answer only the questions put to your spec",
                self.id, self.to
            ));
        }
        if !matches!(self.delivery, Delivery::Pending | Delivery::Delivered) {
            return Err(format!("{} is {} already", self.id, self.delivery));
        }
        Ok(())
    }
}

/// What a running plan's specs say about the plan: `None` while work is
/// left, `Some(Ok)` when every spec succeeded (and there is one), or
/// `Some(Err(reason))` naming the first spec that failed or was cancelled.
/// The driver's one rule for ending a plan.
pub fn plan_outcome(specs: &[SpecRecord]) -> Option<Result<(), String>> {
    if let Some(bad) = specs
        .iter()
        .find(|s| matches!(s.status, PipelineStatus::Failed | PipelineStatus::Cancelled))
    {
        let why = bad.note.as_deref().unwrap_or("no reason recorded");
        return Some(Err(format!("spec {} {}: {why}", bad.name, bad.status)));
    }
    if !specs.is_empty() && specs.iter().all(|s| s.status == PipelineStatus::Succeeded) {
        return Some(Ok(()));
    }
    None
}

/// Whether `spec` may start now: it is pending, its plan is running and
/// every spec it depends on (by name among `siblings`, its plan's specs)
/// succeeded. The rule `Store::ready_specs` applies in SQL, for a caller
/// that holds the records already.
pub fn spec_is_ready(plan: &PlanRecord, spec: &SpecRecord, siblings: &[SpecRecord]) -> bool {
    plan.status == PipelineStatus::Running
        && spec.status == PipelineStatus::Pending
        && spec.depends_on.iter().all(|dep| {
            siblings
                .iter()
                .any(|s| &s.name == dep && s.status == PipelineStatus::Succeeded)
        })
}

/// The ready specs of `plans` (each plan with its specs in creation order)
/// in `Store::ready_specs`' order: highest spec priority first, then the
/// oldest plan, then creation order. Feed it to [`fair_order`].
pub fn ready_specs<'a>(
    plans: impl IntoIterator<Item = (&'a PlanRecord, &'a [SpecRecord])>,
) -> Vec<SpecRecord> {
    let mut ready: Vec<(i32, u64, usize, &SpecRecord)> = Vec::new();
    for (plan, specs) in plans {
        let age = plan_number(&plan.id).unwrap_or(u64::MAX);
        for (position, spec) in specs.iter().enumerate() {
            if spec_is_ready(plan, spec, specs) {
                ready.push((spec.priority, age, position, spec));
            }
        }
    }
    ready.sort_by_key(|(priority, age, position, _)| {
        (std::cmp::Reverse(*priority), *age, *position)
    });
    ready
        .into_iter()
        .map(|(_, _, _, spec)| spec.clone())
        .collect()
}

/// Orders ready specs (given highest priority first, then oldest plan) so
/// that plans take turns: each plan's best spec, then each plan's second,
/// and so on, keeping the given order within a round. One big plan cannot
/// starve the others of loop slots.
pub fn fair_order(ready: Vec<SpecRecord>) -> Vec<SpecRecord> {
    let mut plans: Vec<String> = Vec::new();
    let mut rank: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<(usize, usize, SpecRecord)> = Vec::with_capacity(ready.len());
    for (position, spec) in ready.into_iter().enumerate() {
        if !plans.contains(&spec.plan) {
            plans.push(spec.plan.clone());
        }
        let round = rank.entry(spec.plan.clone()).or_insert(0);
        keyed.push((*round, position, spec));
        *round += 1;
    }
    keyed.sort_by_key(|(round, position, _)| (*round, *position));
    keyed.into_iter().map(|(_, _, spec)| spec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_status() -> impl Strategy<Value = PipelineStatus> {
        proptest::sample::select(PipelineStatus::ALL.to_vec())
    }

    fn spec(name: &str, deps: &[&str]) -> NewSpec {
        NewSpec {
            name: name.to_owned(),
            title: format!("spec {name}"),
            body: "do it".to_owned(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            priority: 0,
        }
    }

    #[test]
    fn the_cascade_path_is_legal() {
        use PipelineStatus::*;
        for (from, to) in [
            (Draft, Pending),
            (Pending, Running),
            (Running, Paused),
            (Paused, Pending),
            (Running, Succeeded),
            (Running, Failed),
            (Failed, Pending),
            (Running, Pending),
        ] {
            assert!(from.can_transition_to(to), "{from} -> {to}");
        }
    }

    #[test]
    fn an_illegal_change_names_both_states() {
        let err = PipelineStatus::Succeeded
            .check_transition(PipelineStatus::Running, "PLAN-1/auth")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal status change for PLAN-1/auth: succeeded -> running"
        );
    }

    #[test]
    fn names_follow_the_contract() {
        for good in ["a", "auth-login", "0day", &"x".repeat(48)] {
            assert!(validate_name("spec", good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "Auth", "a_b", "a b", "a/b", &"x".repeat(49)] {
            assert!(validate_name("spec", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_parse_and_print() {
        let phase: PipelineRef = "plan-3/auth/2".parse().unwrap();
        assert_eq!(
            phase,
            PipelineRef::Phase {
                plan: "PLAN-3".into(),
                spec: "auth".into(),
                number: 2
            }
        );
        assert_eq!(phase.to_string(), "PLAN-3/auth/2");
        assert_eq!(phase.plan(), "PLAN-3");
        for bad in [
            "TASK-3",
            "PLAN-3/Auth",
            "PLAN-3/a/0",
            "PLAN-3/a/1/x",
            "PLAN",
        ] {
            assert!(bad.parse::<PipelineRef>().is_err(), "{bad}");
        }
        assert_eq!(plan_id(7), "PLAN-7");
        assert_eq!(plan_number("plan-7"), Some(7));
        assert_eq!(plan_number("PLAN-7/a"), None);
        assert_eq!(spec_branch("PLAN-7", "auth"), "td/PLAN-7/auth");
        assert_eq!(
            spec_worktree("PLAN-7", "auth"),
            ".taskdaemon/worktrees/PLAN-7/auth"
        );
    }

    #[test]
    fn a_cycle_is_refused_and_named() {
        let err = validate_spec_set(&[], &[spec("a", &["b"]), spec("b", &["a"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the specs' dependencies form a cycle: b -> a -> b"
        );
        let existing = vec![("a".to_owned(), vec!["b".to_owned()]), ("b".into(), vec![])];
        let err = validate_spec_set(&existing, &[spec("c", &["a"]), spec("b2", &["c"])]);
        assert!(err.is_ok());
    }

    #[test]
    fn unknown_and_duplicate_specs_are_refused() {
        let err = validate_spec_set(&[], &[spec("a", &["zz"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec 'a' depends on 'zz', which is not a spec of this plan"
        );
        let err = validate_spec_set(&[], &[spec("a", &[]), spec("a", &[])]).unwrap_err();
        assert_eq!(err, PipelineError::DuplicateSpec("a".into()));
        let err = validate_spec_set(&[], &[spec("a", &["a"])]).unwrap_err();
        assert_eq!(err, PipelineError::SelfDependency("a".into()));
        for reserved in ["human", "plan"] {
            let err = validate_spec_set(&[], &[spec(reserved, &[])]).unwrap_err();
            assert_eq!(err, PipelineError::ReservedName(reserved.into()));
        }
        // A dependency on a spec created earlier is fine.
        let existing = vec![("base".to_owned(), vec![])];
        assert!(validate_spec_set(&existing, &[spec("a", &["base"])]).is_ok());
    }

    #[test]
    fn phase_names_are_one_line_of_free_text() {
        let phase = |name: &str| NewPhase {
            name: name.to_owned(),
            title: "t".to_owned(),
            body: String::new(),
            validation: "true".to_owned(),
        };
        assert!(phase("Write the parser").validate().is_ok());
        assert!(phase(&"x".repeat(100)).validate().is_ok());
        for bad in ["", "  ", "two\nlines", &"x".repeat(101)] {
            assert_eq!(
                phase(bad).validate(),
                Err(PipelineError::InvalidPhaseName(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn message_ids_round_trip() {
        assert_eq!(parse_message_id(&message_id(4)), Some(4));
        assert_eq!(parse_message_id("msg-4"), Some(4));
        assert_eq!(parse_message_id("4"), Some(4));
        assert_eq!(parse_message_id("MEM-4"), None);
        assert!(Delivery::Pending.can_move_to(Delivery::Dead));
        assert!(!Delivery::Answered.can_move_to(Delivery::Dead));
        assert!(!Delivery::Dead.can_move_to(Delivery::Delivered));
    }

    /// Statuses reachable from `from` through legal changes.
    fn reachable(from: PipelineStatus) -> HashSet<PipelineStatus> {
        let mut seen = HashSet::from([from]);
        let mut frontier = vec![from];
        while let Some(s) = frontier.pop() {
            for to in PipelineStatus::ALL {
                if s.can_transition_to(to) && seen.insert(to) {
                    frontier.push(to);
                }
            }
        }
        seen
    }

    #[test]
    fn every_status_is_reachable_from_draft_and_final_ones_stay() {
        assert_eq!(
            reachable(PipelineStatus::Draft).len(),
            PipelineStatus::ALL.len()
        );
        for s in PipelineStatus::ALL {
            if !s.is_final() {
                // Every open piece of work can still be brought to an end.
                let ends = reachable(s);
                assert!(ends.contains(&PipelineStatus::Cancelled), "{s}");
            }
        }
    }

    proptest! {
        /// Final statuses have no way out, draft is never re-entered, and no
        /// change is a self loop.
        #[test]
        fn transition_table_shape(from in any_status(), to in any_status()) {
            let legal = from.can_transition_to(to);
            if from.is_final() { prop_assert!(!legal); }
            if to == PipelineStatus::Draft { prop_assert!(!legal); }
            if from == to { prop_assert!(!legal); }
            // Success needs running work.
            if to == PipelineStatus::Succeeded {
                prop_assert_eq!(legal, from == PipelineStatus::Running);
            }
            // The check agrees with the table and names both ends.
            match from.check_transition(to, "PLAN-1") {
                Ok(()) => prop_assert!(legal),
                Err(e) => {
                    prop_assert!(!legal);
                    let text = e.to_string();
                    let named = text.contains(from.as_str()) && text.contains(to.as_str());
                    prop_assert!(named, "{}", text);
                }
            }
            prop_assert_eq!(from.as_str().parse::<PipelineStatus>().unwrap(), from);
        }

        /// Whatever dependencies a model proposes, an accepted set is acyclic,
        /// and a refused cycle is a real loop of proposed edges.
        #[test]
        fn spec_sets_are_acyclic_or_refused_with_a_real_cycle(
            edges in proptest::collection::vec((0usize..8, 0usize..8), 0..24)
        ) {
            let names: Vec<String> = (0..8).map(|n| format!("s{n}")).collect();
            let mut specs: Vec<NewSpec> = names.iter().map(|n| spec(n, &[])).collect();
            for (from, to) in &edges {
                if from != to && !specs[*from].depends_on.contains(&names[*to]) {
                    specs[*from].depends_on.push(names[*to].clone());
                }
            }
            let has_edge = |a: &str, b: &str| {
                specs.iter().any(|s| s.name == a && s.depends_on.iter().any(|d| d == b))
            };
            match validate_spec_set(&[], &specs) {
                Ok(()) => {
                    // Reference check: repeatedly remove specs with no remaining deps.
                    let mut left: Vec<&NewSpec> = specs.iter().collect();
                    loop {
                        let before = left.len();
                        let names_left: HashSet<&str> = left.iter().map(|s| s.name.as_str()).collect();
                        left.retain(|s| s.depends_on.iter().any(|d| names_left.contains(d.as_str())));
                        if left.len() == before { break; }
                    }
                    prop_assert!(left.is_empty(), "accepted a cyclic set");
                }
                Err(PipelineError::Cycle(cycle)) => {
                    prop_assert_eq!(cycle.first(), cycle.last());
                    for pair in cycle.windows(2) {
                        prop_assert!(has_edge(&pair[0], &pair[1]), "{} -> {} is not an edge", pair[0], pair[1]);
                    }
                }
                Err(other) => prop_assert!(false, "unexpected refusal: {}", other),
            }
        }
    }

    fn record(plan: &str, name: &str, status: PipelineStatus) -> SpecRecord {
        SpecRecord {
            id: format!("{plan}/{name}"),
            plan: plan.to_owned(),
            name: name.to_owned(),
            title: name.to_owned(),
            body: String::new(),
            status,
            priority: 0,
            depends_on: Vec::new(),
            branch: spec_branch(plan, name),
            worktree: spec_worktree(plan, name),
            note: None,
            loop_task: None,
            cost: PipelineCost::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn plan_record(id: &str, status: PipelineStatus) -> PlanRecord {
        PlanRecord {
            id: id.to_owned(),
            goal: "g".to_owned(),
            title: None,
            summary: None,
            body: Some("b".to_owned()),
            status,
            target_branch: "main".to_owned(),
            base_commit: "0".repeat(40),
            auto_approve: false,
            note: None,
            loop_task: None,
            cost: PipelineCost::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn ready_specs_follow_dependencies_priority_and_plan_age() {
        use PipelineStatus::*;
        let older = plan_record("PLAN-2", Running);
        let newer = plan_record("PLAN-10", Running);
        let paused = plan_record("PLAN-3", Paused);
        let mut after_a = record("PLAN-2", "b", Pending);
        after_a.depends_on = vec!["a".to_owned()];
        let mut after_done = record("PLAN-2", "c", Pending);
        after_done.depends_on = vec!["done".to_owned()];
        let mut urgent = record("PLAN-10", "u", Pending);
        urgent.priority = 5;
        let mut unknown = record("PLAN-10", "v", Pending);
        unknown.depends_on = vec!["nobody".to_owned()];
        let older_specs = vec![
            record("PLAN-2", "a", Running),
            after_a,
            record("PLAN-2", "done", Succeeded),
            after_done,
            record("PLAN-2", "d", Pending),
        ];
        let newer_specs = vec![record("PLAN-10", "x", Pending), urgent, unknown];
        let paused_specs = vec![record("PLAN-3", "p", Pending)];
        let plans = [
            (&newer, newer_specs.as_slice()),
            (&paused, paused_specs.as_slice()),
            (&older, older_specs.as_slice()),
        ];
        let ids: Vec<String> = ready_specs(plans).into_iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            ["PLAN-10/u", "PLAN-2/c", "PLAN-2/d", "PLAN-10/x"],
            "priority first, then the older plan (by number, not text), then creation order"
        );
    }

    #[test]
    fn ready_specs_take_turns_across_plans() {
        use PipelineStatus::Pending;
        let ready = vec![
            record("PLAN-1", "a", Pending),
            record("PLAN-1", "b", Pending),
            record("PLAN-1", "c", Pending),
            record("PLAN-2", "x", Pending),
            record("PLAN-2", "y", Pending),
        ];
        let names: Vec<String> = fair_order(ready).into_iter().map(|s| s.id).collect();
        assert_eq!(
            names,
            ["PLAN-1/a", "PLAN-2/x", "PLAN-1/b", "PLAN-2/y", "PLAN-1/c"]
        );
    }

    #[test]
    fn a_plan_ends_when_all_specs_succeed_or_one_fails() {
        use PipelineStatus::*;
        assert_eq!(plan_outcome(&[]), None);
        let mut specs = vec![
            record("PLAN-1", "a", Succeeded),
            record("PLAN-1", "b", Running),
        ];
        assert_eq!(plan_outcome(&specs), None);
        specs[1].status = Succeeded;
        assert_eq!(plan_outcome(&specs), Some(Ok(())));
        specs[1].status = Failed;
        specs[1].note = Some("validation kept failing".into());
        let reason = plan_outcome(&specs).unwrap().unwrap_err();
        assert!(
            reason.contains("spec b failed: validation kept failing"),
            "{reason}"
        );
    }
}
