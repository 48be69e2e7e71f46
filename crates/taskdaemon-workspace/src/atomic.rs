//! Crash-safe file replacement.
//!
//! Two strengths: [`write_atomic`] for files that are the only copy of what
//! they hold (config, exports, unit files, results), and [`write_projection`]
//! for files rebuilt from the store after every change (registry, lock files,
//! exit files beside the store's record). Both replace by rename, so a reader
//! never sees a mix; only the first pays for fsyncs, which on an ordinary
//! disk cost milliseconds each and dominated a queue task's bookkeeping.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `contents` so that a reader sees the old file or the
/// new one, never a mix, even across a crash: write a temporary file in the
/// same directory, fsync it, rename it over `path`, then fsync the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |file| file.write_all(contents))
}

/// Replaces `path` with `contents` by rename, without fsync: a reader sees
/// the old file or the new one, never a mix, but after a power cut the file
/// may be older (or, rarely, empty). Only for projections, whose source of
/// truth is elsewhere and which are rewritten on the next change or start.
pub fn write_projection(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, false, |file| file.write_all(contents))
}

/// [`write_atomic`] for contents too big to hold in memory: `fill` streams
/// them into the temporary file. If it fails, `path` is left as it was.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
) -> io::Result<()> {
    replace(path, true, fill)
}

/// Temporary file, `fill`, (fsync), rename, (fsync the directory).
fn replace(
    path: &Path,
    durable: bool,
    fill: impl FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        let mut writer = io::BufWriter::new(&mut file);
        fill(&mut writer)?;
        writer.flush()?;
        drop(writer);
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("td-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("sub/file.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files left behind: {names:?}");
        write_projection(&path, b"three").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "three");
        let names: Vec<_> = fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files left behind: {names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
