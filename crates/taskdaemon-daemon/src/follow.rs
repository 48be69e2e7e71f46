//! Following supervised processes: one async follower per task watches its
//! shim (or an orphaned command) by pidfd, reconciles the store when it
//! exits, and launches a shim when a restart is due with none to do it.
//! Adoption, the request handlers and the queue workers all start followers.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use taskdaemon_core::{TaskKind, TaskRecord};
use taskdaemon_store::StoreError;
use taskdaemon_supervisor::pidfd::{PidWatch, reap};
use taskdaemon_supervisor::reconcile::{Reconciled, reconcile};
use taskdaemon_supervisor::standby::{HandOverError, Standby};
use taskdaemon_supervisor::{LaunchError, launch_shim};
use tokio::io::unix::AsyncFd;

use crate::blocking::blocking;
use crate::protocol::ErrorKind;
use crate::state::{ACTOR, Daemon, Failure, Shared, TaskEnded, failure};

/// The longest a follower waits before trying a failed store again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// What a follower does next.
enum Step {
    Wait {
        watch: PidWatch,
        orphan: bool,
    },
    Again,
    /// Followed to its end; the task as read then, when it was read ended.
    Done(Option<Box<TaskRecord>>),
}

/// Follows task `id` until it has ended: watches its shim (or orphaned
/// command) by pidfd, reconciles when that exits, and launches a shim when a
/// restart is due with no shim to do it.
pub(crate) fn follow(daemon: &Shared, id: String) {
    follow_from(daemon, id, None);
}

/// [`follow`], starting from `read`, the task as its caller read it since
/// its last launch, when there is one: the first step then reads nothing
/// itself. An outdated `read` is safe: a shim it names that is gone, or is
/// another process now, sends [`reconcile`] back to the store.
pub(crate) fn follow_from(daemon: &Shared, id: String, read: Option<Arc<TaskRecord>>) {
    let is_new = daemon
        .followed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone());
    if !is_new {
        return;
    }
    daemon
        .follows_begun
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    daemon.follow_started.notify_one();
    let daemon = daemon.clone();
    tokio::spawn(async move {
        let mut store_failures = 0u32;
        // Whether the registry projection lists the task (until a read says).
        let mut listed = true;
        // The ended task, as the last step read it.
        let mut last = None;
        let mut read = read;
        loop {
            let (d, task_id, read) = (daemon.clone(), id.clone(), read.take());
            let step = blocking(move || next_step(&d, &task_id, read)).await;
            let step = step.map(|step| {
                step.map(|(step, lists)| {
                    listed = lists;
                    step
                })
            });
            if !matches!(step, Ok(Err(ref e)) if e.is_transient()) {
                store_failures = 0;
            }
            match step {
                Ok(Ok(Step::Wait { watch, orphan })) => {
                    let pid = watch.identity().pid;
                    if let Err(e) = wait_for_exit(watch).await {
                        tracing::warn!(id, error = %e, "cannot watch process");
                        break;
                    }
                    reap(pid);
                    if orphan {
                        let (d, task_id) = (daemon.clone(), id.clone());
                        let _ = blocking(move || {
                            d.store.mark_lost(
                                &task_id,
                                "exited while its shim was gone; exit status unknown",
                                ACTOR,
                            )
                        })
                        .await;
                    }
                    if listed {
                        daemon.registry_changed();
                    }
                }
                Ok(Ok(Step::Again)) => {}
                Ok(Ok(Step::Done(task))) => {
                    last = task;
                    break;
                }
                // A full disk or a lock held elsewhere passes; giving up here
                // would leave the task `running` until the daemon restarts.
                Ok(Err(e)) if e.is_transient() => {
                    store_failures += 1;
                    tracing::warn!(id, error = %e, "cannot follow process yet; retrying");
                    tokio::time::sleep(retry_delay(store_failures)).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(id, error = %e, "cannot follow process");
                    break;
                }
                Err(e) => {
                    tracing::error!(id, error = %e, "follower panicked");
                    break;
                }
            }
        }
        daemon
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        // Nobody listening (no queue task) is fine.
        let _ = daemon.ended.send(TaskEnded {
            id,
            task: last.map(|task| Arc::new(*task)),
        });
        if listed {
            daemon.registry_changed();
        }
    });
}

/// The wait before a follower's retry number `failures` after a store
/// failure: doubling from 250 ms up to [`MAX_RETRY_DELAY`].
fn retry_delay(failures: u32) -> Duration {
    let doubled = Duration::from_millis(250).saturating_mul(1 << failures.min(8));
    doubled.min(MAX_RETRY_DELAY)
}

/// The follower's next step, from the task as `read` already or as read
/// now, and whether the registry projection lists the task: it lists
/// processes only, so a queue task's end (hundreds a second through a busy
/// queue) rewrites nothing.
fn next_step(
    daemon: &Daemon,
    id: &str,
    read: Option<Arc<TaskRecord>>,
) -> Result<(Step, bool), StoreError> {
    let _guard = daemon.launch_lock.lock().unwrap_or_else(|p| p.into_inner());
    let task = match read {
        Some(task) => Arc::unwrap_or_clone(task),
        None => daemon.store.task(id)?,
    };
    let listed = task.kind == TaskKind::Process;
    if task.status.is_terminal() {
        return Ok((Step::Done(Some(Box::new(task))), listed));
    }
    let step = match reconcile(&daemon.workspace, &*daemon.store, &task, ACTOR)? {
        Reconciled::Shim(watch) => Step::Wait {
            watch,
            orphan: false,
        },
        Reconciled::Orphan(watch) => {
            tracing::warn!(
                id,
                "shim is gone but the command runs; exit status will be unknown"
            );
            Step::Wait {
                watch,
                orphan: true,
            }
        }
        Reconciled::NeedsShim(task) => match launch(daemon, &task) {
            Ok(_) => Step::Again,
            Err(e) => {
                tracing::warn!(id, error = %e.message, "restart failed");
                Step::Done(None)
            }
        },
        Reconciled::Settled(task) => {
            tracing::info!(id, status = %task.status, "process ended");
            let ended = task.status.is_terminal().then(|| Box::new(task));
            Step::Done(ended)
        }
    };
    Ok((step, listed))
}

async fn wait_for_exit(watch: PidWatch) -> io::Result<()> {
    // SAFETY: PidWatch owns its pidfd and returns that same descriptor for
    // its whole life; the AsyncFd owns the PidWatch.
    let fd = unsafe { AsyncFd::register_with_interest(watch, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)?;
    let _ready = fd.readable().await?;
    Ok(())
}

/// Launches the shim for a pending task and waits for it to report.
pub(crate) fn launch(daemon: &Daemon, task: &TaskRecord) -> Result<(), Failure> {
    launch_with(daemon, task, &mut None)
}

/// [`launch`] of a task a client asked for (`spawn`, `restart`), through
/// the daemon's request standby (see [`crate::request_standby`]).
pub(crate) fn launch_requested(daemon: &Daemon, task: &TaskRecord) -> Result<(), Failure> {
    let mut standby = daemon.request_standby.take();
    let took_one = standby.is_some();
    let launched = launch_with(daemon, task, &mut standby);
    daemon.request_standby.give_back(daemon, took_one, standby);
    launched
}

/// [`launch`], through `standby` when there is one (a shim starter already
/// running; see [`taskdaemon_supervisor::standby`]), and through a fresh
/// shim when there is none or it was gone. A standby that can take no more
/// tasks afterwards is let go.
pub(crate) fn launch_with(
    daemon: &Daemon,
    task: &TaskRecord,
    standby: &mut Option<Standby>,
) -> Result<(), Failure> {
    let handed = standby
        .as_mut()
        .map(|s| s.hand_over(&daemon.workspace, &task.id));
    if standby.as_ref().is_some_and(|s| !s.usable()) {
        *standby = None;
    }
    let launched = match handed {
        Some(Ok(launched)) => Ok(launched),
        Some(Err(HandOverError::Launch(e))) => Err(e),
        Some(Err(gone @ (HandOverError::Gone { .. } | HandOverError::Declined { .. }))) => {
            tracing::warn!(id = task.id, error = %gone, "starting a fresh shim");
            launch_shim(&daemon.exe, &daemon.workspace, &task.id)
        }
        None => launch_shim(&daemon.exe, &daemon.workspace, &task.id),
    };
    match launched {
        Ok(_) => Ok(()),
        // The shim recorded the failure itself (e.g. no such program).
        Err(LaunchError::Refused(message)) => Err(failure(
            ErrorKind::Invalid,
            format!("{}: {message}", task.id),
        )),
        Err(e) => {
            let message = format!("{}: {e}", task.id);
            let _ = daemon.store.record_start_failure(&task.id, &message, ACTOR);
            Err(failure(ErrorKind::Internal, message))
        }
    }
}
