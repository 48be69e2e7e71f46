//! Log files bounded by size: the one rotation rule, for the daemon's own
//! log and for every supervised process's output.
//!
//! `NAME` grows to `max_bytes`, then becomes `NAME.1`; older copies shift up
//! to `NAME.{keep}` and the oldest is dropped. Readers find the copies with
//! [`rotations`], oldest first, so a log reads the same across a rotation.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A `Write` that appends to a file and rotates it before it would grow
/// past `max_bytes`; no file ever holds more than `max_bytes`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingFile {
    /// Opens `path` for appending (creating it), keeping `keep` old copies.
    /// A `max_bytes` of 0 means no limit.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes: if max_bytes == 0 { u64::MAX } else { max_bytes },
            keep,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = rotated_path(&self.path, n);
                if from.exists() {
                    fs::rename(&from, rotated_path(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, rotated_path(&self.path, 1))?;
            self.file = File::options().create(true).append(true).open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    /// Writes what fits: a chunk that would overflow the file starts a new
    /// one, and a chunk larger than a whole file is cut after its last
    /// newline that fits (a pipe read can hold many lines), so lines stay
    /// whole unless one is longer than the limit.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size.saturating_add(buf.len() as u64) > self.max_bytes {
            self.rotate()?;
        }
        let room = usize::try_from(self.max_bytes - self.size).unwrap_or(usize::MAX);
        let fits = &buf[..buf.len().min(room)];
        let take = match fits.iter().rposition(|&b| b == b'\n') {
            Some(newline) if fits.len() < buf.len() => newline + 1,
            _ => fits.len(),
        };
        let n = self.file.write(&buf[..take])?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `PATH.n`: the `n`th newest rotated copy of `path`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The rotated copies of `path` that exist, oldest first (not `path` itself).
pub fn rotations(path: &Path) -> Vec<PathBuf> {
    let mut copies: Vec<PathBuf> = (1..)
        .map(|n| rotated_path(path, n))
        .take_while(|p| p.symlink_metadata().is_ok())
        .collect();
    copies.reverse();
    copies
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
        let copies = rotations(&path);
        assert_eq!(copies, [rotated_path(&path, 2), rotated_path(&path, 1)]);
        assert_eq!(fs::read_to_string(&copies[0]).unwrap(), "bbbbbbbb\n");
        assert_eq!(fs::read_to_string(&copies[1]).unwrap(), "cccccccc\n");
        assert!(!rotated_path(&path, 3).exists());
    }

    #[test]
    fn no_file_outgrows_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut log = RotatingFile::open(&path, 16, 3).unwrap();
        log.write_all(&[b'x'; 50]).unwrap();
        log.write_all(b"end\n").unwrap();
        let mut total = 0;
        for file in rotations(&path).iter().chain([&path]) {
            let len = fs::metadata(file).unwrap().len();
            assert!(len <= 16, "{} has {len} bytes", file.display());
            total += len;
        }
        // 54 bytes: three full copies and the live file hold all of them.
        assert_eq!(rotations(&path).len(), 3);
        assert_eq!(total, 54);
        assert_eq!(fs::read_to_string(&path).unwrap(), "xxend\n");
        // One more full file drops the oldest copy.
        log.write_all(&[b'y'; 16]).unwrap();
        assert_eq!(rotations(&path).len(), 3);
        assert_eq!(
            fs::read_to_string(rotated_path(&path, 1)).unwrap(),
            "xxend\n"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "y".repeat(16));
    }

    #[test]
    fn a_chunk_of_many_lines_is_cut_between_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut log = RotatingFile::open(&path, 10, 3).unwrap();
        log.write_all(b"aaaa\nbbbb\ncccc\nddddddddddddd\n").unwrap();
        let copies = rotations(&path);
        let texts: Vec<String> = copies
            .iter()
            .chain([&path])
            .map(|file| fs::read_to_string(file).unwrap())
            .collect();
        // The 14-byte line has to be split; every other cut is at a newline.
        assert_eq!(texts, ["aaaa\nbbbb\n", "cccc\n", "dddddddddd", "ddd\n"]);
    }

    #[test]
    fn keep_zero_truncates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut log = RotatingFile::open(&path, 8, 0).unwrap();
        log.write_all(b"1234567\n").unwrap();
        log.write_all(b"abc\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "abc\n");
        assert!(rotations(&path).is_empty());
    }
}
