//! The Landlock sandbox the model's `run_command` children run in: which
//! paths they may read and write, whether the kernel can enforce it, and
//! the async-signal-safe step the child takes between fork and exec.
//!
//! The ruleset is built in the parent (opening paths and allocating are not
//! allowed after fork); the child only calls `prctl(PR_SET_NO_NEW_PRIVS)` and
//! `landlock_restrict_self` on the ready file descriptor.
//!
//! Landlock only grants, it cannot carve a hole into a granted tree, so a
//! worktree that holds a taskdaemon store (`.taskdaemon/`) is refused rather
//! than exposed.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, RulesetAttr, RulesetCreatedAttr, Scope,
    path_beneath_rules,
};
use serde::{Deserialize, Serialize};

/// Landlock ABI the sandbox needs: 5 for every filesystem right we handle
/// (truncate, device ioctls), 6 for the signal and abstract-socket scopes
/// that keep a child from signalling the daemon or reaching its peers.
pub const REQUIRED_ABI: i32 = 6;

/// How a loop's `run_command` children are confined (a loop type's `sandbox`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxPolicy {
    /// Landlock: writes to the worktree and a private temp dir, reads to the
    /// worktree and the system toolchain. Refused where it cannot be enforced.
    #[default]
    Landlock,
    /// No confinement: the loop type opted out explicitly.
    None,
}

/// Whether this machine can run the model's commands under Landlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockSupport {
    /// Whether the sandbox can be fully enforced here.
    pub available: bool,
    /// The kernel's Landlock ABI version, when it has Landlock.
    pub abi: Option<i32>,
    /// One line for people: the version, or why it is unavailable.
    pub detail: String,
}

/// Why a sandboxed command cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("refused to run without a sandbox: {0} (a loop type may opt out with `sandbox: none`)")]
    Unavailable(String),
    #[error(
        "refused to run: the worktree {0} holds a taskdaemon store (.taskdaemon/), which the sandbox cannot hide; run the loop in a subdirectory"
    )]
    StoreInWorktree(PathBuf),
    #[error("cannot prepare the sandbox: {0}")]
    Prepare(String),
}

/// Asks the kernel for its Landlock ABI version.
pub fn landlock_support() -> LandlockSupport {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute and size
    // 0 only returns the version (or an error); it creates nothing.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if version < 0 {
        let err = std::io::Error::last_os_error();
        let detail = match err.raw_os_error() {
            Some(libc::ENOSYS) => "Landlock is not built into this kernel".to_string(),
            Some(libc::EOPNOTSUPP) => "Landlock is disabled in this kernel (boot lsm=)".to_string(),
            _ => format!("Landlock is unavailable: {err}"),
        };
        return LandlockSupport {
            available: false,
            abi: None,
            detail,
        };
    }
    let abi = version as i32;
    let available = abi >= REQUIRED_ABI;
    let detail = if available {
        format!("Landlock ABI {abi}")
    } else {
        format!("Landlock ABI {abi} is older than the {REQUIRED_ABI} the sandbox needs")
    };
    LandlockSupport {
        available,
        abi: Some(abi),
        detail,
    }
}

/// A ready ruleset and the private temp dir it grants; the dir is removed
/// when this is dropped (after the command ended).
#[derive(Debug)]
pub struct PreparedSandbox {
    ruleset: OwnedFd,
    tmp: tempfile::TempDir,
    toolchain: Toolchain,
}

impl PreparedSandbox {
    /// Builds the ruleset for a command run in `worktree`.
    pub fn new(worktree: &Path) -> Result<Self, SandboxError> {
        let support = landlock_support();
        if !support.available {
            return Err(SandboxError::Unavailable(support.detail));
        }
        if worktree.join(".taskdaemon").exists() {
            return Err(SandboxError::StoreInWorktree(worktree.to_path_buf()));
        }
        let tmp = tempfile::Builder::new()
            .prefix("taskdaemon-cmd-")
            .tempdir()
            .map_err(|e| SandboxError::Prepare(format!("private temp dir: {e}")))?;
        let toolchain = Toolchain::from_env();
        let ruleset =
            build_ruleset(worktree, tmp.path(), &toolchain).map_err(SandboxError::Prepare)?;
        Ok(PreparedSandbox {
            ruleset,
            tmp,
            toolchain,
        })
    }

    /// The private temp dir (the child's `TMPDIR`).
    pub fn tmp_dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Makes the child restrict itself before it execs.
    pub(crate) fn apply_in_child(&self, command: &mut tokio::process::Command) {
        let fd = self.ruleset.as_raw_fd();
        // `$HOME` is unreadable in the sandbox, and git treats an unreadable
        // `~/.gitconfig` as fatal: the private dir stands in for it, and the
        // toolchain homes that defaulted to `$HOME` are named explicitly.
        command.env("TMPDIR", self.tmp.path());
        command.env("HOME", self.tmp.path());
        for var in [
            "XDG_CONFIG_HOME",
            "XDG_CACHE_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
        ] {
            command.env_remove(var);
        }
        if let Some(dir) = &self.toolchain.cargo_home {
            command.env("CARGO_HOME", dir);
        }
        if let Some(dir) = &self.toolchain.rustup_home {
            command.env("RUSTUP_HOME", dir);
        }
        // SAFETY: the closure runs in the forked child before exec and makes
        // two system calls (async-signal-safe) on a descriptor the parent
        // keeps open until spawn returns; it allocates nothing.
        unsafe {
            command.pre_exec(move || restrict_self(fd));
        }
    }
}

/// `no_new_privs`, then the ruleset: the order Landlock requires for an
/// unprivileged process.
fn restrict_self(ruleset_fd: i32) -> std::io::Result<()> {
    // SAFETY: plain system calls with integer arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset_fd, 0u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Read-only system paths a toolchain needs. `/etc` as a whole is left out
/// (it holds `passwd`, `shadow`, credentials of other services); only the
/// dynamic loader's files, TLS roots, `alternatives` symlinks, time zone
/// and git's system config are in. `/proc` and `/sys` are left out: they
/// expose the daemon's own environment and memory.
pub const SYSTEM_READ_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/localtime",
    "/etc/gitconfig",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
];

/// Device files a child may write to as well as read.
const DEVICE_WRITE_PATHS: &[&str] = &["/dev/null", "/dev/full"];

/// The Rust toolchain's homes when they are set or exist under `$HOME`
/// (rustup installs there): read-only, so `cargo` and `rustc` in PATH run
/// while the rest of `$HOME` stays unreadable.
#[derive(Debug, Default)]
struct Toolchain {
    cargo_home: Option<PathBuf>,
    rustup_home: Option<PathBuf>,
}

impl Toolchain {
    fn from_env() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let pick = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(default)))
                .filter(|p| p.is_dir())
        };
        Toolchain {
            cargo_home: pick("CARGO_HOME", ".cargo"),
            rustup_home: pick("RUSTUP_HOME", ".rustup"),
        }
    }

    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.cargo_home.iter().chain(self.rustup_home.iter())
    }
}

fn build_ruleset(worktree: &Path, tmp: &Path, toolchain: &Toolchain) -> Result<OwnedFd, String> {
    let fd: Option<OwnedFd> = ruleset(worktree, tmp, toolchain)
        .map_err(|e| e.to_string())?
        .into();
    fd.ok_or_else(|| "Landlock created no ruleset".to_string())
}

fn ruleset(
    worktree: &Path,
    tmp: &Path,
    toolchain: &Toolchain,
) -> Result<landlock::RulesetCreated, landlock::RulesetError> {
    let abi = ABI::V6;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    // Connecting to a path-named Unix socket (the daemon's) is only governed
    // from ABI 9 on: handled where the kernel has it, without refusing older
    // kernels (the daemon's socket checks stay the guard there).
    let unix = AccessFs::ResolveUnix;
    landlock::Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)?
        .scope(Scope::from_all(abi))?
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(unix)?
        .create()?
        .set_compatibility(CompatLevel::HardRequirement)
        .add_rules(path_beneath_rules(SYSTEM_READ_PATHS, read))?
        .add_rules(path_beneath_rules(toolchain.paths(), read))?
        .add_rules(path_beneath_rules(DEVICE_WRITE_PATHS, all))?
        .add_rules(path_beneath_rules([worktree, tmp], all))?
        .set_compatibility(CompatLevel::BestEffort)
        .add_rules(path_beneath_rules([worktree, tmp], unix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reads_lowercase_names() {
        let p: SandboxPolicy = serde_json::from_str("\"none\"").unwrap();
        assert_eq!(p, SandboxPolicy::None);
        assert_eq!(SandboxPolicy::default(), SandboxPolicy::Landlock);
        assert!(serde_json::from_str::<SandboxPolicy>("\"off\"").is_err());
    }

    #[test]
    fn a_store_in_the_worktree_is_refused() {
        if !landlock_support().available {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".taskdaemon")).unwrap();
        let err = PreparedSandbox::new(dir.path()).unwrap_err();
        assert!(matches!(err, SandboxError::StoreInWorktree(_)), "{err}");
    }
}
