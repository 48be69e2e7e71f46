//! Completion rates and execution times over a window, by queue, kind and
//! day, and the report built on them (`taskdaemon report`, the dashboard's
//! history and export). Ended tasks are read from the store in pages; only
//! their durations are held, to compute percentiles.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use taskdaemon_core::time::{Millis, to_rfc3339};
use taskdaemon_core::{Status, TaskKind};
use taskdaemon_store::FinishedTask;

use crate::{Result, Service};

/// Ended tasks read from the store at a time.
const PAGE: usize = 1000;
/// Failures listed in a report.
const REPORT_FAILURES: usize = 50;

/// Outcomes and durations of one group of ended tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Aggregate {
    /// The queue, kind or day (`YYYY-MM-DD`, UTC); `all` for the total.
    pub key: String,
    pub finished: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub lost: u64,
    /// Succeeded out of finished.
    pub completion_rate: Option<f64>,
    /// Execution time (start to end) percentiles, of tasks that started.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Cost the executors reported (Claude Code results).
    pub cost_usd: f64,
    #[serde(skip)]
    durations: Vec<u64>,
}

impl Aggregate {
    fn add(&mut self, task: &FinishedTask) {
        self.finished += 1;
        match task.status {
            Status::Succeeded => self.succeeded += 1,
            Status::Failed => self.failed += 1,
            Status::Cancelled => self.cancelled += 1,
            Status::Lost => self.lost += 1,
            _ => {}
        }
        if let Some(started) = task.started_at {
            self.durations
                .push(u64::try_from(task.finished_at - started).unwrap_or(0));
        }
        self.cost_usd += cost(task);
    }

    fn finish(mut self, key: String) -> Self {
        self.key = key;
        self.completion_rate =
            (self.finished > 0).then(|| self.succeeded as f64 / self.finished as f64);
        self.durations.sort_unstable();
        self.p50_ms = percentile(&self.durations, 50);
        self.p95_ms = percentile(&self.durations, 95);
        self
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn cost(task: &FinishedTask) -> f64 {
    task.result
        .as_ref()
        .and_then(|r| r.get("cost_usd"))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

/// Aggregates over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Aggregates {
    #[schema(value_type = i64)]
    pub since: Millis,
    pub total: Aggregate,
    pub by_queue: Vec<Aggregate>,
    pub by_kind: Vec<Aggregate>,
    pub by_day: Vec<Aggregate>,
}

/// One failure in a report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Failure {
    pub id: String,
    pub kind: TaskKind,
    pub queue: Option<String>,
    pub status: Status,
    #[schema(value_type = i64)]
    pub finished_at: Millis,
    pub reason: Option<String>,
}

/// What `taskdaemon report` shows.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub aggregates: Aggregates,
    /// The newest failures (failed or lost), with their reasons.
    pub failures: Vec<Failure>,
    /// LLM loop cost by model.
    pub loop_cost_by_model: BTreeMap<String, f64>,
}

impl Service {
    /// Completion rates and execution-time percentiles of the tasks that
    /// ended since `since`, in total and by queue, kind and day.
    pub fn aggregates(&self, since: Millis) -> Result<Aggregates> {
        self.collect(since, |_| {})
    }

    fn collect(&self, since: Millis, mut each: impl FnMut(&FinishedTask)) -> Result<Aggregates> {
        let mut total = Aggregate::default();
        let mut groups: [BTreeMap<String, Aggregate>; 3] = Default::default();
        let mut after = String::new();
        loop {
            let page = self.store.finished_tasks(since, &after, PAGE)?;
            for task in &page {
                total.add(task);
                let day = to_rfc3339(task.finished_at)[..10].to_owned();
                let queue = task.queue.clone().unwrap_or_else(|| "-".to_owned());
                for (group, key) in
                    groups
                        .iter_mut()
                        .zip([queue, task.kind.as_str().to_owned(), day])
                {
                    group.entry(key).or_default().add(task);
                }
                each(task);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.uuid.clone(),
                _ => break,
            }
        }
        let [by_queue, by_kind, by_day] =
            groups.map(|g| g.into_iter().map(|(k, a)| a.finish(k)).collect());
        Ok(Aggregates {
            since,
            total: total.finish("all".to_owned()),
            by_queue,
            by_kind,
            by_day,
        })
    }

    /// Completions, failures with reasons, durations and cost since `since`.
    pub fn report(&self, since: Millis) -> Result<Report> {
        let mut failures = Vec::new();
        let aggregates = self.collect(since, |task| {
            if matches!(task.status, Status::Failed | Status::Lost) {
                failures.push(Failure {
                    id: task.id.clone(),
                    kind: task.kind,
                    queue: task.queue.clone(),
                    status: task.status,
                    finished_at: task.finished_at,
                    reason: task.error.clone().or_else(|| {
                        task.result
                            .as_ref()
                            .and_then(|r| r.get("error"))
                            .and_then(|e| e.as_str())
                            .map(str::to_owned)
                    }),
                });
            }
        })?;
        failures.sort_by_key(|f| std::cmp::Reverse(f.finished_at));
        failures.truncate(REPORT_FAILURES);
        let mut loop_cost_by_model = BTreeMap::new();
        for record in self.store.loops(true)? {
            if record.task.finished_at.is_some_and(|at| at < since) {
                continue;
            }
            let model = record
                .spec
                .get("model")
                .and_then(|m| m.as_str())
                .unwrap_or("default")
                .to_owned();
            *loop_cost_by_model.entry(model).or_insert(0.0) += record.cost_usd;
        }
        Ok(Report {
            aggregates,
            failures,
            loop_cost_by_model,
        })
    }
}

impl Report {
    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# taskdaemon report\n\nSince {}.\n\n",
            to_rfc3339(self.aggregates.since)
        );
        let a = &self.aggregates;
        let _ = writeln!(
            out,
            "{} tasks ended: {} succeeded, {} failed, {} cancelled, {} lost.\n",
            a.total.finished, a.total.succeeded, a.total.failed, a.total.cancelled, a.total.lost
        );
        for (title, rows) in [
            ("By queue", &a.by_queue),
            ("By kind", &a.by_kind),
            ("By day", &a.by_day),
        ] {
            let _ = writeln!(out, "## {title}\n");
            out.push_str("| | ended | succeeded | failed | completion | p50 | p95 | cost |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
            for r in rows.iter() {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | ${:.2} |",
                    r.key,
                    r.finished,
                    r.succeeded,
                    r.failed + r.lost,
                    r.completion_rate
                        .map_or("-".to_owned(), |c| format!("{:.0}%", c * 100.0)),
                    ms(r.p50_ms),
                    ms(r.p95_ms),
                    r.cost_usd
                );
            }
            out.push('\n');
        }
        out.push_str("## Failures\n\n");
        if self.failures.is_empty() {
            out.push_str("None.\n\n");
        }
        for f in &self.failures {
            let _ = writeln!(
                out,
                "- **{}** ({}{}) {} at {}: {}",
                f.id,
                f.kind.as_str(),
                f.queue
                    .as_deref()
                    .map(|q| format!(", queue {q}"))
                    .unwrap_or_default(),
                f.status,
                to_rfc3339(f.finished_at),
                f.reason
                    .as_deref()
                    .unwrap_or("no reason recorded")
                    .replace('\n', " ")
            );
        }
        if !self.loop_cost_by_model.is_empty() {
            out.push_str("\n## Loop cost by model\n\n");
            for (model, cost) in &self.loop_cost_by_model {
                let _ = writeln!(out, "- {model}: ${cost:.2}");
            }
        }
        out
    }

    /// The report as a standalone HTML page (the Markdown, escaped, in a
    /// `<pre>`, plus the tables as HTML).
    pub fn to_html(&self) -> String {
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>taskdaemon report</title>\
             <style>body{{font:15px system-ui;max-width:60rem;margin:2rem auto;padding:0 1rem}}pre{{white-space:pre-wrap}}</style>\
             </head><body><pre>{}</pre></body></html>\n",
            escape(&self.to_markdown())
        )
    }
}

fn ms(value: Option<u64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 95), Some(7));
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 95), Some(95));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    }
}
