//! A supervised command's output: its stdout and stderr go through pipes
//! that the shim pumps into size-bounded log files (see
//! [`taskdaemon_workspace::logfile`]), so a command that writes without end
//! leaves at most `max_bytes × (backups + 1)` per stream on disk.
//!
//! Why pipes rather than handing the command the files themselves: a file
//! the command holds open cannot be rotated under it (a rename keeps its
//! writes going to the renamed file, and a truncation races with them). The
//! cost is that the command's output now passes through the shim, so a shim
//! killed on purpose takes the command's output with it (its next write
//! gets SIGPIPE); the daemon can still die and restart freely.

use std::io::{self, PipeReader, Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use taskdaemon_workspace::logfile::RotatingFile;
use taskdaemon_workspace::{LogsConfig, Workspace};

/// Bytes a pump moves per read.
const PUMP_CHUNK: usize = 64 * 1024;
/// Pipe capacity asked for, so a fast writer rarely waits for the pump.
const PIPE_CAPACITY: usize = 1024 * 1024;

type SharedLog = Arc<Mutex<RotatingFile>>;

/// The two bounded log files of one task, shared by every attempt's pumps
/// (output of an earlier attempt's leftover children keeps landing in the
/// same files, in order).
pub struct OutputLogs {
    stdout: SharedLog,
    stderr: SharedLog,
}

impl OutputLogs {
    /// Opens (creating) task `id`'s `stdout.log` and `stderr.log`.
    pub fn open(workspace: &Workspace, id: &str, limits: &LogsConfig) -> io::Result<Self> {
        std::fs::create_dir_all(workspace.proc_dir(id))?;
        let open = |path: &Path| -> io::Result<SharedLog> {
            let file = RotatingFile::open(path, limits.max_bytes, limits.backups)?;
            Ok(Arc::new(Mutex::new(file)))
        };
        Ok(Self {
            stdout: open(&workspace.stdout_log(id))?,
            stderr: open(&workspace.stderr_log(id))?,
        })
    }

    /// Points `command`'s stdout and stderr at new pipes and starts a pump
    /// for each. The write ends live in `command` only: drop it after
    /// spawning, or the pumps never see the end of the output.
    pub fn attach(&self, command: &mut Command) -> io::Result<Pumps> {
        let (done_tx, done) = mpsc::channel();
        let mut handles = Vec::with_capacity(2);
        for (log, is_stdout) in [(&self.stdout, true), (&self.stderr, false)] {
            let (reader, writer) = io::pipe()?;
            // Best effort: a smaller pipe only means the writer waits more.
            let _ = rustix::pipe::fcntl_setpipe_size(&writer, PIPE_CAPACITY);
            if is_stdout {
                command.stdout(writer);
            } else {
                command.stderr(writer);
            }
            handles.push(pump(reader, log.clone(), done_tx.clone())?);
        }
        Ok(Pumps {
            done,
            open: handles.len(),
            handles,
        })
    }
}

/// The pumps of one attempt.
pub struct Pumps {
    done: Receiver<()>,
    /// Pumps that have not reached the end of their pipe.
    open: usize,
    handles: Vec<JoinHandle<()>>,
}

impl Pumps {
    /// Waits until every pipe has reached its end (everything the command
    /// wrote is in the logs), or `grace` has passed: a child the command
    /// left behind may hold a pipe open for as long as it runs. Returns
    /// whether all output is in.
    pub fn drain(&mut self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        while self.open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(()) => self.open -= 1,
                Err(_) => return false,
            }
        }
        true
    }

    /// Waits for every pump to end, however long leftover children keep
    /// writing.
    pub fn finish(self) {
        for handle in self.handles {
            let _ = handle.join();
        }
    }
}

/// Copies `reader` into `log` until the pipe's end. A log that cannot be
/// written (disk full) is reported once and the output discarded meanwhile,
/// so the command never blocks on a full pipe.
fn pump(mut reader: PipeReader, log: SharedLog, done: Sender<()>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("output-pump".to_owned())
        .stack_size(64 * 1024)
        .spawn(move || {
            // Allocated when the first output arrives: a command that
            // writes nothing (a sleep, a quiet server) costs its shim no
            // buffer while it runs.
            let mut buf = Vec::new();
            let mut failing = false;
            loop {
                if buf.is_empty() {
                    if wait_readable(&reader).is_err() {
                        break;
                    }
                    buf = vec![0u8; PUMP_CHUNK];
                }
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
                match file.write_all(&buf[..n]) {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        crate::note!("taskdaemon shim: cannot write output log: {e}; discarding output until it can");
                    }
                    Err(_) => {}
                }
            }
            let _ = done.send(());
        })
}

/// Blocks until `reader` has data or has reached its end.
fn wait_readable(reader: &PipeReader) -> io::Result<()> {
    let mut fds = [PollFd::new(reader, PollFlags::IN)];
    loop {
        match poll(&mut fds, None) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskdaemon_workspace::logfile::rotations;

    #[test]
    fn output_is_pumped_into_bounded_logs() {
        let dir = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(dir.path()).unwrap();
        let limits = LogsConfig {
            max_bytes: 4096,
            backups: 2,
            total_max_bytes: 0,
        };
        let logs = OutputLogs::open(&workspace, "T-1", &limits).unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo oops >&2",
        ]);
        let mut pumps = logs.attach(&mut command).unwrap();
        let mut child = command.spawn().unwrap();
        drop(command);
        assert!(child.wait().unwrap().success());
        assert!(pumps.drain(Duration::from_secs(30)));
        pumps.finish();

        let stdout = workspace.stdout_log("T-1");
        let files: Vec<_> = rotations(&stdout)
            .into_iter()
            .chain([stdout.clone()])
            .collect();
        assert_eq!(files.len(), 3, "two backups and the live file");
        for file in &files {
            assert!(std::fs::metadata(file).unwrap().len() <= 4096);
        }
        let text = std::fs::read_to_string(&stdout).unwrap();
        assert!(text.ends_with("line 1999\n"), "{text}");
        // Whole lines: rotation happens between writes, not inside them.
        let newest_copy = std::fs::read_to_string(&files[1]).unwrap();
        assert!(newest_copy.ends_with('\n'));
        assert_eq!(
            std::fs::read_to_string(workspace.stderr_log("T-1")).unwrap(),
            "oops\n"
        );
    }
}
