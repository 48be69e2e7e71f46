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

    /// Lock files in `pending/`.
    pub fn lock_files(&self) -> io::Result<Vec<PathBuf>> {
        let mut locks: Vec<PathBuf> = fs::read_dir(self.pending())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".task-") && n.ends_with(".lock"))
            })
            .collect();
        locks.sort();
        Ok(locks)
    }

    /// Names of the documents in `pending/` that match `patterns`, sorted,
    /// without looking at each file: one directory read, so a worker with a
    /// long backlog does not stat every document for every task it runs.
    pub fn document_names(&self, patterns: &[String]) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.pending())?
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !is_ignored(name) && patterns.iter().any(|p| glob_match(p, name)))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Document `name` in `pending/` with whether it is ready (see
    /// [`documents`](Self::documents)); none when it is gone or not a file.
    pub fn document(&self, name: &str, settle: Duration) -> Option<Document> {
        let meta = fs::metadata(self.pending().join(name)).ok()?;
        meta.is_file()
            .then(|| Document::new(name.to_owned(), &meta, settle, SystemTime::now()))
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
            if is_ignored(&name) || !patterns.iter().any(|p| glob_match(p, &name)) {
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
    /// the new path, or none when the document is gone already.
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
        match fs::rename(self.pending().join(name), &target) {
            Ok(()) => Ok(Some(target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl QueueFolder {
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
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        Document {
            ready: age >= settle,
            wait: settle.saturating_sub(age),
            size: meta.len(),
            name,
        }
    }
}

/// Editor and tool leftovers that are never documents: hidden files (lock
/// files, `.#name` Emacs locks, `.name.swp` Vim swaps), `name~` backups,
/// and `.swp`/`.tmp`/`.part` files.
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
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
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
    p[pi..].iter().all(|&c| c == '*')
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
        assert_eq!(folder.document_names(&patterns).unwrap(), names);
        assert!(folder.document("task-2.md", Duration::ZERO).unwrap().ready);
        assert!(folder.document("task-9.md", Duration::ZERO).is_none());
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
}
