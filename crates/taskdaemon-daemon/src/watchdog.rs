//! The watchdog: samples CPU, RSS and process count of every running group,
//! and raises an alert when a process hangs (no output and no CPU for the
//! hang timeout). One pass over `/proc` per interval serves every group.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskdaemon_core::duration::format_duration;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{EventKind, NewEvent, Status, TaskRecord};
use taskdaemon_store::{ProcessFilter, Sample, StoreError};
use taskdaemon_supervisor::group::{GroupUsage, usage};
use taskdaemon_supervisor::{memory, procfs};

use crate::blocking::blocking;
use crate::state::Daemon;

/// Who the watchdog says it is in events.
const ACTOR: &str = "watchdog";

/// How long the daemon has followed nothing before it hands memory back.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// How long after that it hands back once more: on a busy machine the
/// tail of start-up (the first seed files write, the queue workers' first
/// look) can run after the first hand-back and bring its code back in,
/// and nothing an idle daemon does afterwards would let it go again.
const IDLE_SETTLE_AGAIN: Duration = Duration::from_secs(20);

/// What the watchdog remembers of one process between samples.
struct Tracked {
    cpu_ticks: u64,
    output_bytes: u64,
    sampled_at: Instant,
    last_activity: Instant,
    alerted: bool,
}

type TrackedMap = HashMap<String, Tracked>;

/// Samples forever at the configured interval.
pub(crate) async fn run(daemon: Arc<Daemon>) {
    let mut interval = tokio::time::interval(daemon.config.daemon.sample_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let tracked: Arc<Mutex<TrackedMap>> = Arc::default();
    loop {
        interval.tick().await;
        if daemon.follows_nothing() {
            // Nothing runs, so nothing to sample: sleep until a follower
            // starts rather than wake every interval to find that out.
            forget_all(&tracked);
            let started = daemon.follow_started.notified();
            tokio::pin!(started);
            tokio::select! {
                _ = &mut started => {}
                _ = tokio::time::sleep(IDLE_SETTLE) => {
                    release_while_idle();
                    tokio::select! {
                        _ = &mut started => {}
                        _ = tokio::time::sleep(IDLE_SETTLE_AGAIN) => {
                            release_while_idle();
                            started.await;
                        }
                    }
                }
            }
            interval.reset();
            continue;
        }
        let (d, t) = (daemon.clone(), tracked.clone());
        let result = blocking(move || {
            let mut tracked = t.lock().unwrap_or_else(|p| p.into_inner());
            sample_once(&d, &mut tracked)
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "watchdog sample failed"),
            Err(e) => tracing::error!(error = %e, "watchdog panicked"),
        }
    }
}

/// Idle (start-up over, or the last process ended): what the busy time
/// allocated, the code only it ran and the stack its deep calls used need
/// not stay resident while the daemon waits. Runs on the runtime's own
/// thread, which is the main thread (the daemon's runtime is
/// single-threaded), so the main stack can be trimmed below this frame, and
/// no blocking-pool thread is started (and kept alive) for it: the daemon
/// is idle, so the few milliseconds it takes delay nobody.
fn release_while_idle() {
    memory::release_free_memory();
    memory::release_code_pages();
    memory::release_unused_stack();
}

/// Drops what was remembered of every process (none runs any more).
fn forget_all(tracked: &Mutex<TrackedMap>) {
    tracked.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn sample_once(daemon: &Daemon, tracked: &mut TrackedMap) -> Result<(), StoreError> {
    let running: Vec<TaskRecord> = daemon
        .store
        .processes(&ProcessFilter::default())?
        .into_iter()
        .filter(|t| t.status == Status::Running)
        .collect();
    let groups = procfs::processes_by_group();
    let now = Instant::now();
    let mut samples = Vec::with_capacity(running.len());
    for task in &running {
        let (Some(pgid), Some(leader_start)) = (task.pgid, task.start_time) else {
            continue;
        };
        let members: Vec<_> = groups
            .get(&pgid)
            .map(|m| {
                m.iter()
                    .filter(|p| p.start_time >= leader_start)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let group = usage(&members);
        let output = output_bytes(daemon, &task.id);
        let hang_timeout = task
            .hang_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(daemon.config.daemon.hang_timeout);
        let entry = tracked.entry(task.id.clone()).or_insert(Tracked {
            cpu_ticks: group.cpu_ticks,
            output_bytes: output,
            sampled_at: now,
            last_activity: now,
            alerted: false,
        });
        let cpu_percent = cpu_percent(entry, &group, now);
        observe(daemon, task, entry, &group, output, now, hang_timeout)?;
        samples.push(Sample {
            task_id: task.id.clone(),
            at: now_millis(),
            cpu_percent,
            rss_kb: group.rss_kb,
            processes: group.processes,
        });
    }
    let live: HashSet<&str> = running.iter().map(|t| t.id.as_str()).collect();
    tracked.retain(|id, _| live.contains(id.as_str()));
    daemon.store.record_samples(&samples)
}

fn cpu_percent(entry: &Tracked, group: &GroupUsage, now: Instant) -> f64 {
    let elapsed = now.duration_since(entry.sampled_at).as_secs_f64();
    if elapsed <= 0.0 {
        return 0.0;
    }
    let ticks = group.cpu_ticks.saturating_sub(entry.cpu_ticks) as f64;
    100.0 * ticks / procfs::ticks_per_second() as f64 / elapsed
}

/// Updates activity and raises or clears the hang alert.
fn observe(
    daemon: &Daemon,
    task: &TaskRecord,
    entry: &mut Tracked,
    group: &GroupUsage,
    output: u64,
    now: Instant,
    hang_timeout: Duration,
) -> Result<(), StoreError> {
    let active = group.cpu_ticks > entry.cpu_ticks || output != entry.output_bytes;
    entry.cpu_ticks = group.cpu_ticks;
    entry.output_bytes = output;
    entry.sampled_at = now;
    if active {
        entry.last_activity = now;
        if entry.alerted {
            entry.alerted = false;
            let event = NewEvent::new(EventKind::AlertCleared, ACTOR, "activity resumed");
            daemon.store.append_event(Some(&task.id), &event)?;
        }
        return Ok(());
    }
    let idle = now.duration_since(entry.last_activity);
    if !entry.alerted && idle >= hang_timeout {
        entry.alerted = true;
        let message = format!(
            "possible hang: no output and no CPU for {}",
            format_duration(Duration::from_secs(idle.as_secs().max(1)))
        );
        tracing::warn!(id = task.id, "{message}");
        daemon.store.append_event(
            Some(&task.id),
            &NewEvent::new(EventKind::Alert, ACTOR, message),
        )?;
    }
    Ok(())
}

fn output_bytes(daemon: &Daemon, id: &str) -> u64 {
    let size = |path| fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    size(daemon.workspace.stdout_log(id)) + size(daemon.workspace.stderr_log(id))
}
