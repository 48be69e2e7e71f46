//! The daemon's log file, rotated by size.
//!
//! `daemon.log` grows to `log_max_bytes`, then rotates (see
//! [`taskdaemon_workspace::logfile`]), keeping `log_keep` old copies. A
//! daemon run in the foreground (`taskdaemon run`) copies every line to
//! stderr too, where systemd's journal or a container runtime collects it.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use taskdaemon_workspace::logfile::RotatingFile;
use tracing_subscriber::EnvFilter;

/// Whether [`init`] also copies the log to stderr.
static ALSO_STDERR: AtomicBool = AtomicBool::new(false);

/// Makes [`init`] copy every log line to stderr as well (the foreground daemon).
pub fn also_to_stderr() {
    ALSO_STDERR.store(true, Ordering::Relaxed);
}

/// The log file, and stderr when asked.
struct Tee {
    file: RotatingFile,
    stderr: bool,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if self.stderr {
            // The file is the record; a closed or full stderr must not stop the daemon.
            let _ = io::stderr().write_all(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Sends tracing output to the rotating daemon log. `RUST_LOG` (or
/// `TASKDAEMON_LOG`) sets the filter; the default is `info`.
pub fn init(path: &Path, max_bytes: u64, keep: u32) -> io::Result<()> {
    let writer = Tee {
        file: RotatingFile::open(path, max_bytes, keep)?,
        stderr: ALSO_STDERR.load(Ordering::Relaxed),
    };
    let filter = std::env::var("TASKDAEMON_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(writer))
        .try_init()
        .map_err(|e| io::Error::other(e.to_string()))
}
