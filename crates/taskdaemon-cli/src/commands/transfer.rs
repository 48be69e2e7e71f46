//! `taskdaemon export`, `import`, `backup`, `repair` and `autodev`: moving
//! the whole store in and out, and putting it and its projections right.

use std::fs::File;
use std::io::{self, BufReader, Write};

use anyhow::Context;
use std::path::Path;

use taskdaemon_core::sync;
use taskdaemon_service::Repair;
use taskdaemon_store::{ExportRecord, Store, StoreError};
use taskdaemon_workspace::{Workspace, write_atomic, write_atomic_with};

use super::{open_store, service};
use crate::args::{BackupArgs, ExportArgs, ExportFormat, ImportArgs, MergeDriverArgs};
use crate::error::UsageError;
use crate::output::print_json;

pub fn export(workspace: &Workspace, args: ExportArgs) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    match &args.output {
        Some(path) => {
            write_atomic_with(path, |out| write_export(store, &args, out))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("exported to {}", path.display());
        }
        None => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            write_export(store, &args, &mut out)?;
            out.flush()?;
        }
    }
    Ok(0)
}

/// Streams every record to `out`, one per line or as one JSON array, in
/// the canonical order (`sync::canonical_order`: records by type, then by
/// id; events by number) with object keys sorted, so an export kept in git
/// changes only where the work did.
fn write_export(store: &dyn Store, args: &ExportArgs, out: &mut dyn Write) -> io::Result<()> {
    let format = args.format;
    let mut writer = ExportWriter {
        out,
        format,
        first: true,
        held: Vec::new(),
    };
    if format == ExportFormat::Json {
        writer.out.write_all(b"[\n")?;
    }
    let mut failure: Option<io::Error> = None;
    let result = store.export(&mut |record| {
        if args.tracked && !taskdaemon_store::syncs_between_clones(&record) {
            return Ok(());
        }
        let record = if args.with_secrets {
            record
        } else {
            match taskdaemon_store::without_secrets(record) {
                Some(record) => record,
                None => return Ok(()),
            }
        };
        writer.push(record).map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            StoreError::Aborted(message)
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    result.map_err(io::Error::other)?;
    writer.release()?;
    if format == ExportFormat::Json {
        writer.out.write_all(b"\n]\n")?;
    }
    Ok(())
}

/// Writes export records, holding those before the events (few, next to
/// the history) until they can be written in canonical order.
struct ExportWriter<'a> {
    out: &'a mut dyn Write,
    format: ExportFormat,
    first: bool,
    held: Vec<sync::Record>,
}

impl ExportWriter<'_> {
    fn push(&mut self, record: ExportRecord) -> io::Result<()> {
        let is_event = matches!(record, ExportRecord::Event(_));
        let serde_json::Value::Object(record) = serde_json::to_value(&record)? else {
            return Err(io::Error::other("an export record is not a JSON object"));
        };
        if is_event {
            // Events come by number, which is their canonical order.
            self.release()?;
            self.write(record)
        } else {
            self.held.push(record);
            Ok(())
        }
    }

    fn release(&mut self) -> io::Result<()> {
        for record in sync::canonical_order(std::mem::take(&mut self.held)) {
            self.write(record)?;
        }
        Ok(())
    }

    fn write(&mut self, record: sync::Record) -> io::Result<()> {
        if self.format == ExportFormat::Json && !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        self.out
            .write_all(sync::canonical_line(serde_json::Value::Object(record)).as_bytes())?;
        if self.format == ExportFormat::Jsonl {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// `taskdaemon merge-driver %O %A %B`: merges the three exports git hands
/// over and writes the result over `%A`. Exit 0: merged; exit 1: git keeps
/// the conflict and the reason is on stderr.
pub fn merge_driver(args: MergeDriverArgs) -> anyhow::Result<u8> {
    let read = |path: &Path| -> anyhow::Result<Vec<sync::Record>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        Ok(sync::parse_export(&text, &path.display().to_string())
            .map_err(|e| UsageError(e.to_string()))?)
    };
    let (base, ours, theirs) = (read(&args.base)?, read(&args.ours)?, read(&args.theirs)?);
    match sync::merge(base, ours, theirs) {
        Ok(merged) => {
            let text = sync::render_export(merged);
            write_atomic(&args.ours, text.as_bytes())
                .with_context(|| format!("writing {}", args.ours.display()))?;
            Ok(0)
        }
        Err(conflict) => {
            eprintln!("taskdaemon merge-driver: {conflict}");
            Ok(1)
        }
    }
}

pub fn import(workspace: &Workspace, args: ImportArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let store = service.store();
    let file =
        File::open(&args.file).map_err(|e| UsageError(format!("{}: {e}", args.file.display())))?;
    let reader = BufReader::new(file);
    let mut importer = if args.merge {
        taskdaemon_store::begin_merge_import(store, "cli")
    } else {
        store.begin_import()?
    };
    let fed = taskdaemon_store::feed_export(reader, &mut *importer);
    if let Err(message) = fed {
        // Dropping the importer rolls back: nothing of the file is kept.
        drop(importer);
        return Err(UsageError(format!(
            "{}: {message}; nothing was imported",
            args.file.display()
        ))
        .into());
    }
    let report = importer.finish()?;
    service.rebuild_projections();
    if args.merge {
        println!(
            "merged {}: {} tasks added, {} updated, {} unchanged, {} kept (changed here since); \
             {} records that stay per clone (history, memory, sessions, processes) skipped",
            args.file.display(),
            report.tasks,
            report.updated,
            report.unchanged,
            report.kept,
            report.skipped
        );
        return Ok(0);
    }
    println!(
        "imported {} tasks, {} memories, {} events and {} sessions from {}",
        report.tasks,
        report.memory,
        report.events,
        report.sessions,
        args.file.display()
    );
    Ok(0)
}

pub fn backup(workspace: &Workspace, args: BackupArgs) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    let path = match args.output {
        Some(path) => path,
        None => {
            let dir = workspace.backups_dir();
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
            dir.join(format!("state-{stamp}.db"))
        }
    };
    store.backup(&path)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!("backup written and checked ({size} bytes)");
    println!("{}", path.display());
    Ok(0)
}

pub fn repair(workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let repair = service(workspace)?.repair()?;
    if json {
        print_json(&repair)?;
    } else {
        print!("{}", repair_text(&repair));
    }
    Ok(if repair.healthy() { 0 } else { 1 })
}

/// `autodev`: seed 003's task files, rewritten from the store now.
pub fn autodev(workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let written = service(workspace)?.write_seed_files()?;
    if json {
        print_json(&written)?;
    } else {
        println!(
            "wrote {} (current.json, memory.json, history/: {} newly archived) at store version {}",
            written.dir.display(),
            written.archived,
            written.version
        );
    }
    Ok(0)
}

fn repair_text(repair: &Repair) -> String {
    let mut out = String::new();
    if repair.problems_found.is_empty() {
        out.push_str("store: integrity check passed\n");
    } else {
        out.push_str(&format!(
            "store: {} problems found\n",
            repair.problems_found.len()
        ));
        for problem in &repair.problems_found {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    out.push_str(&format!(
        "search index: rebuilt ({} entries)\n",
        repair.store.reindexed
    ));
    for id in &repair.store.resettled {
        out.push_str(&format!("corrected the waiting status of {id}\n"));
    }
    for orphan in &repair.store.orphans_removed {
        out.push_str(&format!(
            "removed {orphan}: its plan, spec or loop is gone\n"
        ));
    }
    for path in &repair.worktrees_removed {
        out.push_str(&format!(
            "removed worktree {}: no spec owns it (its branch is kept)\n",
            path.display()
        ));
    }
    if let Some(e) = &repair.worktrees_error {
        out.push_str(&format!("worktrees: NOT cleaned up: {e}\n"));
    }
    for p in &repair.projections {
        let action = match &p.error {
            None => "rewritten from the store".to_owned(),
            Some(e) => format!("NOT rewritten: {e}"),
        };
        out.push_str(&format!(
            "{}: was {}; {action}\n",
            p.path.display(),
            p.found
        ));
    }
    if repair.store.remaining.is_empty() {
        out.push_str("healthy\n");
    } else {
        out.push_str("still wrong after repair (restore a backup with `cp BACKUP .taskdaemon/state.db` while the daemon is stopped):\n");
        for problem in &repair.store.remaining {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    out
}
