//! The seed snapshot, `.taskdaemon/current.json`: where work stands, in a file
//! other tools can read without a database driver.
//!
//! The store stays the source of truth; this module only says what the file
//! holds and which task counts as the current one, so every writer (CLI,
//! daemon, `repair`) produces the same file from the same state.

use serde::{Deserialize, Serialize};

use crate::status::Status;
use crate::task::{TaskKind, TaskRecord};
use crate::time::{Millis, serde_rfc3339};

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentTask {
    pub id: String,
    pub name: String,
    pub status: Status,
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
            status: task.status,
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
}
