//! `taskdaemon export`, `import`, `backup` and `repair`: moving the whole
//! store in and out, and putting it and its projections right.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

use anyhow::Context;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use taskdaemon_service::Repair;
use taskdaemon_store::{ExportRecord, Importer, Store, StoreError};
use taskdaemon_workspace::{Workspace, write_atomic_with};

use super::{open_store, service};
use crate::args::{BackupArgs, ExportArgs, ExportFormat, ImportArgs};
use crate::error::UsageError;
use crate::output::print_json;

pub fn export(workspace: &Workspace, args: ExportArgs) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    match &args.output {
        Some(path) => {
            write_atomic_with(path, |out| write_export(store, args.format, out))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("exported to {}", path.display());
        }
        None => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            write_export(store, args.format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(0)
}

/// Streams every record to `out`: one per line, or one JSON array.
fn write_export(store: &dyn Store, format: ExportFormat, out: &mut dyn Write) -> io::Result<()> {
    let mut first = true;
    let mut failure: Option<io::Error> = None;
    if format == ExportFormat::Json {
        out.write_all(b"[\n")?;
    }
    let result = store.export(&mut |record| {
        let written = (|| -> io::Result<()> {
            if format == ExportFormat::Json && !first {
                out.write_all(b",\n")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, &record)?;
            if format == ExportFormat::Jsonl {
                out.write_all(b"\n")?;
            }
            Ok(())
        })();
        written.map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            StoreError::Aborted(message)
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    result.map_err(io::Error::other)?;
    if format == ExportFormat::Json {
        out.write_all(b"\n]\n")?;
    }
    Ok(())
}

pub fn import(workspace: &Workspace, args: ImportArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let store = service.store();
    let file =
        File::open(&args.file).map_err(|e| UsageError(format!("{}: {e}", args.file.display())))?;
    let mut reader = BufReader::new(file);
    let mut importer = store.begin_import()?;
    let fed = match first_byte(&mut reader)? {
        Some(b'[') => feed_json(&mut reader, &mut *importer),
        Some(b'{') => feed_jsonl(reader, &mut *importer),
        Some(_) => Err("not an export: expected a JSON array or JSON lines".to_owned()),
        None => Err("the file is empty".to_owned()),
    };
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

/// The first byte that is not white space, left unread.
fn first_byte(reader: &mut BufReader<File>) -> anyhow::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        let Some(&byte) = buf.first() else {
            return Ok(None);
        };
        if byte.is_ascii_whitespace() {
            reader.consume(1);
        } else {
            return Ok(Some(byte));
        }
    }
}

fn feed_jsonl(reader: impl BufRead, importer: &mut dyn Importer) -> Result<(), String> {
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| format!("line {number}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ExportRecord =
            serde_json::from_str(&line).map_err(|e| format!("line {number}: {e}"))?;
        importer
            .add(record)
            .map_err(|e| format!("line {number}: {e}"))?;
    }
    Ok(())
}

/// Streams a JSON array into the importer one element at a time.
fn feed_json(reader: impl Read, importer: &mut dyn Importer) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    Feed { importer }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())
}

struct Feed<'a> {
    importer: &'a mut dyn Importer,
}

impl<'de> DeserializeSeed<'de> for Feed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Feed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of export records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut number = 0usize;
        while let Some(record) = seq.next_element::<ExportRecord>()? {
            number += 1;
            self.importer
                .add(record)
                .map_err(|e| serde::de::Error::custom(format!("record {number}: {e}")))?;
        }
        Ok(())
    }
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
