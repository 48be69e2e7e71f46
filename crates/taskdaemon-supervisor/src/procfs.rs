//! Reading process facts from `/proc`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::sync::OnceLock;

use taskdaemon_core::ProcessIdentity;
use taskdaemon_core::process::ExitOutcome;

/// The fields of `/proc/PID/stat` that supervision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// Single-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Field `n` (numbered from 1, as in proc(5); 3 or later) of the text of
/// `/proc/PID/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn stat_field(text: &str, n: usize) -> Option<&str> {
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(n.checked_sub(3)?)
}

/// Parses the text of `/proc/PID/stat` (see [`stat_field`]).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let pid = text[..open].trim().parse().ok()?;
    let field = |n: usize| stat_field(text, n);
    let number = |n: usize| field(n)?.parse::<u64>().ok();
    Some(ProcStat {
        pid,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        cpu_ticks: number(14)? + number(15)?,
        start_time: number(22)?,
        rss_pages: number(24)?,
    })
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// This boot's id; it changes when the machine restarts.
pub fn boot_id() -> io::Result<String> {
    static BOOT_ID: OnceLock<String> = OnceLock::new();
    if let Some(id) = BOOT_ID.get() {
        return Ok(id.clone());
    }
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned();
    Ok(BOOT_ID.get_or_init(|| id).clone())
}

/// The identity of a running process, read now.
pub fn identity(pid: i32) -> io::Result<ProcessIdentity> {
    let stat = stat(pid).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("process {pid} not found"))
    })?;
    Ok(ProcessIdentity {
        boot_id: boot_id()?,
        pid,
        start_time: stat.start_time,
    })
}

/// Whether the process an identity names still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The same process runs (zombies count as gone: they have exited).
    Alive,
    /// No process has that PID, or it has exited.
    Gone,
    /// A different process now holds that PID, or the machine rebooted: never signal it.
    Recycled,
}

/// Checks an identity against `/proc`.
pub fn liveness(identity: &ProcessIdentity) -> Liveness {
    match boot_id() {
        Ok(boot) if boot == identity.boot_id => {}
        _ => return Liveness::Recycled,
    }
    match stat(identity.pid) {
        None => Liveness::Gone,
        Some(stat) if stat.start_time != identity.start_time => Liveness::Recycled,
        Some(stat) if stat.state == 'Z' || stat.state == 'X' => Liveness::Gone,
        Some(_) => Liveness::Alive,
    }
}

/// Every live process, grouped by process group. One pass over `/proc`
/// serves all the groups a caller is interested in.
pub fn processes_by_group() -> HashMap<i32, Vec<ProcStat>> {
    let mut groups: HashMap<i32, Vec<ProcStat>> = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(stat) = stat(pid).filter(|s| s.state != 'Z' && s.state != 'X') {
            groups.entry(stat.pgrp).or_default().push(stat);
        }
    }
    groups
}

/// The live members of one process group that started no earlier than
/// `not_before` (start ticks): later processes cannot be an older group's.
pub fn group_members(pgid: i32, not_before: u64) -> Vec<ProcStat> {
    processes_by_group()
        .remove(&pgid)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.start_time >= not_before)
        .collect()
}

/// `pid` and its live descendants, found through
/// `/proc/PID/task/TID/children` (no pass over all of `/proc`).
pub fn tree(pid: i32) -> Vec<ProcStat> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(next) = queue.pop() {
        let Some(stat) = stat(next).filter(|s| s.state != 'Z' && s.state != 'X') else {
            continue;
        };
        found.push(stat);
        let Ok(threads) = fs::read_dir(format!("/proc/{next}/task")) else {
            continue;
        };
        for thread in threads.flatten() {
            let Ok(children) = fs::read_to_string(thread.path().join("children")) else {
                continue;
            };
            queue.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
    }
    found
}

/// The command line of `pid` (its name in brackets for a kernel thread or a
/// process that cleared it).
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if !args.is_empty() {
        return Some(args);
    }
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(vec![format!("[{}]", comm.trim())])
}

/// The working directory of `pid`, when it can be read.
pub fn cwd(pid: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/cwd"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// How a process that has exited ended, read while it is still a zombie
/// (its parent has not collected it yet): field 52 of `/proc/PID/stat`, the
/// wait status. None once it is gone, or when `identity` is not that process.
pub fn zombie_exit(identity: &ProcessIdentity) -> Option<ExitOutcome> {
    let text = fs::read_to_string(format!("/proc/{}/stat", identity.pid)).ok()?;
    let stat = parse_stat(&text)?;
    if stat.state != 'Z' || stat.start_time != identity.start_time {
        return None;
    }
    let status: i32 = stat_field(&text, 52)?.parse().ok()?;
    if libc::WIFEXITED(status) {
        Some(ExitOutcome::exited(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitOutcome::signalled(libc::WTERMSIG(status)))
    } else {
        None
    }
}

/// Clock ticks per second, for turning tick counts into time.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// Bytes in a page, for turning RSS pages into bytes.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 123456 1000000 250 18446744073709551615";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 4242);
        assert_eq!(stat.cpu_ticks, 10);
        assert_eq!(stat.start_time, 123456);
        assert_eq!(stat.rss_pages, 250);
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_recycled() {
        let me = identity(std::process::id() as i32).unwrap();
        assert_eq!(liveness(&me), Liveness::Alive);
        let impostor = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert_eq!(liveness(&impostor), Liveness::Recycled);
        let other_boot = ProcessIdentity {
            boot_id: "not-this-boot".to_owned(),
            ..me
        };
        assert_eq!(liveness(&other_boot), Liveness::Recycled);
    }
}
