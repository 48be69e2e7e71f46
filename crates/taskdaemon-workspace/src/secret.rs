//! Random secrets kept in owner-only files under `.taskdaemon/`: the web
//! login token and the daemon socket's token.
//!
//! Both guard the same thing (driving the daemon), and both rely on the
//! same fact: a file under `.taskdaemon/` with mode 0600 is readable by the
//! owner's ordinary processes and by nothing else, neither another user nor
//! a model's command confined to its worktree by the Landlock sandbox.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A new secret: 32 bytes from the kernel's random source, as 64 hex digits.
pub fn random_secret() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Replaces `path` with `secret`, mode 0600 from the moment the file exists
/// (a temporary file renamed over it, so a reader never sees half a secret).
pub fn write_secret(path: &Path, secret: &str) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp.{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(secret.as_bytes()))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// The secret in `path`, or `None` when the file is missing or blank.
pub fn read_secret(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_written_secret_is_the_owners_only_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let secret = random_secret().unwrap();
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        write_secret(&path, &secret).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            read_secret(&path).unwrap().as_deref(),
            Some(secret.as_str())
        );
        assert_ne!(random_secret().unwrap(), secret, "two secrets differ");
    }

    #[test]
    fn missing_or_blank_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        assert_eq!(read_secret(&path).unwrap(), None);
        fs::write(&path, "  \n").unwrap();
        assert_eq!(read_secret(&path).unwrap(), None);
    }
}
