//! The append-only JSONL progress log a loop resumes from.
//!
//! One line per finished iteration, appended and fsynced before the next
//! iteration starts. A crash can leave a torn last line; reading tolerates it
//! (and any unparsable line), keeps the last complete record per iteration,
//! and the next append starts on a fresh line.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cost::Accounting;
use crate::types::Usage;

/// One finished iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IterationRecord {
    /// 1-based iteration number.
    pub iteration: u32,
    /// When it started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: DateTime<Utc>,
    /// When validation finished.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub finished_at: DateTime<Utc>,
    /// Number of tool calls made.
    pub tool_calls: u32,
    /// Tool names in call order.
    pub tool_names: Vec<String>,
    /// Whether the iteration hit the tool-round cap.
    #[serde(default)]
    pub tool_rounds_exhausted: bool,
    /// The model's last text, trimmed.
    #[serde(default)]
    pub summary: String,
    /// Validation exit code (`None` if it could not run).
    pub validation_exit_code: Option<i32>,
    /// Whether validation timed out.
    #[serde(default)]
    pub validation_timed_out: bool,
    /// Validation output, trimmed to its tail.
    pub validation_output: String,
    /// Tokens used by the iteration.
    pub usage: Usage,
    /// Cost of the iteration in USD.
    pub cost_usd: f64,
    /// Model calls made.
    #[serde(default)]
    pub llm_calls: u32,
    /// A structural tool (e.g. `finish`) ended the loop in this iteration;
    /// no validation command ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
}

impl IterationRecord {
    /// Whether validation passed, or a structural tool finished the loop.
    pub fn passed(&self) -> bool {
        self.finished || (self.validation_exit_code == Some(0) && !self.validation_timed_out)
    }
}

/// The progress file of one loop.
#[derive(Debug)]
pub struct ProgressLog {
    path: PathBuf,
    records: Vec<IterationRecord>,
    needs_newline: bool,
}

impl ProgressLog {
    /// Opens (or prepares to create) the log at `path` and reads what it holds.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let (records, needs_newline) = match fs::read(&path) {
            Ok(bytes) => (
                parse_records(&bytes),
                !bytes.is_empty() && !bytes.ends_with(b"\n"),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), false),
            Err(e) => return Err(e),
        };
        Ok(ProgressLog {
            path,
            records,
            needs_newline,
        })
    }

    /// A stand-in holding nothing, used while the real log is appended to on
    /// another thread.
    pub(crate) fn unread(path: PathBuf) -> Self {
        ProgressLog {
            path,
            records: Vec::new(),
            needs_newline: false,
        }
    }

    /// Reads the records at `path` without keeping the log open (for status views).
    pub fn read(path: &Path) -> io::Result<Vec<IterationRecord>> {
        Ok(Self::open(path)?.records)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records by iteration, deduplicated.
    pub fn records(&self) -> &[IterationRecord] {
        &self.records
    }

    /// The iteration to run next.
    pub fn next_iteration(&self) -> u32 {
        self.records.last().map_or(1, |r| r.iteration + 1)
    }

    /// The record whose validation passed, if any.
    pub fn succeeded(&self) -> Option<&IterationRecord> {
        self.records.iter().find(|r| r.passed())
    }

    /// Tokens and cost over all recorded iterations.
    pub fn totals(&self) -> Accounting {
        let mut total = Accounting::default();
        for r in &self.records {
            total.usage.add(&r.usage);
            total.cost_usd += r.cost_usd;
            total.calls += r.llm_calls;
        }
        total
    }

    /// Appends a record durably (write, fsync; the directory too when the file is new).
    pub fn append(&mut self, record: IterationRecord) -> io::Result<()> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)?;
        let is_new = !self.path.exists();
        let mut line = serde_json::to_string(&record).map_err(io::Error::other)?;
        line.push('\n');
        if self.needs_newline {
            // Finish the torn line so this record starts on its own line.
            line.insert(0, '\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line.as_bytes())?;
        file.sync_all()?;
        if is_new {
            File::open(&dir)?.sync_all()?;
        }
        self.needs_newline = false;
        self.records.retain(|r| r.iteration != record.iteration);
        self.records.push(record);
        self.records.sort_by_key(|r| r.iteration);
        Ok(())
    }
}

fn parse_records(bytes: &[u8]) -> Vec<IterationRecord> {
    let text = String::from_utf8_lossy(bytes);
    let mut by_iteration = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<IterationRecord>(line) {
            Ok(record) => {
                by_iteration.insert(record.iteration, record);
            }
            Err(e) => tracing::warn!(line = n + 1, error = %e, "skipping unreadable progress line"),
        }
    }
    by_iteration.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(iteration: u32, exit: i32) -> IterationRecord {
        IterationRecord {
            iteration,
            started_at: Utc::now(),
            finished_at: Utc::now(),
            tool_calls: 1,
            tool_names: vec!["write_file".into()],
            tool_rounds_exhausted: false,
            summary: format!("did {iteration}"),
            validation_exit_code: Some(exit),
            validation_timed_out: false,
            validation_output: "out".into(),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Usage::default()
            },
            cost_usd: 0.5,
            llm_calls: 2,
            finished: false,
        }
    }

    #[test]
    fn torn_line_is_ignored_and_resume_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loops/L1/progress.jsonl");
        let mut log = ProgressLog::open(&path).unwrap();
        assert_eq!(log.next_iteration(), 1);
        log.append(record(1, 1)).unwrap();
        log.append(record(2, 1)).unwrap();
        // A crash mid-write of iteration 3.
        let full = serde_json::to_string(&record(3, 0)).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);

        let mut log = ProgressLog::open(&path).unwrap();
        assert_eq!(log.records().len(), 2);
        assert_eq!(log.next_iteration(), 3);
        assert!(log.succeeded().is_none());
        assert_eq!(log.totals().calls, 4);
        log.append(record(3, 0)).unwrap();

        let log = ProgressLog::open(&path).unwrap();
        assert_eq!(
            log.records()
                .iter()
                .map(|r| r.iteration)
                .collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(log.succeeded().map(|r| r.iteration), Some(3));
    }

    #[test]
    fn duplicates_keep_the_last_complete_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let mut a = record(1, 1);
        a.summary = "first".into();
        let mut b = record(1, 1);
        b.summary = "second".into();
        let text = format!(
            "{}\n{}\n",
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        fs::write(&path, text).unwrap();
        let log = ProgressLog::open(&path).unwrap();
        assert_eq!(log.records().len(), 1);
        assert_eq!(log.records()[0].summary, "second");
        assert_eq!(log.next_iteration(), 2);
    }
}
