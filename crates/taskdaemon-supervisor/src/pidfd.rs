//! Event-driven exit detection with Linux pidfds.
//!
//! A pidfd becomes readable when its process exits, whether or not the
//! watcher is the parent, so the daemon watches adopted and new processes the
//! same way, and a blocking caller (`wait`) can sleep on it without polling.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use taskdaemon_core::ProcessIdentity;

use crate::procfs::{Liveness, liveness};

/// A handle that becomes readable when one specific process exits.
#[derive(Debug)]
pub struct PidWatch {
    fd: OwnedFd,
    identity: ProcessIdentity,
}

impl PidWatch {
    /// Watches the process `identity` names. `Ok(None)` when it is gone or its
    /// PID now belongs to another process.
    pub fn open(identity: &ProcessIdentity) -> io::Result<Option<Self>> {
        let Some(pid) = Pid::from_raw(identity.pid) else {
            return Ok(None);
        };
        let fd = match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Checked after opening: the fd pins the PID, so if the start time
        // matches now, the fd refers to the process we mean.
        if liveness(identity) != Liveness::Alive {
            return Ok(None);
        }
        Ok(Some(Self {
            fd,
            identity: identity.clone(),
        }))
    }

    pub fn identity(&self) -> &ProcessIdentity {
        &self.identity
    }

    /// Blocks until the process exits or `timeout` passes; true when it exited.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        wait_all(std::slice::from_ref(self), timeout)
    }

    /// Sends `signal` to this exact process (never to a recycled PID).
    pub fn signal(&self, signal: rustix::process::Signal) -> io::Result<()> {
        rustix::process::pidfd_send_signal(&self.fd, signal).map_err(Into::into)
    }
}

impl AsRawFd for PidWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PidWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Collects the exit status of `pid` if it is our child, so it leaves no
/// zombie; a process that is not our child is left alone.
pub fn reap(pid: i32) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
    }
}

/// Blocks until every watched process has exited or `timeout` passes; true
/// when all exited.
pub fn wait_all(watches: &[PidWatch], timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut remaining: Vec<&PidWatch> = watches.iter().collect();
    while !remaining.is_empty() {
        let mut fds: Vec<PollFd<'_>> = remaining
            .iter()
            .map(|w| PollFd::new(&w.fd, PollFlags::IN))
            .collect();
        let wait = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                Some(Timespec::try_from(left).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                }))
            }
            None => None,
        };
        match poll(&mut fds, wait.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let exited: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        let mut index = 0;
        remaining.retain(|_| {
            let keep = !exited[index];
            index += 1;
            keep
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::identity;
    use std::process::Command;

    #[test]
    fn readable_when_a_non_awaited_child_exits() {
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let id = identity(child.id() as i32).unwrap();
        let watch = PidWatch::open(&id).unwrap().expect("child is alive");
        assert!(!watch.wait(Some(Duration::from_millis(10))).unwrap());
        assert!(watch.wait(Some(Duration::from_secs(10))).unwrap());
        child.wait().unwrap();
    }

    #[test]
    fn a_wrong_start_time_is_not_watched() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let mut id = identity(child.id() as i32).unwrap();
        id.start_time += 1;
        assert!(PidWatch::open(&id).unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
