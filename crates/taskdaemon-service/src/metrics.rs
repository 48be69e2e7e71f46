//! The daemon's state and counters: what `status` shows, and the numbers a
//! metrics endpoint exports (tasks by status and kind, queue depth, workers
//! by state, the exit-detection latency histogram).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskdaemon_core::{Status, TaskKind};
use taskdaemon_daemon::running_pid;

use crate::{Result, Service, WorkerRow, WorkerState};

/// What `status` reports. It crosses the daemon's socket as JSON (see
/// [`Service::status_via_daemon`]), so it reads back what it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub workspace: String,
    /// Whether the daemon runs.
    pub running: bool,
    /// The daemon's PID when it runs.
    pub pid: Option<i32>,
    pub socket: String,
    /// The SQLite file, or the PostgreSQL URL without its password.
    pub store: String,
    /// Tasks by status; every status is present.
    pub tasks: BTreeMap<String, u64>,
    /// Claiming workers (`taskdaemon worker`) on every host, with their heartbeats.
    pub claim_workers: Vec<WorkerRow>,
    /// With `detailed`: each queue's worker, then the claiming workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<WorkerRow>>,
    /// How per-task limits (`spawn --max-memory` ...) are enforced here.
    pub limits: String,
    /// Whether the model's commands can run under Landlock here; where they
    /// cannot, `run_command` is refused unless a loop type sets `sandbox: none`.
    pub landlock: taskdaemon_llm::LandlockSupport,
    /// The loop-type configuration version in use and its alert, if any.
    pub loop_types: crate::ConfigStatus,
    /// Plans in progress, queries waiting for a person, alerts of open plans.
    pub pipeline: crate::PipelineAttention,
    /// What holds the daemon's plan scheduler back now (backpressure: a
    /// rate limit used up, a circuit breaker open), and what waits for it;
    /// nothing held while no daemon runs.
    pub scheduler: taskdaemon_daemon::scheduler_state::SchedulerState,
}

/// Counters for a metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Counters {
    /// Tasks by status; every status is present.
    pub tasks: BTreeMap<String, u64>,
    /// Tasks by kind (`process`, `agent`, `loop`, `manual`); every kind is present.
    pub kinds: BTreeMap<String, u64>,
    /// Queue items not finished yet, by queue.
    pub queue_depth: BTreeMap<String, u64>,
    /// Claiming workers by state (`running`, `stopped`, `lost`).
    pub workers: BTreeMap<String, u64>,
    /// The newest event's sequence number.
    pub last_event_seq: i64,
    /// Tokens and cost of every LLM loop, by `input`/`output` and in USD.
    pub loop_tokens: BTreeMap<String, u64>,
    pub loop_cost_usd: f64,
    /// Attempts of queue items claimed by a worker, from the event log.
    pub claims: u64,
    /// Restarts and retries scheduled, from the event log.
    pub retries: u64,
    /// From a supervised command's exit (its shim's wait returning) to the
    /// exit written in the store.
    pub exit_detection: Histogram,
}

/// Upper bounds (seconds) of the exit-detection latency buckets: sub-millisecond
/// to the shim's output-drain grace (2 s) and beyond.
pub const EXIT_DETECTION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram as Prometheus exports one: cumulative counts per
/// upper bound, then the sum and count of every observation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Histogram {
    /// Ascending by bound; the `+Inf` bucket is `count`.
    pub buckets: Vec<Bucket>,
    pub sum_seconds: f64,
    pub count: u64,
}

/// One bucket of a [`Histogram`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Upper bound in seconds.
    pub le: f64,
    /// Observations at or below it.
    pub count: u64,
}

impl Histogram {
    /// The histogram of `observations` over `bounds` (ascending).
    pub fn of(bounds: &[f64], observations: impl IntoIterator<Item = Duration>) -> Self {
        let mut per_bucket = vec![0u64; bounds.len()];
        let (mut sum_seconds, mut count) = (0.0, 0u64);
        for observed in observations {
            let seconds = observed.as_secs_f64();
            if let Some(i) = bounds.iter().position(|bound| seconds <= *bound) {
                per_bucket[i] += 1;
            }
            sum_seconds += seconds;
            count += 1;
        }
        let mut cumulative = 0;
        let buckets = bounds
            .iter()
            .zip(per_bucket)
            .map(|(bound, n)| {
                cumulative += n;
                Bucket {
                    le: *bound,
                    count: cumulative,
                }
            })
            .collect();
        Self {
            buckets,
            sum_seconds,
            count,
        }
    }
}

impl Service {
    /// Tasks by status, every status present (zero when none).
    pub fn task_counts(&self) -> Result<BTreeMap<String, u64>> {
        let counts = self.store.status_counts()?;
        Ok(Status::ALL
            .iter()
            .map(|status| {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                (status.to_string(), n)
            })
            .collect())
    }

    /// The daemon's PID when one runs for this workspace (none without a
    /// workspace): a look at its lock file, no connection made.
    pub fn daemon_pid(&self) -> Option<i32> {
        self.workspace.as_ref().and_then(running_pid)
    }

    /// The daemon, task counts and claiming workers; with `detailed`, every
    /// queue's worker too.
    pub fn status(&self, detailed: bool) -> Result<StatusReport> {
        let workspace = self.workspace()?;
        let pid = self.daemon_pid();
        Ok(StatusReport {
            workspace: workspace.root().display().to_string(),
            running: pid.is_some(),
            pid,
            socket: workspace.socket_path().display().to_string(),
            store: self.location.display(),
            tasks: self.task_counts()?,
            claim_workers: self.claim_worker_rows()?,
            workers: if detailed {
                Some(self.worker_rows()?)
            } else {
                None
            },
            limits: taskdaemon_supervisor::limits::ENFORCEMENT.to_owned(),
            landlock: taskdaemon_llm::landlock_support(),
            loop_types: self.config_status()?,
            pipeline: self.pipeline_attention()?,
            scheduler: self.scheduler_state(),
        })
    }

    /// Counters for metrics.
    pub fn counters(&self) -> Result<Counters> {
        let mut workers: BTreeMap<String, u64> = [
            WorkerState::Running,
            WorkerState::Stopped,
            WorkerState::Lost,
        ]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
        for row in self.claim_worker_rows()? {
            *workers.entry(row.state.to_string()).or_default() += 1;
        }
        let mut kinds: BTreeMap<String, u64> = [
            TaskKind::Process,
            TaskKind::Agent,
            TaskKind::Loop,
            TaskKind::Manual,
        ]
        .iter()
        .map(|k| (k.as_str().to_owned(), 0))
        .collect();
        for (kind, n) in self.store.kind_counts()? {
            kinds.insert(kind.as_str().to_owned(), n);
        }
        let loops = self.store.loops(true)?;
        let tallies = self.store.event_tallies()?;
        Ok(Counters {
            tasks: self.task_counts()?,
            kinds,
            queue_depth: self
                .store
                .queue_counts()?
                .into_iter()
                .map(|c| (c.queue, c.open))
                .collect(),
            workers,
            last_event_seq: self.store.last_event_seq()?,
            loop_tokens: BTreeMap::from([
                (
                    "input".to_owned(),
                    loops.iter().map(|l| l.input_tokens).sum(),
                ),
                (
                    "output".to_owned(),
                    loops.iter().map(|l| l.output_tokens).sum(),
                ),
            ]),
            // A fold from +0.0: `Sum` for floats starts at -0.0, printed as such.
            loop_cost_usd: loops.iter().fold(0.0, |total, l| total + l.cost_usd),
            claims: tallies.claims,
            retries: tallies.retries,
            exit_detection: self.exit_detection()?,
        })
    }

    /// The exit-detection latency histogram, from the exits in the store.
    pub fn exit_detection(&self) -> Result<Histogram> {
        let timings = self.store.exit_timings()?;
        Ok(Histogram::of(
            &EXIT_DETECTION_BUCKETS,
            timings.iter().map(|t| t.latency()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let ms = Duration::from_millis;
        let h = Histogram::of(&[0.001, 0.01], [ms(0), ms(1), ms(5), ms(50)]);
        let pairs: Vec<(f64, u64)> = h.buckets.iter().map(|b| (b.le, b.count)).collect();
        assert_eq!(pairs, vec![(0.001, 2), (0.01, 3)]);
        assert_eq!(h.count, 4);
        assert!((h.sum_seconds - 0.056).abs() < 1e-9, "{}", h.sum_seconds);
    }
}
