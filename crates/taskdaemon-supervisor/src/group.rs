//! Process groups: signalling with escalation, and resource sampling.

use std::io;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use taskdaemon_core::ProcessIdentity;

use crate::pidfd::{PidWatch, wait_all};
use crate::procfs::{self, Liveness, ProcStat};

/// A supervised group: its id, and the identity of its leader (the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub pgid: i32,
    pub leader: ProcessIdentity,
}

/// How a termination went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminated {
    /// The group was already empty.
    AlreadyGone,
    /// Every member exited after the first signal, within the grace period.
    Graceful,
    /// Members outlived the grace period and were killed with SIGKILL.
    Killed,
}

/// The signal could not be delivered safely.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error(
        "refusing to signal pid {pid}: it now belongs to a different process (recycled pid) or another boot"
    )]
    Recycled { pid: i32 },
    #[error("signalling process group {pgid}: {source}")]
    Io {
        pgid: i32,
        #[source]
        source: io::Error,
    },
}

impl Group {
    /// The group's live members.
    ///
    /// Linux never hands out a PID that is still in use as a process group id,
    /// so if the leader's PID now names a different process, this group is
    /// long gone and the call is refused rather than risk signalling strangers.
    /// Members that started before the leader cannot belong to its group.
    pub fn members(&self) -> Result<Vec<ProcStat>, SignalError> {
        if procfs::liveness(&self.leader) == Liveness::Recycled {
            return Err(SignalError::Recycled {
                pid: self.leader.pid,
            });
        }
        Ok(procfs::group_members(self.pgid, self.leader.start_time))
    }

    /// Sends `signal` to the whole group after checking its identity.
    pub fn signal(&self, signal: Signal) -> Result<bool, SignalError> {
        if self.members()?.is_empty() {
            return Ok(false);
        }
        let pgid = Pid::from_raw(self.pgid).ok_or(SignalError::Recycled { pid: self.pgid })?;
        match kill_process_group(pgid, signal) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::SRCH) => Ok(false),
            Err(e) => Err(SignalError::Io {
                pgid: self.pgid,
                source: e.into(),
            }),
        }
    }

    /// Sends `first` to the group, waits up to `grace` for every member to
    /// exit, then SIGKILLs whatever remains, so nothing is orphaned.
    pub fn terminate(&self, first: Signal, grace: Duration) -> Result<Terminated, SignalError> {
        let watches = self.watch_members()?;
        if watches.is_empty() {
            return Ok(Terminated::AlreadyGone);
        }
        self.signal(first)?;
        let io_error = |source| SignalError::Io {
            pgid: self.pgid,
            source,
        };
        if wait_all(&watches, Some(grace)).map_err(io_error)? && self.members()?.is_empty() {
            return Ok(Terminated::Graceful);
        }
        self.signal(Signal::KILL)?;
        // SIGKILL cannot be caught; members vanish as soon as the kernel reaps them.
        let stragglers = self.watch_members()?;
        wait_all(&stragglers, Some(Duration::from_secs(5))).map_err(io_error)?;
        Ok(Terminated::Killed)
    }

    fn watch_members(&self) -> Result<Vec<PidWatch>, SignalError> {
        let boot_id = self.leader.boot_id.clone();
        Ok(self
            .members()?
            .into_iter()
            .filter_map(|member| {
                PidWatch::open(&ProcessIdentity {
                    boot_id: boot_id.clone(),
                    pid: member.pid,
                    start_time: member.start_time,
                })
                .ok()
                .flatten()
            })
            .collect())
    }
}

/// Stops one process that is not the leader of its group (an adopted one
/// whose group belongs to the tool that started it): `first`, then SIGKILL
/// after `grace`. Its group and siblings are left alone.
pub fn terminate_process(
    identity: &ProcessIdentity,
    first: Signal,
    grace: Duration,
) -> Result<Terminated, SignalError> {
    let io_error = |source| SignalError::Io {
        pgid: identity.pid,
        source,
    };
    let Some(watch) = PidWatch::open(identity).map_err(io_error)? else {
        return Ok(Terminated::AlreadyGone);
    };
    let pid = Pid::from_raw(identity.pid).ok_or(SignalError::Recycled { pid: identity.pid })?;
    // The open watch pins the PID: it cannot be recycled under us.
    match rustix::process::kill_process(pid, first) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => return Err(io_error(e.into())),
    }
    if wait_all(std::slice::from_ref(&watch), Some(grace)).map_err(io_error)? {
        return Ok(Terminated::Graceful);
    }
    match rustix::process::kill_process(pid, Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => return Err(io_error(e.into())),
    }
    wait_all(std::slice::from_ref(&watch), Some(Duration::from_secs(5))).map_err(io_error)?;
    Ok(Terminated::Killed)
}

/// Resource use of one group at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupUsage {
    pub cpu_ticks: u64,
    pub rss_kb: u64,
    pub processes: u32,
}

/// Sums CPU time, RSS and process count over a group's members.
pub fn usage(members: &[ProcStat]) -> GroupUsage {
    let page_kb = procfs::page_size() / 1024;
    members
        .iter()
        .fold(GroupUsage::default(), |acc, m| GroupUsage {
            cpu_ticks: acc.cpu_ticks + m.cpu_ticks,
            rss_kb: acc.rss_kb + m.rss_pages * page_kb,
            processes: acc.processes + 1,
        })
}

/// Parses a signal name or number (`TERM`, `SIGINT`, `9`).
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let named = match name {
        "HUP" => Some(Signal::HUP),
        "INT" => Some(Signal::INT),
        "QUIT" => Some(Signal::QUIT),
        "KILL" => Some(Signal::KILL),
        "USR1" => Some(Signal::USR1),
        "USR2" => Some(Signal::USR2),
        "TERM" => Some(Signal::TERM),
        "CONT" => Some(Signal::CONT),
        "STOP" => Some(Signal::STOP),
        "ALRM" => Some(Signal::ALARM),
        "WINCH" => Some(Signal::WINCH),
        _ => name.parse::<i32>().ok().and_then(Signal::from_named_raw),
    };
    named.ok_or_else(|| {
        format!("unknown signal '{text}' (use a name such as TERM, INT, HUP, KILL or a number)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    /// Starts `script` under `sh` as the leader of a new process group.
    fn group_of(script: &str) -> (Child, Group) {
        let child = Command::new("sh")
            .args(["-c", script])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let leader = procfs::identity(pid).unwrap();
        // Let the shell start its background children.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while procfs::group_members(pid, 0).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        (child, Group { pgid: pid, leader })
    }

    #[test]
    fn terminate_ends_every_member_gracefully() {
        let (mut child, group) = group_of("sleep 100 & sleep 100 & wait");
        assert_eq!(group.members().unwrap().len(), 3);
        let outcome = group
            .terminate(Signal::TERM, Duration::from_secs(10))
            .unwrap();
        child.wait().unwrap();
        assert_eq!(outcome, Terminated::Graceful);
        assert!(group.members().unwrap().is_empty());
    }

    #[test]
    fn members_ignoring_the_signal_are_killed_after_the_grace_period() {
        let (mut child, group) = group_of("trap '' TERM; sleep 100 & sleep 100 & wait");
        let outcome = group
            .terminate(Signal::TERM, Duration::from_millis(300))
            .unwrap();
        child.wait().unwrap();
        assert_eq!(outcome, Terminated::Killed);
        assert!(group.members().unwrap().is_empty());
    }

    #[test]
    fn a_recycled_leader_is_refused() {
        let (mut child, mut group) = group_of("sleep 100 & sleep 100 & wait");
        group.leader.start_time += 1;
        assert!(matches!(
            group.signal(Signal::KILL),
            Err(SignalError::Recycled { .. })
        ));
        assert_eq!(
            procfs::group_members(group.pgid, 0).len(),
            3,
            "nothing was signalled"
        );
        group.leader.start_time -= 1;
        group.terminate(Signal::KILL, Duration::ZERO).unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(parse_signal("term").unwrap(), Signal::TERM);
        assert_eq!(parse_signal("SIGINT").unwrap(), Signal::INT);
        assert_eq!(parse_signal("9").unwrap(), Signal::KILL);
        assert!(parse_signal("TERMINATE").unwrap_err().contains("TERMINATE"));
    }
}
