//! Importing an export, once for every backend: the records' order and
//! checks, the report, and the all-or-nothing commit. Each backend writes
//! the rows ([`ImportRows`]) inside the one transaction it opened.

use taskdaemon_core::pipeline::{parse_message_id, plan_number};
use taskdaemon_core::tracked::{Session, parse_memory_id};
use taskdaemon_core::{
    Event, Memory, MessageRecord, PhaseRecord, PlanRecord, QueueItem, SpecRecord,
};

use taskdaemon_core::TaskKind;

use crate::{
    ExportRecord, ExportedLoop, ExportedTask, ImportReport, Importer, Result, Store, StoreError,
};

/// How a backend writes an import's rows, on one open transaction.
pub(crate) trait ImportRows {
    fn counter(&mut self, name: &str, value: i64) -> Result<()>;
    fn meta(&mut self, key: &str, value: &str) -> Result<()>;
    fn session(&mut self, session: &Session) -> Result<()>;
    /// The task row with its labels, dependency edges and files.
    fn task(&mut self, task: &ExportedTask) -> Result<()>;
    /// Memory row `number` (the number in its `MEM-N` id).
    fn memory(&mut self, number: i64, memory: &Memory) -> Result<()>;
    fn queue_item(&mut self, item: &QueueItem) -> Result<()>;
    fn loop_row(&mut self, row: &ExportedLoop) -> Result<()>;
    /// Plan row `number` (the number in its `PLAN-N` id).
    fn plan(&mut self, number: i64, plan: &PlanRecord) -> Result<()>;
    /// A spec, after the ones of its plan imported before it.
    fn spec(&mut self, spec: &SpecRecord) -> Result<()>;
    fn phase(&mut self, phase: &PhaseRecord) -> Result<()>;
    /// Message row `number` (the number in its `MSG-N` id).
    fn message(&mut self, number: i64, message: &MessageRecord) -> Result<()>;
    fn pipeline_loop(&mut self, plan: &str, node: &str, loop_task: &str) -> Result<()>;
    fn gate(&mut self, gate: &taskdaemon_core::gate::Gate) -> Result<()>;
    fn event(&mut self, event: &Event) -> Result<()>;
    /// Commits the transaction, after moving the store's own counters past
    /// the imported numbers.
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self) -> Result<()>;
}

/// An import in progress: commits in [`Importer::finish`], rolls back when
/// dropped before.
pub(crate) struct Import<R: ImportRows> {
    rows: R,
    report: ImportReport,
    saw_header: bool,
    open: bool,
}

impl<R: ImportRows> Import<R> {
    /// Takes over `rows`, whose transaction is open.
    pub(crate) fn new(rows: R) -> Self {
        Self {
            rows,
            report: ImportReport::default(),
            saw_header: false,
            open: true,
        }
    }

    /// The backend's rows, for checks before the first record.
    pub(crate) fn rows(&mut self) -> &mut R {
        &mut self.rows
    }

    fn rollback(&mut self) {
        if self.open {
            self.open = false;
            if let Err(e) = self.rows.rollback() {
                tracing::warn!(error = %e, "rolling back an import failed");
            }
        }
    }
}

impl<R: ImportRows> Importer for Import<R> {
    fn add(&mut self, record: ExportRecord) -> Result<()> {
        if !self.saw_header {
            crate::check_import_header(&record)?;
        }
        let rows = &mut self.rows;
        match record {
            ExportRecord::Header(_) => self.saw_header = true,
            ExportRecord::Counter { name, value } => rows.counter(&name, value)?,
            ExportRecord::Meta { key, value } => rows.meta(&key, &value)?,
            ExportRecord::Session(session) => {
                rows.session(&session)?;
                self.report.sessions += 1;
            }
            ExportRecord::Task(task) => {
                rows.task(&task)?;
                self.report.tasks += 1;
            }
            ExportRecord::Memory(memory) => {
                let number = parse_memory_id(&memory.id).ok_or_else(|| {
                    StoreError::Invalid(format!("malformed memory id '{}'", memory.id))
                })?;
                rows.memory(number, &memory)?;
                self.report.memory += 1;
            }
            ExportRecord::QueueItem(item) => rows.queue_item(&item)?,
            ExportRecord::Loop(row) => rows.loop_row(&row)?,
            ExportRecord::Plan(plan) => {
                let number = plan_number(&plan.id).ok_or_else(|| {
                    StoreError::Invalid(format!("malformed plan id '{}'", plan.id))
                })?;
                rows.plan(number as i64, &plan)?;
            }
            ExportRecord::Spec(spec) => rows.spec(&spec)?,
            ExportRecord::Phase(phase) => rows.phase(&phase)?,
            ExportRecord::Message(message) => {
                let number = parse_message_id(&message.id).ok_or_else(|| {
                    StoreError::Invalid(format!("malformed message id '{}'", message.id))
                })?;
                rows.message(number, &message)?;
            }
            ExportRecord::PipelineLoop {
                plan,
                node,
                loop_task,
            } => rows.pipeline_loop(&plan, &node, &loop_task)?,
            ExportRecord::Gate(gate) => rows.gate(&gate)?,
            ExportRecord::Event(event) => {
                rows.event(&event)?;
                self.report.events += 1;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<ImportReport> {
        if !self.saw_header {
            return Err(StoreError::Invalid(
                "the export is empty: no header record".to_owned(),
            ));
        }
        self.rows.commit()?;
        self.open = false;
        Ok(std::mem::take(&mut self.report))
    }
}

impl<R: ImportRows> Drop for Import<R> {
    fn drop(&mut self) {
        self.rollback();
    }
}

/// The meta key under which the web's read-only share links (their secrets
/// included) are kept.
pub const SHARES_META_KEY: &str = "web.shares";

/// Takes the secrets out of an export record: a process's environment
/// (where API keys and passwords live) and the share links' secrets.
/// Returns `None` for a record that is nothing but secrets. `export` writes
/// records through this unless asked for `--with-secrets`; the store keeps
/// the originals, since a restart needs the environment.
pub fn without_secrets(mut record: ExportRecord) -> Option<ExportRecord> {
    match &mut record {
        ExportRecord::Task(task) => task.env.clear(),
        ExportRecord::Meta { key, .. } if key == SHARES_META_KEY => return None,
        _ => {}
    }
    Some(record)
}

/// Whether a record is tracked work that syncs between clones: the header,
/// counters and tracked (`manual`) tasks. `export --tracked` writes only
/// these and `import --merge` applies only these; the rest (history,
/// memory, sessions, processes, queues, loops, plans) stays per clone, so
/// nothing numbered by a clone's own counter reaches a shared file.
pub fn syncs_between_clones(record: &ExportRecord) -> bool {
    match record {
        ExportRecord::Header(_) | ExportRecord::Counter { .. } => true,
        ExportRecord::Task(task) => task.task.kind == TaskKind::Manual,
        _ => false,
    }
}

/// Starts `import --merge` into `store`, which may hold work already: the
/// file's tracked tasks and counters are collected, then applied in one
/// transaction by [`Store::merge_tracked`] on [`Importer::finish`]. What
/// stays per clone (events, memory, sessions, processes, queues, loops,
/// plans) is counted as skipped.
pub fn begin_merge_import<'a>(store: &'a dyn Store, actor: &str) -> Box<dyn Importer + 'a> {
    Box::new(MergeImport {
        store,
        actor: actor.to_owned(),
        tasks: Vec::new(),
        counters: Vec::new(),
        skipped: 0,
        saw_header: false,
    })
}

struct MergeImport<'a> {
    store: &'a dyn Store,
    actor: String,
    tasks: Vec<ExportedTask>,
    counters: Vec<(String, i64)>,
    skipped: u64,
    saw_header: bool,
}

impl Importer for MergeImport<'_> {
    fn add(&mut self, record: ExportRecord) -> Result<()> {
        if !self.saw_header {
            crate::check_import_header(&record)?;
        }
        match record {
            ExportRecord::Header(_) => self.saw_header = true,
            ExportRecord::Counter { name, value } => self.counters.push((name, value)),
            ExportRecord::Task(task) if task.task.kind == TaskKind::Manual => {
                self.tasks.push(*task)
            }
            _ => self.skipped += 1,
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<ImportReport> {
        if !self.saw_header {
            return Err(StoreError::Invalid(
                "the export is empty: no header record".to_owned(),
            ));
        }
        let merged = self
            .store
            .merge_tracked(&self.tasks, &self.counters, &self.actor)?;
        Ok(ImportReport {
            tasks: merged.added.len() as u64,
            updated: merged.updated.len() as u64,
            unchanged: merged.unchanged,
            kept: merged.kept.len() as u64,
            skipped: self.skipped,
            ..ImportReport::default()
        })
    }
}
