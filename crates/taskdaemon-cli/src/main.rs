//! The `taskdaemon` binary: parse arguments, run the command, report errors.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = taskdaemon_cli::parse_args();
    let long_lived = matches!(
        cli.command,
        taskdaemon_cli::Command::Shim { .. }
            | taskdaemon_cli::Command::ShimStandby
            | taskdaemon_cli::Command::Daemon(_)
            | taskdaemon_cli::Command::Run(_)
            | taskdaemon_cli::Command::Web(_)
    );
    if long_lived {
        close_inherited_descriptors();
    } else {
        // `ps | head` should end quietly like any Unix tool. The daemon and
        // shims keep Rust's default (ignored SIGPIPE) so a vanished reader
        // never kills them.
        // SAFETY: called before any thread starts; SIG_DFL is always valid.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        taskdaemon_store::leave_reads_to_process_exit();
    }
    taskdaemon_cli::run(cli)
}

/// The daemon and shims keep only stdin, stdout and stderr. A descriptor the
/// caller leaked (a test harness's pipe, an editor's socket) would otherwise
/// pass on to every supervised command and live as long as they do.
fn close_inherited_descriptors() {
    // SAFETY: called before any thread starts or any file is opened, so no
    // descriptor this process relies on is at 3 or above.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if closed != 0 {
        // Kernels before 5.9 lack close_range: close what /proc lists instead.
        let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .filter(|fd| *fd >= 3)
                    .collect()
            })
            .unwrap_or_default();
        for fd in fds {
            // SAFETY: as above; closing the directory's own fd fails harmlessly.
            unsafe {
                libc::close(fd);
            }
        }
    }
}
