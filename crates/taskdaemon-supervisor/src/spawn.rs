//! Starting a helper process in a new session with `posix_spawn`.
//!
//! The daemon is a large multi-threaded process: `fork` copies its page
//! tables for every shim it starts, only for the copy to `exec` at once.
//! glibc's `posix_spawn` uses `clone(CLONE_VM | CLONE_VFORK)` instead, so a
//! start costs the same however big the daemon has grown, and
//! `POSIX_SPAWN_SETSID` puts the child in its own session atomically (no
//! `pre_exec` hook, which would force std's `Command` back onto `fork`).
//!
//! It also holds the one rule for finding a program on a `PATH` the way
//! `execvp` does ([`find_on_path`]).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;

/// What a detached helper starts with: stdin is `/dev/null`; stdout and
/// stderr are the given descriptors (the parent's copies stay its own).
pub struct Stdio<'a> {
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
}

/// Starts `program` with `args` (argv[0] is `program`) and the caller's
/// environment, in a new session, with an empty signal mask and SIGPIPE at
/// its default (as std's `Command` does; other ignored signals stay
/// ignored, as across any exec). Returns its pid; the caller reaps it.
pub fn spawn_session_leader(program: &Path, args: &[&OsStr], stdio: &Stdio) -> io::Result<i32> {
    let program_c = cstring(program.as_os_str())?;
    let mut argv_c = Vec::with_capacity(args.len() + 1);
    argv_c.push(program_c.clone());
    for arg in args {
        argv_c.push(cstring(arg)?);
    }
    let envp_c = std::env::vars_os()
        .map(|(k, v)| {
            let mut pair = k.into_encoded_bytes();
            pair.push(b'=');
            pair.extend_from_slice(v.as_bytes());
            CString::new(pair).map_err(|_| nul_error())
        })
        .collect::<io::Result<Vec<_>>>()?;
    let argv = pointers(&argv_c);
    let envp = pointers(&envp_c);
    let actions = FileActions::new(stdio)?;
    let attr = Attributes::new()?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the strings and arrays
    // live until it returns, and both arrays end with a null pointer.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            program_c.as_ptr(),
            &actions.0,
            &attr.0,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(pid)
}

/// Where `execvp` would find `program` on `path` (a `PATH` value): in the
/// first directory of `path` that holds an executable regular file of
/// that name. None when `program` names a path (a `/` in it: no lookup),
/// when no directory has it, or when a relative directory (an empty entry
/// is the current one) comes first: that lookup depends on the working
/// directory the program starts in.
pub fn find_on_path(program: &str, path: &OsStr) -> Option<PathBuf> {
    if program.is_empty() || program.contains('/') {
        return None;
    }
    for dir in std::env::split_paths(path) {
        if !dir.is_absolute() {
            return None;
        }
        let file = dir.join(program);
        if is_executable_file(&file) {
            return Some(file);
        }
    }
    None
}

/// Whether `file` is a regular file this process may execute (what
/// `execve` checks before it reads the file; `execvp` tries the next
/// directory when it may not).
pub fn is_executable_file(file: &Path) -> bool {
    file.metadata().is_ok_and(|m| m.is_file())
        && rustix::fs::access(file, rustix::fs::Access::EXEC_OK).is_ok()
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| nul_error())
}

fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "an argument or environment variable contains a NUL byte",
    )
}

fn pointers(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(ptr::null_mut()))
        .collect()
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// The child's descriptors 0, 1 and 2 (`dup2` clears close-on-exec on
/// the copies; everything else the daemon holds is close-on-exec).
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new(stdio: &Stdio) -> io::Result<Self> {
        // SAFETY: an all-zero value is a valid argument to _init, which
        // overwrites it.
        let mut actions = FileActions(unsafe { std::mem::zeroed() });
        // SAFETY: `actions.0` is ours; Drop destroys it only once it was
        // initialised (init failing leaves it zeroed, and destroy of that is
        // a no-op in glibc, but we return before building the wrapper's use).
        check(unsafe { libc::posix_spawn_file_actions_init(&mut actions.0) })?;
        for (fd, target) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
            // SAFETY: as above; the descriptors outlive the spawn.
            check(unsafe {
                libc::posix_spawn_file_actions_adddup2(&mut actions.0, fd.as_raw_fd(), target)
            })?;
        }
        Ok(actions)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// New session, empty signal mask, SIGPIPE at its default (Rust ignores it
/// in the starter; a helper that wants it ignored says so itself).
struct Attributes(libc::posix_spawnattr_t);

impl Attributes {
    fn new() -> io::Result<Self> {
        // SAFETY: as for the file actions.
        let mut attr = Attributes(unsafe { std::mem::zeroed() });
        check(unsafe { libc::posix_spawnattr_init(&mut attr.0) })?;
        // SAFETY: sigset_t is plain data; the sig* calls fill it.
        let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut pipe: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::sigemptyset(&mut empty);
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
        }
        // libc declares these with different integer types; all are small.
        let flags = i32::from(libc::POSIX_SPAWN_SETSID)
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        // SAFETY: `attr.0` was initialised above.
        unsafe {
            check(libc::posix_spawnattr_setsigmask(&mut attr.0, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut attr.0, &pipe))?;
            check(libc::posix_spawnattr_setflags(
                &mut attr.0,
                flags as libc::c_short,
            ))?;
        }
        Ok(attr)
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Read;

    /// The child leads a new session and process group, gets the given
    /// stdout, and sees the argv it was given.
    #[test]
    fn the_child_leads_its_own_session() {
        let (mut reader, writer) = io::pipe().unwrap();
        let null = File::open("/dev/null").unwrap();
        let stdio = Stdio {
            stdin: std::os::fd::AsFd::as_fd(&null),
            stdout: std::os::fd::AsFd::as_fd(&writer),
            stderr: std::os::fd::AsFd::as_fd(&null),
        };
        let script = OsStr::new("echo \"$$ $(ps -o sid= -p $$) $(ps -o pgid= -p $$) $1\"");
        let pid = spawn_session_leader(
            Path::new("/bin/sh"),
            &[
                OsStr::new("-c"),
                script,
                OsStr::new("sh"),
                OsStr::new("a b"),
            ],
            &stdio,
        )
        .unwrap();
        drop(writer);
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words.len(), 5, "{out}");
        assert_eq!(words[0], pid.to_string(), "{out}");
        assert_eq!(words[1], pid.to_string(), "session id: {out}");
        assert_eq!(words[2], pid.to_string(), "process group: {out}");
        assert_eq!(&words[3..], ["a", "b"], "{out}");
        // SAFETY: getsid of our own process.
        assert_ne!(unsafe { libc::getsid(0) }, pid);
    }

    /// The test harness ignores SIGPIPE (Rust does); the helper gets the default.
    #[test]
    fn sigpipe_is_back_at_its_default() {
        let (mut reader, writer) = io::pipe().unwrap();
        let null = File::open("/dev/null").unwrap();
        let stdio = Stdio {
            stdin: std::os::fd::AsFd::as_fd(&null),
            stdout: std::os::fd::AsFd::as_fd(&writer),
            stderr: std::os::fd::AsFd::as_fd(&null),
        };
        let pid = spawn_session_leader(
            Path::new("/bin/grep"),
            &[OsStr::new("^SigIgn:"), OsStr::new("/proc/self/status")],
            &stdio,
        )
        .unwrap();
        drop(writer);
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let mask = out.trim().trim_start_matches("SigIgn:").trim();
        let mask = u64::from_str_radix(mask, 16).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let null = File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&null);
        let stdio = Stdio {
            stdin: fd,
            stdout: fd,
            stderr: fd,
        };
        let err =
            spawn_session_leader(Path::new("/nonexistent/taskdaemon"), &[], &stdio).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn a_program_is_found_where_execvp_would_run_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let make = |sub: &str, mode: u32| {
            let folder = dir.path().join(sub);
            std::fs::create_dir_all(&folder).unwrap();
            let file = folder.join("tool");
            std::fs::write(&file, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            folder
        };
        let unreadable = make("a", 0o644);
        let runnable = make("b", 0o755);
        let later = make("c", 0o755);
        // A directory of that name is no program either.
        let shadow = dir.path().join("d");
        std::fs::create_dir_all(shadow.join("tool")).unwrap();
        let path = std::env::join_paths([&shadow, &unreadable, &runnable, &later]).unwrap();
        assert_eq!(find_on_path("tool", &path), Some(runnable.join("tool")));
        assert_eq!(find_on_path("missing", &path), None);
        assert_eq!(
            find_on_path("b/tool", &path),
            None,
            "a path is not looked up"
        );
        assert_eq!(find_on_path("", &path), None);
        // Relative entries: which file they name depends on the start directory.
        let relative_first = std::env::join_paths([Path::new("rel"), &runnable]).unwrap();
        assert_eq!(find_on_path("tool", &relative_first), None);
        let empty_first = OsStr::new(":/usr/bin");
        assert_eq!(find_on_path("tool", empty_first), None);
        let relative_after = std::env::join_paths([&runnable, Path::new("rel")]).unwrap();
        assert_eq!(
            find_on_path("tool", &relative_after),
            Some(runnable.join("tool"))
        );
    }
}
