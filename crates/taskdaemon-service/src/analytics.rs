//! Loop analytics (`taskdaemon analytics`): runs, success rate, iterations,
//! tool calls, tokens, cost, duration percentiles and validation pass rate,
//! grouped by loop type, model or day. Read from the store's loop records,
//! so it works the same on SQLite and PostgreSQL, with or without a daemon.

use std::collections::BTreeMap;

use serde::Serialize;
use taskdaemon_core::time::{Millis, to_rfc3339};
use taskdaemon_core::{LoopRecord, Status};

use crate::{Result, Service};

/// The group name of loops started without a type.
pub const UNTYPED: &str = "(untyped)";

/// How to group loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Type,
    Model,
    /// The UTC day the loop was created.
    Day,
}

/// Which loops, grouped how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyticsQuery {
    /// Only loops created at or after this time.
    pub since: Option<Millis>,
    pub by: GroupBy,
}

/// The figures of one group (or of all loops).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnalyticsGroup {
    pub key: String,
    pub runs: u64,
    /// Loops that ended (succeeded, failed or cancelled).
    pub finished: u64,
    pub succeeded: u64,
    /// succeeded / finished.
    pub success_rate: Option<f64>,
    pub iterations: u64,
    pub tool_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_usd: f64,
    /// Wall time from start to end of finished loops, seconds.
    pub duration_p50_secs: Option<f64>,
    pub duration_p95_secs: Option<f64>,
    /// Validation runs that passed / validation runs (one per iteration).
    pub validation_pass_rate: Option<f64>,
}

/// The answer of `analytics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analytics {
    pub by: GroupBy,
    pub since: Option<String>,
    pub groups: Vec<AnalyticsGroup>,
    pub total: AnalyticsGroup,
}

impl Service {
    /// Loop analytics over the store's loop records.
    pub fn analytics(&self, query: AnalyticsQuery) -> Result<Analytics> {
        let loops = self.store.loops(true)?;
        Ok(summarize(&loops, query))
    }
}

/// The figures of `loops`, grouped as `query` asks.
pub fn summarize(loops: &[LoopRecord], query: AnalyticsQuery) -> Analytics {
    let chosen: Vec<&LoopRecord> = loops
        .iter()
        .filter(|l| query.since.is_none_or(|since| l.task.created_at >= since))
        .collect();
    let mut grouped: BTreeMap<String, Vec<&LoopRecord>> = BTreeMap::new();
    for record in &chosen {
        grouped
            .entry(group_key(record, query.by))
            .or_default()
            .push(record);
    }
    Analytics {
        by: query.by,
        since: query.since.map(to_rfc3339),
        groups: grouped
            .into_iter()
            .map(|(key, records)| figures(key, &records))
            .collect(),
        total: figures("all".to_owned(), &chosen),
    }
}

fn group_key(record: &LoopRecord, by: GroupBy) -> String {
    let field = |name: &str| {
        record
            .spec
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match by {
        GroupBy::Type => field("loop_type").unwrap_or_else(|| UNTYPED.to_owned()),
        GroupBy::Model => field("model").unwrap_or_else(|| "(unknown)".to_owned()),
        GroupBy::Day => to_rfc3339(record.task.created_at)
            .chars()
            .take(10)
            .collect(),
    }
}

fn figures(key: String, records: &[&LoopRecord]) -> AnalyticsGroup {
    let mut group = AnalyticsGroup {
        key,
        ..AnalyticsGroup::default()
    };
    let mut durations = Vec::new();
    for record in records {
        let task = &record.task;
        group.runs += 1;
        if task.status.is_terminal() {
            group.finished += 1;
            if let (Some(start), Some(end)) = (task.started_at, task.finished_at) {
                durations.push((end - start).max(0) as f64 / 1000.0);
            }
        }
        if task.status == Status::Succeeded {
            group.succeeded += 1;
        }
        group.iterations += u64::from(record.iterations);
        group.tool_calls += record.tool_calls;
        group.input_tokens += record.input_tokens;
        group.output_tokens += record.output_tokens;
        group.cache_read_tokens += record.cache_read_tokens;
        group.cache_write_tokens += record.cache_write_tokens;
        group.cost_usd += record.cost_usd;
    }
    group.success_rate = ratio(group.succeeded, group.finished);
    // A loop stops at its first passing validation, so each success is one
    // passed run and every other iteration's validation failed.
    group.validation_pass_rate = ratio(group.succeeded, group.iterations);
    durations.sort_by(f64::total_cmp);
    group.duration_p50_secs = percentile(&durations, 50);
    group.duration_p95_secs = percentile(&durations, 95);
    group
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(values: &[f64], p: usize) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = (p * values.len()).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use taskdaemon_core::{NewLoop, TaskKind};
    use taskdaemon_store::{SqliteStore, Store};

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50), Some(10.0));
        assert_eq!(percentile(&v, 95), Some(19.0));
        assert_eq!(percentile(&[4.0], 95), Some(4.0));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn groups_by_type_and_model_from_a_real_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let make =
            |loop_type: Option<&str>, model: &str, passed_at: Option<u32>, failed_after: u32| {
                let mut spec = json!({ "model": model, "provider": "anthropic" });
                if let Some(t) = loop_type {
                    spec["loop_type"] = json!(t);
                }
                let new = NewLoop {
                    name: None,
                    session: None,
                    argv: vec![],
                    workdir: "/w".into(),
                    spec,
                };
                let id = store.create_loop(&new, "t").unwrap().task.id;
                store.mark_loop_running(&id, 1, "t").unwrap();
                let last = passed_at.unwrap_or(failed_after);
                for n in 1..=last {
                    let passed = Some(n) == passed_at;
                    let it = taskdaemon_core::LoopIteration {
                        iteration: n,
                        tool_calls: 2,
                        validation_exit_code: Some(if passed { 0 } else { 1 }),
                        passed,
                        input_tokens: 10,
                        output_tokens: 1,
                        cache_read_tokens: 5,
                        cache_write_tokens: 0,
                        cost_usd: 0.5,
                    };
                    store.record_loop_iteration(&id, &it, "t").unwrap();
                }
                let end = match passed_at {
                    Some(iteration) => taskdaemon_core::LoopEnd::Succeeded { iteration },
                    None => taskdaemon_core::LoopEnd::Failed {
                        reason: "spent".into(),
                    },
                };
                store.finish_loop(&id, &end, "t").unwrap();
            };
        make(Some("plan"), "m1", Some(1), 0);
        make(Some("plan"), "m2", None, 3);
        make(None, "m1", Some(2), 0);
        let loops = store.loops(true).unwrap();
        assert!(loops.iter().all(|l| l.task.kind == TaskKind::Loop));

        let by_type = summarize(
            &loops,
            AnalyticsQuery {
                since: None,
                by: GroupBy::Type,
            },
        );
        let keys: Vec<&str> = by_type.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, [UNTYPED, "plan"]);
        let plan = &by_type.groups[1];
        assert_eq!((plan.runs, plan.finished, plan.succeeded), (2, 2, 1));
        assert_eq!(plan.success_rate, Some(0.5));
        assert_eq!((plan.iterations, plan.tool_calls), (4, 8));
        assert_eq!((plan.input_tokens, plan.cache_read_tokens), (40, 20));
        assert_eq!(plan.validation_pass_rate, Some(0.25));
        assert!((plan.cost_usd - 2.0).abs() < 1e-9);
        assert!(plan.duration_p50_secs.is_some());
        assert_eq!(by_type.total.runs, 3);

        let by_model = summarize(
            &loops,
            AnalyticsQuery {
                since: None,
                by: GroupBy::Model,
            },
        );
        let m1 = by_model.groups.iter().find(|g| g.key == "m1").unwrap();
        assert_eq!((m1.runs, m1.succeeded), (2, 2));
        let later = summarize(
            &loops,
            AnalyticsQuery {
                since: Some(i64::MAX),
                by: GroupBy::Day,
            },
        );
        assert!(later.groups.is_empty() && later.total.runs == 0);
    }
}
