//! System health for dashboards and metrics: this process's memory and CPU
//! time, and the host's load and memory, read from `/proc` (Linux). Fields
//! the platform does not offer are `None`.

use serde::Serialize;

use crate::Service;

/// A health sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Resident memory of this process (the daemon when it serves the web).
    pub process_rss_kb: Option<u64>,
    /// CPU time this process used, user plus system.
    pub process_cpu_seconds: Option<f64>,
    /// 1, 5 and 15 minute load averages.
    pub load: Option<[f64; 3]>,
    pub cpus: usize,
    pub mem_total_kb: Option<u64>,
    pub mem_available_kb: Option<u64>,
}

impl Service {
    /// This process's and the host's resource use now.
    pub fn health(&self) -> Health {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Health {
            process_rss_kb: kb_field(&status, "VmRSS:"),
            process_cpu_seconds: cpu_seconds(&stat),
            load: parse_load(&loadavg),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total_kb: kb_field(&meminfo, "MemTotal:"),
            mem_available_kb: kb_field(&meminfo, "MemAvailable:"),
        }
    }
}

/// `NAME:   1234 kB` lines of `/proc/meminfo` and `/proc/PID/status`.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn parse_load(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// utime + stime (fields 14 and 15 of `/proc/self/stat`, after the
/// parenthesised command name, which may hold spaces).
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        assert_eq!(
            kb_field("MemTotal:  2048 kB\nMemFree: 1 kB\n", "MemTotal:"),
            Some(2048)
        );
        assert_eq!(kb_field("", "MemTotal:"), None);
        assert_eq!(
            parse_load("0.50 1.00 2.25 1/100 42\n"),
            Some([0.5, 1.0, 2.25])
        );
        assert_eq!(parse_load("junk"), None);
        let stat = "42 (a b) S 1 1 1 0 -1 0 0 0 0 0 300 200 0 0 20 0 1 0";
        assert!(cpu_seconds(stat).is_some_and(|s| s > 0.0));
    }

    #[test]
    fn this_process_is_measured_on_linux() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            taskdaemon_store::open(&taskdaemon_store::Location::Sqlite(dir.path().join("s.db")))
                .unwrap();
        let service = Service::from_parts(
            None,
            taskdaemon_workspace::Config::default(),
            taskdaemon_store::Location::Sqlite(dir.path().join("s.db")),
            store,
        );
        let health = service.health();
        assert!(health.process_rss_kb.is_some_and(|kb| kb > 0));
        assert!(health.mem_total_kb.is_some());
        assert!(health.cpus >= 1);
    }
}
