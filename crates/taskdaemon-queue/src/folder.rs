//! A queue's folder: its subfolders, which files in `pending/` are task
//! documents ready to run, and where a finished document goes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use taskdaemon_workspace::QUEUE_SUBDIRS;

/// One queue folder on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFolder {
    pub id: String,
    pub root: PathBuf,
}

/// What one read of `pending/` found (see [`QueueFolder::list_pending`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingListing {
    /// Names of the entries that match the document patterns, sorted.
    pub documents: Vec<String>,
    /// Paths of the lock files, sorted.
    pub locks: Vec<PathBuf>,
}

/// Where a finished document is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
}

impl QueueFolder {
    pub fn new(id: &str, root: &Path) -> Self {
        Self {
            id: id.to_owned(),
            root: root.to_owned(),
        }
    }

    /// Creates every subfolder; harmless when they exist.
    pub fn create(&self) -> io::Result<()> {
        for sub in QUEUE_SUBDIRS {
            fs::create_dir_all(self.root.join(sub))?;
        }
        Ok(())
    }

    pub fn pending(&self) -> PathBuf {
        self.root.join("pending")
    }

    pub fn completed(&self) -> PathBuf {
        self.root.join("completed")
    }

    pub fn failed(&self) -> PathBuf {
        self.root.join("failed")
    }

    pub fn result_path(&self, task_id: &str) -> PathBuf {
        self.root.join("results").join(format!("{task_id}.json"))
    }

    pub fn report_path(&self, task_id: &str) -> PathBuf {
        self.root.join("reports").join(format!("{task_id}.md"))
    }

    /// `pending/.task-{id}.lock`
    pub fn lock_path(&self, task_id: &str) -> PathBuf {
        self.pending().join(format!(".task-{task_id}.lock"))
    }

    /// The documents in `pending/` that match `patterns` and the lock files
    /// there, each sorted, from one directory read and without looking at
    /// each file, so a worker with a long backlog does not stat every
    /// document for every task it runs.
    pub fn list_pending(&self, patterns: &[String]) -> io::Result<PendingListing> {
        let mut listing = PendingListing::default();
        for entry in fs::read_dir(self.pending())?.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if is_lock_name(&name) {
                listing.locks.push(entry.path());
            } else if is_document_name(&name, patterns) {
                listing.documents.push(name);
            }
        }
        listing.documents.sort();
        listing.locks.sort();
        Ok(listing)
    }

    /// Reads document `name` from `pending/` as an untrusted entry: it is
    /// looked at without following a link, opened so that a link swapped in
    /// meanwhile is refused and a FIFO cannot block, and read only when it
    /// is a regular file of at most `max_bytes` that has not changed for
    /// `settle` and does not change while it is read.
    pub fn read_document(
        &self,
        name: &str,
        settle: Duration,
        max_bytes: u64,
    ) -> io::Result<DocumentRead> {
        let path = self.pending().join(name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DocumentRead::Gone),
            Err(e) => return Err(e),
        };
        if let Some(refusal) = Refusal::of_kind(&meta) {
            return Ok(DocumentRead::Refused(refusal));
        }
        if meta.len() > max_bytes {
            return Ok(DocumentRead::Refused(Refusal::too_large(
                meta.len(),
                max_bytes,
            )));
        }
        let age = age(&meta, SystemTime::now());
        if age < settle {
            return Ok(DocumentRead::Settling(settle - age));
        }
        let mut file = match open_untrusted(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DocumentRead::Gone),
            // O_NOFOLLOW met a link put there since the look above.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Ok(DocumentRead::Refused(Refusal::symlink()));
            }
            Err(e) => return Err(e),
        };
        let opened = file.metadata()?;
        if !same_file(&meta, &opened) {
            // Replaced between the look and the open: look again later.
            return Ok(DocumentRead::Settling(settle));
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(&mut file, max_bytes + 1), &mut bytes)?;
        if bytes.len() as u64 > max_bytes {
            return Ok(DocumentRead::Refused(Refusal::too_large(
                bytes.len() as u64,
                max_bytes,
            )));
        }
        let after = file.metadata()?;
        if after.len() != bytes.len() as u64 || after.modified().ok() != meta.modified().ok() {
            return Ok(DocumentRead::Refused(Refusal::still_written(settle)));
        }
        Ok(DocumentRead::Text(bytes))
    }

    /// Documents in `pending/` that match `patterns`, by name, each with
    /// whether it is ready: unchanged for at least `settle` (a file still
    /// being written keeps getting a new modification time). Temp and hidden
    /// files never count.
    pub fn documents(&self, patterns: &[String], settle: Duration) -> io::Result<Vec<Document>> {
        let now = SystemTime::now();
        let mut docs = Vec::new();
        for entry in fs::read_dir(self.pending())?.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_document_name(&name, patterns) {
                continue;
            }
            // Vanished since the listing: nothing to do.
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            docs.push(Document::new(name, &meta, settle, now));
        }
        docs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(docs)
    }

    /// Moves `pending/{name}` to `completed/` or `failed/` as `{task_id}.ext`
    /// (so a resubmitted file name never overwrites an earlier one). Returns
    /// the new path, or none when the document is gone already or is not a
    /// file or a link (a directory, FIFO, socket or device named like a
    /// document is left where it is).
    pub fn finish_document(
        &self,
        name: &str,
        task_id: &str,
        outcome: Outcome,
    ) -> io::Result<Option<PathBuf>> {
        let dir = match outcome {
            Outcome::Completed => self.completed(),
            Outcome::Failed => self.failed(),
        };
        fs::create_dir_all(&dir)?;
        let ext = Path::new(name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let target = dir.join(format!("{task_id}{ext}"));
        let source = self.pending().join(name);
        match fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_file() || meta.is_symlink() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        match fs::rename(&source, &target) {
            Ok(()) => Ok(Some(target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl QueueFolder {
    /// Where task `task_id`'s document `name` is now: moved to `completed/`
    /// or `failed/` under the task's id once it ended, else still in
    /// `pending/` (only while `finished` is false: a later document may
    /// reuse the name). None when it is in none of them.
    pub fn document_path(&self, name: &str, task_id: &str, finished: bool) -> Option<PathBuf> {
        let ext = Path::new(name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let moved = [self.failed(), self.completed()]
            .into_iter()
            .map(|dir| dir.join(format!("{task_id}{ext}")));
        let pending = (!finished).then(|| self.pending().join(name));
        moved
            .chain(pending)
            .find(|path| path.symlink_metadata().is_ok())
    }

    /// Moves the document that [`finish_document`](Self::finish_document)
    /// moved for `task_id` back to `pending/{name}`, so it runs again as a
    /// new task. Returns the new path, or none when the document is in
    /// neither `failed/` nor `completed/`; an `AlreadyExists` error when
    /// `pending/{name}` is taken (nothing is overwritten).
    pub fn restore_document(&self, name: &str, task_id: &str) -> io::Result<Option<PathBuf>> {
        let ext = Path::new(name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let target = self.pending().join(name);
        for dir in [self.failed(), self.completed()] {
            let source = dir.join(format!("{task_id}{ext}"));
            if !source.is_file() {
                continue;
            }
            // A hard link refuses an existing target, where rename would
            // replace it; then the old name goes (a crash in between leaves
            // both: the pending one runs, the old one stays a record).
            fs::hard_link(&source, &target)?;
            fs::remove_file(&source)?;
            return Ok(Some(target));
        }
        Ok(None)
    }
}

/// A candidate document in `pending/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub name: String,
    pub size: u64,
    /// Unchanged long enough to be complete.
    pub ready: bool,
    /// How much longer it must stay unchanged.
    pub wait: Duration,
}

impl Document {
    fn new(name: String, meta: &fs::Metadata, settle: Duration, now: SystemTime) -> Self {
        let age = age(meta, now);
        Document {
            ready: age >= settle,
            wait: settle.saturating_sub(age),
            size: meta.len(),
            name,
        }
    }
}

/// What [`QueueFolder::read_document`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentRead {
    /// The document's bytes (whether they are UTF-8 is the caller's to judge).
    Text(Vec<u8>),
    /// It changed within the debounce (or was replaced): look again after this long.
    Settling(Duration),
    /// It was removed or renamed since it was listed.
    Gone,
    /// An entry that is never run.
    Refused(Refusal),
}

/// Why an entry of `pending/` named like a document is never run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Said to the user as "NAME: REASON".
    pub reason: String,
    /// A file or a link, which goes to `failed/` with its result; other
    /// kinds stay where they are (moving a directory or a device node out
    /// of a folder someone else manages is not ours to do).
    pub movable: bool,
}

impl Refusal {
    /// The refusal for an entry that is not a regular file, judged without
    /// following links.
    fn of_kind(meta: &fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        let what = if kind.is_file() {
            return None;
        } else if kind.is_symlink() {
            return Some(Self::symlink());
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a named pipe (FIFO)"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        Some(Self {
            reason: format!("is {what}, not a regular file; only regular files are run"),
            movable: false,
        })
    }

    fn symlink() -> Self {
        Self {
            reason: "is a symbolic link; only regular files are run (a link could point \
                     anywhere, so it is never followed)"
                .to_owned(),
            movable: true,
        }
    }

    fn too_large(size: u64, max_bytes: u64) -> Self {
        Self {
            reason: format!(
                "is {size} bytes or more, over the {max_bytes}-byte limit \
                 ([queues] max_document_bytes)"
            ),
            movable: true,
        }
    }

    fn still_written(settle: Duration) -> Self {
        Self {
            reason: format!(
                "was still being written {} ms after it last changed \
                 ([queues] watch_debounce_ms); write it elsewhere and move it in whole",
                settle.as_millis()
            ),
            movable: true,
        }
    }
}

/// How long ago `meta`'s file last changed.
fn age(meta: &fs::Metadata, now: SystemTime) -> Duration {
    meta.modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .unwrap_or_default()
}

/// Opens a file someone else may control: never through a final symlink,
/// and without blocking should it be a FIFO after all.
fn open_untrusted(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino() && b.is_file()
}

/// Editor and tool leftovers that are never documents: hidden files (lock
/// files, `.#name` Emacs locks, `.name.swp` Vim swaps), `name~` backups,
/// and `.swp`/`.tmp`/`.part` files.
/// Whether an entry of `pending/` named `name` is a task document: it
/// matches one of `patterns` and is no temp or hidden file.
pub fn is_document_name(name: &str, patterns: &[String]) -> bool {
    !is_ignored(name) && patterns.iter().any(|p| glob_match(p, name))
}

/// Whether `name` is a lock file's (see [`QueueFolder::lock_path`]).
fn is_lock_name(name: &str) -> bool {
    name.starts_with(".task-") && name.ends_with(".lock")
}

pub fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".swp", ".swx", ".tmp", ".part", ".crdownload"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// Shell-style matching of a file name: `*` is any run of characters, `?`
/// one character; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    // Names are matched for every entry of every listing: ASCII, the usual
    // case, is matched byte for byte with nothing allocated.
    if pattern.is_ascii() && name.is_ascii() {
        return glob_match_units(pattern.as_bytes(), name.as_bytes(), b'*', b'?');
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    glob_match_units(&pattern, &name, '*', '?')
}

/// [`glob_match`] of pattern `p` against name `n`, both as units (bytes or
/// characters), `star_unit` and `one` being the units of `*` and `?`.
fn glob_match_units<T: Copy + PartialEq>(p: &[T], n: &[T], star_unit: T, one: T) -> bool {
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(&c) if c == star_unit => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == one || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == star_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("task-*.md", "task-20240101-fix.md"));
        assert!(glob_match("task-*.md", "task-.md"));
        assert!(!glob_match("task-*.md", "task-1.md.swp"));
        assert!(!glob_match("task-*.md", "notes.md"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(glob_match("*.md", "a.b.md"));
        assert!(!glob_match("*.md", "a.mdx"));
        // `?` is one character, not one byte.
        assert!(glob_match("t?sk-*.md", "täsk-1.md"));
        assert!(!glob_match("t??sk-*.md", "täsk-1.md"));
        assert!(glob_match("tä*.md", "täsk-1.md"));
    }

    #[test]
    fn temp_files_are_ignored() {
        for name in [
            ".#task-1.md",
            "task-1.md~",
            ".task-1.md.swp",
            "task-1.md.swp",
            ".task-x.lock",
            "task-1.md.tmp",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        assert!(!is_ignored("task-1.md"));
    }

    #[test]
    fn documents_are_listed_in_name_order_and_settle() {
        let dir = tempfile::tempdir().unwrap();
        let folder = QueueFolder::new("q", dir.path());
        folder.create().unwrap();
        for name in [
            "task-2.md",
            "task-1.md",
            ".#task-3.md",
            "task-4.md~",
            "other.md",
        ] {
            fs::write(folder.pending().join(name), "x").unwrap();
        }
        let patterns = vec!["task-*.md".to_owned()];
        let docs = folder.documents(&patterns, Duration::ZERO).unwrap();
        let names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["task-1.md", "task-2.md"]);
        fs::write(folder.lock_path("task-2"), "{}").unwrap();
        let listing = folder.list_pending(&patterns).unwrap();
        assert_eq!(listing.documents, names);
        assert_eq!(listing.locks, [folder.lock_path("task-2")]);
        assert_eq!(
            folder
                .read_document("task-2.md", Duration::ZERO, 1024)
                .unwrap(),
            DocumentRead::Text(b"x".to_vec())
        );
        assert_eq!(
            folder
                .read_document("task-9.md", Duration::ZERO, 1024)
                .unwrap(),
            DocumentRead::Gone
        );
        assert!(matches!(
            folder.read_document("task-2.md", Duration::from_secs(3600), 1024),
            Ok(DocumentRead::Settling(wait)) if wait > Duration::ZERO
        ));
        assert!(docs.iter().all(|d| d.ready));
        let fresh = folder
            .documents(&patterns, Duration::from_secs(3600))
            .unwrap();
        assert!(fresh.iter().all(|d| !d.ready && d.wait > Duration::ZERO));

        let moved = folder
            .finish_document("task-1.md", "task-1~2", Outcome::Completed)
            .unwrap();
        assert_eq!(moved, Some(folder.completed().join("task-1~2.md")));
        assert_eq!(
            folder
                .finish_document("task-1.md", "task-1", Outcome::Failed)
                .unwrap(),
            None
        );
    }

    fn refused(folder: &QueueFolder, name: &str) -> Refusal {
        match folder.read_document(name, Duration::ZERO, 64).unwrap() {
            DocumentRead::Refused(refusal) => refusal,
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn untrusted_entries_are_refused_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret.txt");
        fs::write(&outside, "the secret").unwrap();
        let folder = QueueFolder::new("q", &dir.path().join("queue"));
        folder.create().unwrap();
        let pending = folder.pending();

        std::os::unix::fs::symlink(&outside, pending.join("task-link.md")).unwrap();
        let link = refused(&folder, "task-link.md");
        assert!(
            link.movable && link.reason.contains("symbolic link"),
            "{link:?}"
        );

        fs::create_dir(pending.join("task-dir.md")).unwrap();
        let dir_refusal = refused(&folder, "task-dir.md");
        assert!(!dir_refusal.movable && dir_refusal.reason.contains("a directory"));

        // A FIFO would block a plain open for reading until a writer came.
        let fifo = pending.join("task-fifo.md");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let fifo_refusal = refused(&folder, "task-fifo.md");
        assert!(!fifo_refusal.movable && fifo_refusal.reason.contains("FIFO"));

        fs::write(pending.join("task-big.md"), vec![b'x'; 65]).unwrap();
        let big = refused(&folder, "task-big.md");
        assert!(
            big.movable && big.reason.contains("64-byte limit"),
            "{big:?}"
        );

        // Only files and links leave pending/; the directory and FIFO stay.
        for (name, moved) in [
            ("task-link.md", true),
            ("task-big.md", true),
            ("task-dir.md", false),
            ("task-fifo.md", false),
        ] {
            let id = name.trim_end_matches(".md");
            let result = folder.finish_document(name, id, Outcome::Failed).unwrap();
            assert_eq!(result.is_some(), moved, "{name}");
            assert_eq!(
                pending.join(name).symlink_metadata().is_ok(),
                !moved,
                "{name}"
            );
        }
        // The link moved as a link; its target is untouched.
        assert!(folder.failed().join("task-link.md").is_symlink());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "the secret");
    }
}
