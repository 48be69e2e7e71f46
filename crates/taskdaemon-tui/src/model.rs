//! What the TUI shows, read through the service: loaded once at start, then
//! kept current from the change feed. An event re-reads only what it
//! touched: a tracked task is re-read by id (the tracked table may hold
//! 100,000 rows), the small tables (processes, queue tasks, loops) are
//! re-read when one of their tasks changed, and the event itself joins the
//! records. Nothing here decides a rule; every read is a service view.

use std::collections::{BTreeSet, HashMap};

use taskdaemon_core::{Event, EventKind, LoopRecord, Memory, TaskKind, TaskRecord};
use taskdaemon_service::{
    ChatMessage, ChatModel, LoopShow, ProcessView, QueueTask, Resume, Service, ServiceError,
    WorkerRow, tail_lines,
};
use taskdaemon_store::TrackedFilter;

use crate::tree::{TreeRow, dependency_parents, flatten};

/// Queue tasks shown: the newest this many.
pub const QUEUE_ROWS: usize = 1000;
/// Records (events) held in memory; older ones drop off the top.
pub const RECORDS_HELD: usize = 50_000;
/// Records read from history at start.
pub const RECORDS_AT_START: i64 = 5000;
/// Lines of a process log shown, per stream.
pub const LOG_LINES: usize = 200;
/// Ready tasks listed beside the tracked tree.
const READY_SHOWN: usize = 20;

type Result<T> = std::result::Result<T, ServiceError>;

/// Whether the daemon runs (the TUI works either way, from the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaemonState {
    pub pid: Option<i32>,
}

/// Tracked work: every tracked task, as a dependency tree, and where work stands.
#[derive(Debug, Default)]
pub struct Tracked {
    pub tasks: Vec<TaskRecord>,
    position: HashMap<String, usize>,
    /// The tasks in tree order.
    pub tree: Vec<TreeRow>,
    pub ready: Vec<TaskRecord>,
    pub current: Option<String>,
    pub decisions: Vec<Memory>,
}

impl Tracked {
    fn set_tasks(&mut self, tasks: Vec<TaskRecord>) {
        self.tasks = tasks;
        self.position = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        self.retree();
    }

    /// Rebuilds the tree from every task's dependencies.
    fn retree(&mut self) {
        let parents =
            dependency_parents(self.tasks.iter().map(|t| t.depends_on.as_slice()), |id| {
                self.position.get(id).copied()
            });
        self.tree = flatten(&parents);
    }

    /// Replaces (or adds) one task, keeping the tree right: a changed task
    /// keeps its row, a new task without dependencies becomes the last
    /// root, anything else rebuilds the tree.
    fn upsert(&mut self, task: TaskRecord) -> TreeChange {
        match self.position.get(&task.id) {
            Some(&i) => {
                let reshaped = self.tasks[i].depends_on != task.depends_on;
                self.tasks[i] = task;
                if reshaped {
                    TreeChange::Rebuild
                } else {
                    TreeChange::None
                }
            }
            None => {
                let index = self.tasks.len();
                let root = task.depends_on.is_empty();
                self.position.insert(task.id.clone(), index);
                self.tasks.push(task);
                if root {
                    self.tree.push(TreeRow {
                        index,
                        depth: 0,
                        guide: String::new(),
                    });
                    TreeChange::None
                } else {
                    TreeChange::Rebuild
                }
            }
        }
    }

    /// A task by id.
    pub fn get(&self, id: &str) -> Option<&TaskRecord> {
        self.position.get(id).map(|&i| &self.tasks[i])
    }

    fn apply_summary(&mut self, resume: Resume, ready: Vec<TaskRecord>) {
        self.current = resume.current_task.map(|t| t.task.id);
        self.decisions = resume.recent_decisions;
        self.ready = ready;
    }
}

/// What a changed task does to the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TreeChange {
    None,
    Rebuild,
}

/// The end of the selected process's output.
#[derive(Debug, Default, Clone)]
pub struct LogPane {
    pub task: Option<String>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub error: Option<String>,
}

/// One line of the chat transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatLine {
    Said(ChatMessage),
    /// Said by the TUI itself (an answer that failed, `/plan` not being available).
    Notice(String),
}

/// The Chat view's conversation.
#[derive(Debug, Default)]
pub struct Chat {
    pub model: ChatModel,
    pub lines: Vec<ChatLine>,
    /// A question is out to the model.
    pub waiting: bool,
}

impl Chat {
    /// The conversation to send: what the user and the model said.
    pub fn conversation(&self) -> Vec<ChatMessage> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                ChatLine::Said(m) => Some(m.clone()),
                ChatLine::Notice(_) => None,
            })
            .collect()
    }
}

/// Everything the views show.
#[derive(Debug, Default)]
pub struct Model {
    pub daemon: DaemonState,
    pub workspace: String,
    pub processes: Vec<ProcessView>,
    pub workers: Vec<WorkerRow>,
    pub queue_tasks: Vec<QueueTask>,
    pub tracked: Tracked,
    pub loops: Vec<LoopRecord>,
    /// History and events, oldest first.
    pub records: Vec<Event>,
    /// Events up to this sequence number were in the tables when they were read.
    pub loaded_seq: i64,
    pub log: LogPane,
    /// The selected loop with its iterations.
    pub progress: Option<LoopShow>,
    pub progress_error: Option<String>,
    pub chat: Chat,
    /// The newest plans as trees, oldest first, and what waits for a person.
    pub plans: Vec<crate::plan::PlanNode>,
    pub attention: Option<taskdaemon_service::PipelineAttention>,
}

/// Which tables an event batch touched.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Touched {
    pub processes: bool,
    pub queues: bool,
    pub loops: bool,
    pub tracked: bool,
    pub plans: bool,
}

impl Model {
    /// Reads every view. `loaded_seq` is the feed's position before the
    /// reads: later events re-read what they touch.
    pub fn load(service: &Service, loaded_seq: i64) -> Result<Self> {
        let mut model = Model {
            loaded_seq,
            workspace: service
                .workspace_opt()
                .map(|w| w.root().display().to_string())
                .unwrap_or_else(|| service.location().display()),
            ..Model::default()
        };
        model.refresh_daemon(service);
        model.refresh_processes(service)?;
        model.refresh_queues(service)?;
        model.refresh_loops(service)?;
        model
            .tracked
            .set_tasks(service.tracked(&TrackedFilter::default())?);
        model.refresh_summary(service)?;
        model.refresh_plans(service)?;
        Ok(model)
    }

    /// Reads the newest plans' trees and what of the pipeline waits for a person.
    pub fn refresh_plans(&mut self, service: &Service) -> Result<()> {
        let plans = service.plans(false)?;
        let newest = plans.len().saturating_sub(PLANS_SHOWN);
        self.plans = plans[newest..]
            .iter()
            .map(|p| service.plan_show(&p.plan.id))
            .map(|show| show.map(|s| crate::plan::PlanNode::from_show(&s)))
            .collect::<Result<_>>()?;
        self.attention = Some(service.pipeline_attention()?);
        Ok(())
    }

    pub fn refresh_daemon(&mut self, service: &Service) {
        self.daemon.pid = service.daemon_pid();
    }

    pub fn refresh_processes(&mut self, service: &Service) -> Result<()> {
        self.processes = service.processes(true, None)?;
        Ok(())
    }

    pub fn refresh_queues(&mut self, service: &Service) -> Result<()> {
        self.workers = service.worker_rows()?;
        self.queue_tasks = service.queue_tasks(None, None, Some(QUEUE_ROWS))?;
        Ok(())
    }

    pub fn refresh_loops(&mut self, service: &Service) -> Result<()> {
        self.loops = service.loops(true)?;
        Ok(())
    }

    fn refresh_summary(&mut self, service: &Service) -> Result<()> {
        let resume = service.resume(None)?;
        let ready = service.ready(READY_SHOWN)?;
        self.tracked.apply_summary(resume, ready);
        Ok(())
    }

    /// Takes in a batch of events from the feed: every one joins the
    /// records; those after `loaded_seq` re-read what they touched.
    pub fn apply(&mut self, service: &Service, events: Vec<Event>) -> Result<Touched> {
        let mut touched = Touched::default();
        let mut tasks = BTreeSet::new();
        let mut memory = false;
        for event in &events {
            if event.seq <= self.loaded_seq {
                continue;
            }
            if is_pipeline(event.kind) {
                touched.plans = true;
                continue;
            }
            match &event.task_id {
                Some(id) => {
                    tasks.insert(id.clone());
                }
                None => memory |= event.kind == EventKind::Remembered,
            }
        }
        self.push_records(events);
        let mut reshaped = false;
        for id in tasks {
            let task = match service.task(&id) {
                Ok(task) => task,
                // Gone meanwhile (an import replaced the store): nothing to show.
                Err(ServiceError::Store(taskdaemon_store::StoreError::NotFound(_))) => continue,
                Err(e) => return Err(e),
            };
            match task.kind {
                TaskKind::Process => touched.processes = true,
                TaskKind::Agent => touched.queues = true,
                TaskKind::Loop => touched.loops = true,
                TaskKind::Manual => {
                    touched.tracked = true;
                    reshaped |= self.tracked.upsert(task) == TreeChange::Rebuild;
                }
            }
        }
        if reshaped {
            self.tracked.retree();
        }
        if touched.processes {
            self.refresh_processes(service)?;
        }
        if touched.queues {
            self.refresh_queues(service)?;
        }
        if touched.loops {
            self.refresh_loops(service)?;
        }
        if touched.plans {
            self.refresh_plans(service)?;
        }
        if touched.tracked || memory {
            touched.tracked = true;
            self.refresh_summary(service)?;
        }
        Ok(touched)
    }

    fn push_records(&mut self, events: Vec<Event>) {
        self.records.extend(events);
        if self.records.len() > RECORDS_HELD {
            let excess = self.records.len() - RECORDS_HELD;
            self.records.drain(..excess);
        }
    }
}

/// Plans shown in the Plan view (the newest).
const PLANS_SHOWN: usize = 20;

/// Events of plans, specs, phases and their messages: their task id is a
/// plan, not a task.
fn is_pipeline(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::PlanCreated
            | EventKind::PlanSubmitted
            | EventKind::PlanStatus
            | EventKind::SpecCreated
            | EventKind::SpecStatus
            | EventKind::PhaseCreated
            | EventKind::PhaseStatus
            | EventKind::MessageSent
            | EventKind::MessageDelivered
            | EventKind::MessageAnswered
            | EventKind::MessageDead
    )
}

impl Model {
    /// Reads the end of `id`'s output (stdout and stderr).
    pub fn load_log(&mut self, service: &Service, id: &str) {
        let read = |stderr: bool| -> std::result::Result<Vec<String>, String> {
            let (_, path) = service.log_path(id, stderr).map_err(|e| e.to_string())?;
            match tail_lines(&path, LOG_LINES) {
                Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        };
        let (stdout, stderr) = (read(false), read(true));
        self.log = LogPane {
            task: Some(id.to_owned()),
            error: stdout.as_ref().err().or(stderr.as_ref().err()).cloned(),
            stdout: stdout.unwrap_or_default(),
            stderr: stderr.unwrap_or_default(),
        };
    }

    /// Reads a loop with its iterations.
    pub fn load_progress(&mut self, service: &Service, id: &str) {
        match service.loop_show(id) {
            Ok(show) => {
                self.progress = Some(show);
                self.progress_error = None;
            }
            Err(e) => {
                self.progress = None;
                self.progress_error = Some(e.to_string());
            }
        }
    }
}
