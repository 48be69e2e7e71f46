//! Enforcing a task's [`ResourceLimits`] under the shim.
//!
//! This machine kind has no delegated cgroup v2 (its `/sys/fs/cgroup` is
//! cgroup v1), so limits are enforced per process with `setrlimit` and
//! `setpriority` in the command before it runs, and memory by the shim:
//!
//! - CPU time: `RLIMIT_CPU` (each process of the task has its own budget);
//!   the kernel sends SIGXCPU when it is used up, and SIGKILL 5 s later.
//! - Open files: `RLIMIT_NOFILE`.
//! - Niceness: `setpriority`.
//! - Memory: the shim samples the resident memory of the command and its
//!   descendants twice a second and kills the group when it goes over (an
//!   address-space limit would break programs that reserve large virtual
//!   ranges, such as JVMs and Go binaries).
//!
//! A task ended by a limit is recorded with the reason as its error.

use std::io;
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustix::process::Signal;
use taskdaemon_core::ResourceLimits;
use taskdaemon_core::process::ExitOutcome;

use crate::group::Group;
use crate::procfs;

/// What enforces limits on this host, for `status`.
pub const ENFORCEMENT: &str =
    "setrlimit (CPU time, open files), setpriority (nice) and a memory watch in the shim";

/// How often the memory watch samples.
const MEMORY_SAMPLE: Duration = Duration::from_millis(500);
/// Seconds between SIGXCPU and SIGKILL for a process that ignores SIGXCPU.
const CPU_HARD_GRACE_SECS: u64 = 5;

/// Applies the per-process limits to the calling process. Meant for the
/// forked child before exec, so it only calls async-signal-safe functions.
pub fn apply_to_self(limits: &ResourceLimits) -> io::Result<()> {
    if let Some(ms) = limits.max_cpu_time_ms {
        let soft = ms.div_ceil(1000);
        set_rlimit(libc::RLIMIT_CPU, soft, soft + CPU_HARD_GRACE_SECS)?;
    }
    if let Some(files) = limits.max_files {
        set_rlimit(libc::RLIMIT_NOFILE, files, files)?;
    }
    if let Some(nice) = limits.nice {
        // SAFETY: setpriority only reads its arguments.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Why a process that ended with `outcome` was ended by its limits, as far
/// as the exit shows it (the kernel's SIGXCPU).
pub fn exit_reason(limits: &ResourceLimits, outcome: ExitOutcome) -> Option<String> {
    (outcome.signal == Some(libc::SIGXCPU))
        .then(|| limits.cpu_time_exceeded())
        .flatten()
}

/// The shim's watch over a group's memory; none without a memory limit.
pub struct MemoryWatch {
    stop: Sender<()>,
    handle: JoinHandle<Option<String>>,
}

impl MemoryWatch {
    /// Starts watching `group` (its leader and that leader's descendants).
    pub fn start(limits: &ResourceLimits, group: Group) -> io::Result<Option<Self>> {
        if limits.max_memory.is_none() {
            return Ok(None);
        }
        let limits = *limits;
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::Builder::new()
            .name("memory-watch".to_owned())
            .stack_size(64 * 1024)
            .spawn(move || {
                let page = procfs::page_size();
                loop {
                    if !matches!(
                        stopped.recv_timeout(MEMORY_SAMPLE),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    ) {
                        return None;
                    }
                    let rss: u64 = procfs::tree(group.leader.pid)
                        .iter()
                        .map(|p| p.rss_pages * page)
                        .sum();
                    if let Some(reason) = limits.memory_exceeded(rss) {
                        let _ = group.signal(Signal::KILL);
                        return Some(reason);
                    }
                }
            })?;
        Ok(Some(Self { stop, handle }))
    }

    /// Stops the watch; returns the reason when it killed the group.
    pub fn finish(self) -> Option<String> {
        let _ = self.stop.send(());
        self.handle.join().ok().flatten()
    }
}
