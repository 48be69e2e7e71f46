//! `Adopt`: starts watching a process another tool started (Claude Code's
//! own background Bash commands, say), so it shows in `ps`, `rehydrate`
//! and the registry like our own, and its end is recorded.
//!
//! The process is identified by PID and start time, so a recycled PID is
//! never mistaken for it, and watched by pidfd. It is not our child: its
//! exit status is recorded when it can still be read after it exits (see
//! [`taskdaemon_supervisor::reconcile`]), and is otherwise unknown.

use taskdaemon_core::process::{RestartMode, RestartPolicy};
use taskdaemon_core::{EventKind, NewEvent, NewProcess, ProcessIdentity, TaskRecord};
use taskdaemon_store::{ProcessFilter, Started};
use taskdaemon_supervisor::procfs;

use crate::blocking::blocking;
use crate::protocol::{AdoptRequest, ErrorKind};
use crate::state::{ACTOR, Daemon, Failure, Shared, failure};

pub(super) async fn handle(daemon: &Shared, request: AdoptRequest) -> Result<TaskRecord, Failure> {
    let d = daemon.clone();
    blocking(move || adopt(&d, request)).await?
}

fn adopt(daemon: &Daemon, request: AdoptRequest) -> Result<TaskRecord, Failure> {
    let pid = request.pid;
    let no_such = || {
        failure(
            ErrorKind::Invalid,
            format!("no process with pid {pid} runs"),
        )
    };
    if pid <= 0 {
        return Err(no_such());
    }
    if pid == std::process::id() as i32 {
        return Err(failure(
            ErrorKind::Invalid,
            "the daemon cannot adopt itself",
        ));
    }
    let identity = procfs::identity(pid).map_err(|_| no_such())?;
    let stat = procfs::stat(pid)
        .filter(|s| s.state != 'Z')
        .ok_or_else(no_such)?;
    if let Some(task) = tracking(daemon, &identity)? {
        return Err(failure(
            ErrorKind::Conflict,
            format!("pid {pid} is already supervised as {}", task.id),
        ));
    }
    let spec = NewProcess {
        tool: request.tool,
        name: request.name,
        session: request.session,
        argv: procfs::cmdline(pid).ok_or_else(no_such)?,
        cwd: procfs::cwd(pid).unwrap_or_else(|| "/".to_owned()),
        env: Vec::new(),
        restart: RestartPolicy {
            mode: RestartMode::Never,
            ..RestartPolicy::default()
        },
        hang_timeout_ms: None,
        limits: Default::default(),
        container: None,
    };
    let task = daemon.store.create_process(&spec, ACTOR)?;
    // The process stands in for its own shim: that is what marks it adopted.
    let started = Started {
        process: identity.clone(),
        pgid: stat.pgrp,
        shim: identity,
    };
    daemon.store.mark_started(&task.id, 0, &started, ACTOR)?;
    daemon.store.append_event(
        Some(&task.id),
        &NewEvent::new(
            EventKind::Adopted,
            ACTOR,
            format!("adopted pid {pid}, started elsewhere; its exit code is recorded only if it can still be read when it exits"),
        ),
    )?;
    Ok(daemon.store.task(&task.id)?)
}

/// The running task that already watches `identity`, if any.
fn tracking(daemon: &Daemon, identity: &ProcessIdentity) -> Result<Option<TaskRecord>, Failure> {
    let running = daemon.store.processes(&ProcessFilter::default())?;
    Ok(running
        .into_iter()
        .find(|t| t.process_identity().as_ref() == Some(identity)))
}
