//! Confining tool paths to a loop's workdir.
//!
//! A path is joined to the workdir, then the longest prefix that exists is
//! canonicalized (resolving every symlink in it) and the rest, which does not
//! exist yet, is appended. The result must still be inside the canonical
//! workdir. `..` is only allowed where it can be resolved against existing
//! directories, and a dangling symlink is refused because writing through it
//! would create a file wherever it points.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The directory tools may touch.
#[derive(Debug, Clone)]
pub struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    /// A sandbox rooted at `workdir`, which must exist.
    pub fn new(workdir: &Path) -> io::Result<Self> {
        let root = fs::canonicalize(workdir)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("workdir is not a directory: {}", workdir.display()),
            ));
        }
        Ok(Sandbox { root })
    }

    /// The canonical workdir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `path` (relative to the workdir, or absolute inside it) to an
    /// absolute path inside the workdir, or explains why it is refused.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        if path.is_empty() {
            return Err("path is empty".into());
        }
        if path.contains('\0') {
            return Err("path contains a NUL byte".into());
        }
        let joined = self.root.join(path);
        let components: Vec<Component<'_>> = joined.components().collect();
        // Find the longest existing prefix (a dangling symlink "exists" for lstat).
        let mut split = components.len();
        let mut prefix: PathBuf;
        loop {
            prefix = components[..split].iter().collect();
            if fs::symlink_metadata(&prefix).is_ok() || split == 0 {
                break;
            }
            split -= 1;
        }
        let canonical = fs::canonicalize(&prefix).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                format!("refused: {path} goes through a dangling symlink")
            } else {
                format!("cannot resolve {path}: {e}")
            }
        })?;
        let mut resolved = canonical;
        for component in &components[split..] {
            match component {
                Component::Normal(name) => resolved.push(name),
                Component::CurDir => {}
                _ => {
                    return Err(format!(
                        "refused: {path} uses '..' through a directory that does not exist"
                    ));
                }
            }
        }
        if resolved.starts_with(&self.root) {
            Ok(resolved)
        } else {
            Err(format!(
                "refused: {path} is outside the workdir (only paths inside it are allowed)"
            ))
        }
    }

    /// Opens `resolved` (from [`Sandbox::resolve`]) so that the kernel
    /// resolves it beneath the workdir again (`openat2` with
    /// `RESOLVE_BENEATH`): a symlink swapped in between the check and this
    /// open cannot lead outside, and `/proc` magic links are refused.
    pub fn open_beneath(&self, resolved: &Path, write: bool) -> io::Result<fs::File> {
        use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
        let relative = resolved
            .strip_prefix(&self.root)
            .map_err(|_| io::Error::new(io::ErrorKind::PermissionDenied, "outside the workdir"))?;
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        let root = rustix::fs::open(
            &self.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // openat2 refuses a mode without O_CREAT.
        let (flags, mode) = if write {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
            (flags, Mode::from_raw_mode(0o644))
        } else {
            (OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        };
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let fd = openat2(&root, relative, flags, mode, resolve).map_err(|e| match e {
            rustix::io::Errno::XDEV => io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refused: it led outside the workdir when opened (a symlink changed)",
            ),
            e => io::Error::from(e),
        })?;
        Ok(fs::File::from(fd))
    }

    /// `abs` relative to the workdir, for messages to the model.
    pub fn display(&self, abs: &Path) -> String {
        match abs.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => abs.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_swapped_after_the_check_cannot_lead_outside() {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        let inside = work.join("dir");
        let outside = root.path().join("outside");
        fs::create_dir_all(&inside).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(inside.join("f"), "inside").unwrap();
        fs::write(outside.join("f"), "TOP-SECRET").unwrap();
        std::os::unix::fs::symlink(&inside, work.join("link")).unwrap();
        let sandbox = Sandbox::new(&work).unwrap();
        let checked = sandbox.resolve("link/f").unwrap();
        // The check resolved the symlink; now make the path itself go through
        // a swapped one, as a racing process would.
        let racy = sandbox.root().join("link").join("f");
        assert!(checked.starts_with(sandbox.root()));
        fs::remove_file(work.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, work.join("link")).unwrap();
        let err = sandbox.open_beneath(&racy, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let err = sandbox.open_beneath(&racy, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert_eq!(fs::read_to_string(outside.join("f")).unwrap(), "TOP-SECRET");
        let via_proc = sandbox.root().join("proc-root");
        std::os::unix::fs::symlink("/proc/self/root/etc/hostname", &via_proc).unwrap();
        assert!(sandbox.open_beneath(&via_proc, false).is_err());
    }

    #[test]
    fn confines_paths() {
        let outer = tempfile::tempdir().unwrap();
        let work = outer.path().join("work");
        fs::create_dir_all(work.join("src")).unwrap();
        fs::write(outer.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outer.path(), work.join("escape")).unwrap();
        std::os::unix::fs::symlink(outer.path().join("nothing-here"), work.join("dangling"))
            .unwrap();
        let sb = Sandbox::new(&work).unwrap();
        let root = sb.root().to_path_buf();

        assert_eq!(sb.resolve("src/a.rs").unwrap(), root.join("src/a.rs"));
        assert_eq!(sb.resolve("new/dir/f").unwrap(), root.join("new/dir/f"));
        assert_eq!(sb.resolve("src/../b").unwrap(), root.join("b"));
        assert_eq!(
            sb.resolve(root.join("src").to_str().unwrap()).unwrap(),
            root.join("src")
        );
        for bad in [
            "../secret",
            "/etc/passwd",
            "escape/secret",
            "escape/newfile",
            "dangling",
            "dangling/x",
            "nope/../../secret",
            "",
        ] {
            assert!(sb.resolve(bad).is_err(), "{bad} was allowed");
        }
    }
}
