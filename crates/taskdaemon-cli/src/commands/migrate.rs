//! `taskdaemon migrate --to postgres://...`: copies the workspace's SQLite
//! store into PostgreSQL through the store's own streaming export and
//! import, then proves nothing was lost: the target is exported again and
//! its record counts and checksum must equal the source's.

use std::collections::BTreeMap;

use serde::Serialize;
use taskdaemon_store::{
    ExportRecord, Location, PgOptions, PgStore, SqliteStore, Store, redact_url,
};
use taskdaemon_workspace::Workspace;

use crate::args::MigrateArgs;
use crate::error::UsageError;
use crate::output::print_json;

/// Counts by record kind and a CRC-32 over every record but the header
/// (which names the writing backend's schema version).
#[derive(Debug, Serialize)]
struct Digest {
    counts: BTreeMap<&'static str, u64>,
    checksum: String,
    #[serde(skip)]
    crc: flate2::Crc,
}

impl Default for Digest {
    fn default() -> Self {
        Self {
            counts: BTreeMap::new(),
            checksum: format!("{:08x}", 0),
            crc: flate2::Crc::new(),
        }
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.counts == other.counts
            && self.crc.sum() == other.crc.sum()
            && self.crc.amount() == other.crc.amount()
    }
}

impl Digest {
    fn add(&mut self, record: &ExportRecord) {
        let kind = match record {
            ExportRecord::Header(_) => return,
            ExportRecord::Counter { .. } => "counters",
            ExportRecord::Meta { .. } => "meta",
            ExportRecord::Session(_) => "sessions",
            ExportRecord::Task(_) => "tasks",
            ExportRecord::Memory(_) => "memory",
            ExportRecord::QueueItem(_) => "queue_items",
            ExportRecord::Loop(_) => "loops",
            ExportRecord::Plan(_) => "plans",
            ExportRecord::Spec(_) => "specs",
            ExportRecord::Phase(_) => "phases",
            ExportRecord::Message(_) => "messages",
            ExportRecord::PipelineLoop { .. } => "plan_loops",
            ExportRecord::Gate(_) => "gates",
            ExportRecord::Event(_) => "events",
        };
        *self.counts.entry(kind).or_default() += 1;
        // Serialising plain data cannot fail.
        self.crc
            .update(&serde_json::to_vec(record).unwrap_or_default());
        self.checksum = format!("{:08x}", self.crc.sum());
    }
}

#[derive(Debug, Serialize)]
struct Report {
    from: String,
    to: String,
    source: Digest,
    target: Digest,
    verified: bool,
}

pub fn run(workspace: &Workspace, args: MigrateArgs) -> anyhow::Result<u8> {
    let Location::Postgres(url) = Location::parse(&args.to) else {
        return Err(UsageError(format!("--to '{}' is not a postgres:// URL", args.to)).into());
    };
    let db = workspace.db_path();
    if !db.exists() {
        return Err(UsageError(format!("no SQLite store at {} to migrate", db.display())).into());
    }
    let source = SqliteStore::open(&db)?;
    let target = PgStore::open(&PgOptions::new(&url))?;

    let mut source_digest = Digest::default();
    let mut importer = target.begin_import()?;
    source.export(&mut |record| {
        source_digest.add(&record);
        importer.add(record)
    })?;
    importer.finish()?;

    let mut target_digest = Digest::default();
    target.export(&mut |record| {
        target_digest.add(&record);
        Ok(())
    })?;
    let verified = source_digest == target_digest;
    let report = Report {
        from: db.display().to_string(),
        to: redact_url(&url),
        source: source_digest,
        target: target_digest,
        verified,
    };
    if args.json {
        print_json(&report)?;
    } else {
        println!("copied {} -> {}", report.from, report.to);
        for (kind, count) in &report.source.counts {
            let copied = report.target.counts.get(kind).copied().unwrap_or(0);
            println!("  {kind:<12} {count:>8} -> {copied}");
        }
        println!(
            "  checksum     {} -> {}",
            report.source.checksum, report.target.checksum
        );
        if verified {
            println!(
                "verified: nothing lost. Use it with --database-url, TASKDAEMON_DATABASE_URL \
                 or `[store] database_url` in .taskdaemon/config.toml."
            );
        }
    }
    if verified {
        Ok(0)
    } else {
        eprintln!("error: the copy differs from the source (see the counts and checksums)");
        Ok(1)
    }
}
