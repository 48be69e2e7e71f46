//! The daemon's log file, rotated by size.
//!
//! `daemon.log` grows to `log_max_bytes`, then becomes `daemon.log.1` (older
//! copies shift up to `daemon.log.{keep}` and the oldest is dropped). A
//! daemon run in the foreground (`taskdaemon run`) copies every line to
//! stderr too, where systemd's journal or a container runtime collects it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

/// A `Write` that appends to a file and rotates it when it grows too large.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes,
            keep,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            fs::rename(&self.path, self.rotated(1))?;
        }
        self.file = File::options().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_the_newest_copies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        let mut log = RotatingFile::open(&path, 10, 2).unwrap();
        for line in ["aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"] {
            log.write_all(line.as_bytes()).unwrap();
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "dddddddd\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("daemon.log.1")).unwrap(),
            "cccccccc\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("daemon.log.2")).unwrap(),
            "bbbbbbbb\n"
        );
        assert!(!dir.path().join("daemon.log.3").exists());
    }
}
