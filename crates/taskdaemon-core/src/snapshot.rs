//! Seed 003's task files (`.auto-dev/tasks/` by default): `current.json`
//! (where work stands), `memory.json` (decisions, learned patterns, facts)
//! and `history/` (ended tracked tasks, one compressed JSON file each), for
//! tools that read files without a database driver.
//!
//! The store stays the source of truth; this module only says what the files
//! hold, how our statuses map onto the seed's four (`pending`,
//! `in_progress`, `completed`, `failed`; ours ride along as `state`), which
//! task counts as the current one, and what makes a file valid, so every
//! writer (CLI, daemon, `repair`) produces the same files from the same state
//! and never writes one that breaks the seed's shape.

use serde::{Deserialize, Serialize};

use crate::status::Status;
use crate::task::{TaskKind, TaskRecord};
use crate::time::{Millis, serde_rfc3339};
use crate::tracked::Memory;

/// How many completed tasks the snapshot lists, newest first.
pub const COMPLETED_IN_SNAPSHOT: usize = 20;
/// How many decisions and patterns it lists, newest first.
pub const MEMORIES_IN_SNAPSHOT: usize = 20;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedSnapshot {
    pub session_id: Option<String>,
    #[serde(with = "serde_rfc3339::option")]
    pub started_at: Option<Millis>,
    pub current_task: Option<CurrentTask>,
    pub completed_tasks: Vec<CompletedTask>,
    pub memory: SnapshotMemory,
    /// The store's last event when the file was written: newer means fresher.
    pub version: i64,
    #[serde(with = "serde_rfc3339")]
    pub generated_at: Millis,
}

/// The seed's task statuses. Ours are finer; [`SeedStatus::of`] maps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
}

impl SeedStatus {
    /// Waiting work (blocked or not) is `pending`; every unsuccessful end
    /// (failed, cancelled, lost) is `failed`. The exact status stays in the
    /// `state` field beside it.
    pub fn of(status: Status) -> Self {
        match status {
            Status::Pending | Status::Blocked => SeedStatus::Pending,
            Status::Running => SeedStatus::InProgress,
            Status::Succeeded => SeedStatus::Completed,
            Status::Failed | Status::Cancelled | Status::Lost => SeedStatus::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentTask {
    pub id: String,
    pub name: String,
    /// The seed's status ...
    pub status: SeedStatus,
    /// ... and ours, which says more (`blocked`, `cancelled`, `lost`).
    pub state: Status,
    #[serde(with = "serde_rfc3339::option")]
    pub started_at: Option<Millis>,
    pub context: TaskContext,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskContext {
    pub files_modified: Vec<String>,
    pub decisions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedTask {
    pub id: String,
    pub name: String,
    #[serde(with = "serde_rfc3339")]
    pub completed_at: Millis,
    pub duration_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMemory {
    pub project_type: Option<String>,
    pub key_decisions: Vec<String>,
    pub learned_patterns: Vec<String>,
}

/// The tracked task an agent is working on: a running `manual` task, the
/// session's own before anyone else's, the most recently started first.
pub fn pick_current<'a>(
    running: &'a [TaskRecord],
    session: Option<&str>,
) -> Option<&'a TaskRecord> {
    running
        .iter()
        .filter(|t| t.kind == TaskKind::Manual && t.status == Status::Running)
        .max_by_key(|t| {
            let own = session.is_some() && t.session.as_deref() == session;
            (own, t.started_at.unwrap_or(t.created_at), t.created_at)
        })
}

impl CurrentTask {
    pub fn new(task: &TaskRecord, decisions: Vec<String>) -> Self {
        Self {
            id: task.id.clone(),
            name: task.title().to_owned(),
            status: SeedStatus::of(task.status),
            state: task.status,
            started_at: task.started_at,
            context: TaskContext {
                files_modified: task.files_modified.clone(),
                decisions,
            },
        }
    }
}

impl CompletedTask {
    /// `None` for a task that never ended.
    pub fn new(task: &TaskRecord) -> Option<Self> {
        let completed_at = task.finished_at?;
        Some(Self {
            id: task.id.clone(),
            name: task.title().to_owned(),
            completed_at,
            duration_seconds: task
                .started_at
                .map(|start| (completed_at - start).max(0) as f64 / 1000.0),
        })
    }
}

/// Why a seed file would not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SeedFileError {
    /// The JSON path of the offending field, e.g. `completed_tasks[2].id`.
    pub field: String,
    pub problem: String,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> SeedFileError {
    SeedFileError {
        field: field.into(),
        problem: problem.into(),
    }
}

fn check_id(field: String, id: &str) -> Result<(), SeedFileError> {
    if id.trim().is_empty() {
        return Err(invalid(field, "is empty"));
    }
    Ok(())
}

impl SeedSnapshot {
    /// Checks what the seed's readers rely on: ids present, each status the
    /// seed's image of its `state`, durations not negative.
    pub fn validate(&self) -> Result<(), SeedFileError> {
        if let Some(current) = &self.current_task {
            check_id("current_task.id".to_owned(), &current.id)?;
            if current.status != SeedStatus::of(current.state) {
                return Err(invalid(
                    "current_task.status",
                    format!("does not match its state {}", current.state),
                ));
            }
        }
        for (i, done) in self.completed_tasks.iter().enumerate() {
            check_id(format!("completed_tasks[{i}].id"), &done.id)?;
            if done
                .duration_seconds
                .is_some_and(|d| d < 0.0 || !d.is_finite())
            {
                return Err(invalid(
                    format!("completed_tasks[{i}].duration_seconds"),
                    "is negative or not a number",
                ));
            }
        }
        Ok(())
    }
}

/// How many memories of each kind `memory.json` holds, newest first.
pub const MEMORIES_IN_MEMORY_FILE: usize = 1000;

/// `memory.json`: what agents decided, learned and noted as facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedMemory {
    pub decisions: Vec<MemoryEntry>,
    pub learned_patterns: Vec<MemoryEntry>,
    /// Facts, keyed ones (such as `project_type`) with their `key`.
    pub facts: Vec<MemoryEntry>,
    /// The store's last event when the file was written.
    pub version: i64,
    #[serde(with = "serde_rfc3339")]
    pub generated_at: Millis,
}

/// One memory in `memory.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub id: String,
    pub text: String,
    pub key: Option<String>,
    pub task_id: Option<String>,
    pub session_id: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Millis,
}

impl From<&Memory> for MemoryEntry {
    fn from(m: &Memory) -> Self {
        Self {
            id: m.id.clone(),
            text: m.text.clone(),
            key: m.key.clone(),
            task_id: m.task_id.clone(),
            session_id: m.session.clone(),
            created_at: m.created_at,
        }
    }
}

impl SeedMemory {
    /// Every entry has an id and a text.
    pub fn validate(&self) -> Result<(), SeedFileError> {
        let lists = [
            ("decisions", &self.decisions),
            ("learned_patterns", &self.learned_patterns),
            ("facts", &self.facts),
        ];
        for (name, list) in lists {
            for (i, entry) in list.iter().enumerate() {
                check_id(format!("{name}[{i}].id"), &entry.id)?;
            }
        }
        Ok(())
    }
}

/// One ended tracked task, as archived in `history/` (gzip-compressed JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedTask {
    pub id: String,
    pub name: String,
    pub status: SeedStatus,
    pub state: Status,
    pub description: Option<String>,
    pub priority: i32,
    pub labels: Vec<String>,
    pub depends_on: Vec<String>,
    pub files_modified: Vec<String>,
    pub note: Option<String>,
    pub error: Option<String>,
    pub session_id: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339::option")]
    pub started_at: Option<Millis>,
    #[serde(with = "serde_rfc3339")]
    pub completed_at: Millis,
    pub duration_seconds: Option<f64>,
    /// The decisions recorded against the task.
    pub decisions: Vec<String>,
}

impl ArchivedTask {
    /// `None` for a task that has not ended.
    pub fn new(task: &TaskRecord, decisions: Vec<String>) -> Option<Self> {
        if !task.status.is_terminal() {
            return None;
        }
        let done = CompletedTask::new(task)?;
        Some(Self {
            id: task.id.clone(),
            name: done.name,
            status: SeedStatus::of(task.status),
            state: task.status,
            description: task.description.clone(),
            priority: task.priority,
            labels: task.labels.clone(),
            depends_on: task.depends_on.clone(),
            files_modified: task.files_modified.clone(),
            note: task.note.clone(),
            error: task.error.clone(),
            session_id: task.session.clone(),
            created_at: task.created_at,
            started_at: task.started_at,
            completed_at: done.completed_at,
            duration_seconds: done.duration_seconds,
            decisions,
        })
    }

    /// Its file name in `history/`: the id and when it ended, so a task
    /// reopened and ended again is archived again, beside its first end.
    pub fn file_name(task_id: &str, completed_at: Millis) -> String {
        format!("{task_id}-{completed_at}.json.gz")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::RestartPolicy;
    use uuid::Uuid;

    fn manual(id: &str, session: Option<&str>, started_at: Millis) -> TaskRecord {
        TaskRecord {
            id: id.to_owned(),
            uuid: Uuid::nil(),
            kind: TaskKind::Manual,
            name: Some(format!("work {id}")),
            tool: None,
            session: session.map(str::to_owned),
            status: Status::Running,
            command: String::new(),
            argv: Vec::new(),
            cwd: None,
            env: Vec::new(),
            restart: RestartPolicy::default(),
            restarts: 0,
            hang_timeout_ms: None,
            limits: Default::default(),
            pid: None,
            pgid: None,
            start_time: None,
            boot_id: None,
            shim_pid: None,
            shim_start_time: None,
            container: None,
            container_id: None,
            description: None,
            priority: 0,
            labels: Vec::new(),
            depends_on: Vec::new(),
            links: Vec::new(),
            rollup: None,
            claim: None,
            note: None,
            files_modified: vec!["src/lib.rs".to_owned()],
            exit_code: None,
            signal: None,
            stop_requested: false,
            error: None,
            created_at: 1,
            started_at: Some(started_at),
            finished_at: None,
            updated_at: started_at,
        }
    }

    #[test]
    fn the_sessions_own_task_wins_over_a_newer_one() {
        let tasks = [
            manual("TASK-1", Some("s1"), 100),
            manual("TASK-2", Some("s2"), 200),
        ];
        assert_eq!(pick_current(&tasks, Some("s1")).unwrap().id, "TASK-1");
        assert_eq!(pick_current(&tasks, None).unwrap().id, "TASK-2");
        assert_eq!(pick_current(&tasks, Some("s9")).unwrap().id, "TASK-2");
    }

    #[test]
    fn processes_are_never_the_current_task() {
        let mut process = manual("TASK-1", None, 100);
        process.kind = TaskKind::Process;
        assert!(pick_current(&[process], None).is_none());
    }

    #[test]
    fn completed_tasks_carry_their_duration() {
        let mut task = manual("TASK-1", None, 1_000);
        task.status = Status::Succeeded;
        task.finished_at = Some(3_500);
        let done = CompletedTask::new(&task).unwrap();
        assert_eq!(done.duration_seconds, Some(2.5));
        assert_eq!(done.name, "work TASK-1");
    }

    #[test]
    fn our_statuses_map_onto_the_seeds_four() {
        let seed: Vec<&str> = Status::ALL
            .iter()
            .map(|s| match SeedStatus::of(*s) {
                SeedStatus::Pending => "pending",
                SeedStatus::InProgress => "in_progress",
                SeedStatus::Completed => "completed",
                SeedStatus::Failed => "failed",
            })
            .collect();
        assert_eq!(
            seed,
            [
                "pending",
                "pending",
                "in_progress",
                "completed",
                "failed",
                "failed",
                "failed"
            ]
        );
        assert_eq!(
            serde_json::to_value(SeedStatus::InProgress).unwrap(),
            "in_progress"
        );
    }

    #[test]
    fn a_status_that_contradicts_its_state_is_refused() {
        let task = manual("TASK-1", None, 100);
        let mut current = CurrentTask::new(&task, Vec::new());
        current.status = SeedStatus::Completed;
        let snapshot = SeedSnapshot {
            session_id: None,
            started_at: None,
            current_task: Some(current),
            completed_tasks: Vec::new(),
            memory: SnapshotMemory {
                project_type: None,
                key_decisions: Vec::new(),
                learned_patterns: Vec::new(),
            },
            version: 1,
            generated_at: 1,
        };
        let e = snapshot.validate().unwrap_err();
        assert_eq!(e.field, "current_task.status");
    }

    #[test]
    fn only_ended_tasks_are_archived() {
        let mut task = manual("TASK-1", None, 1_000);
        assert!(ArchivedTask::new(&task, Vec::new()).is_none());
        task.status = Status::Cancelled;
        task.finished_at = Some(2_000);
        let archived = ArchivedTask::new(&task, vec!["why".to_owned()]).unwrap();
        assert_eq!(archived.status, SeedStatus::Failed);
        assert_eq!(archived.state, Status::Cancelled);
        assert_eq!(
            ArchivedTask::file_name("TASK-1", 2_000),
            "TASK-1-2000.json.gz"
        );
    }
}
