//! The MainWatcher: notices when the target branch moves (someone pushed or
//! committed to main), so running specs can be rebased between iterations.
//!
//! A poll reads the branch's ref file (or `packed-refs`) directly, so it costs
//! two small file reads and no process; only refs stored some other way (the
//! reftable format, a symbolic ref) fall back to one `git rev-parse`.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::GitError;
use crate::repo::{Oid, Repo};

/// The target branch moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub from: Oid,
    pub to: Oid,
}

/// Remembers a branch's head and tells when it changes.
#[derive(Debug, Clone)]
pub struct MainWatcher {
    repo: Repo,
    branch: String,
    head: Oid,
}

impl MainWatcher {
    /// How often [`MainWatcher::run`] polls unless told otherwise (`[pipeline] main_poll`).
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

    /// Watches `branch`, starting from where it points now.
    pub fn new(repo: &Repo, branch: &str) -> Result<Self, GitError> {
        let head = repo.head_of(branch)?;
        Ok(Self {
            repo: repo.clone(),
            branch: branch.to_owned(),
            head,
        })
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The head last seen.
    pub fn head(&self) -> &Oid {
        &self.head
    }

    /// Reads the branch's head; `Some` when it differs from the last one seen.
    pub fn poll(&mut self) -> Result<Option<Moved>, GitError> {
        let now = match self.read_ref_file() {
            Some(oid) => oid,
            None => self.repo.head_of(&self.branch)?,
        };
        if now == self.head {
            return Ok(None);
        }
        let from = std::mem::replace(&mut self.head, now.clone());
        Ok(Some(Moved { from, to: now }))
    }

    /// The head from `refs/heads/BRANCH` or `packed-refs`; `None` when the ref
    /// is stored in a way this does not read, so git must be asked.
    fn read_ref_file(&self) -> Option<Oid> {
        let common = &self.repo.common_dir;
        let loose: PathBuf = common.join("refs/heads").join(&self.branch);
        match fs::read_to_string(&loose) {
            Ok(text) => return Oid::parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
        let packed = fs::read_to_string(common.join("packed-refs")).ok()?;
        let name = format!("refs/heads/{}", self.branch);
        packed
            .lines()
            .filter(|line| !line.starts_with('#') && !line.starts_with('^'))
            .find_map(|line| {
                let (oid, refname) = line.split_once(' ')?;
                (refname == name).then(|| Oid::parse(oid)).flatten()
            })
    }

    /// Polls every `interval` and whenever `poke` is notified (use
    /// `notify_one`, so a poke during a poll is not lost), calling `on_move`
    /// for each move; sleeps in between. Runs until the future is dropped. A
    /// failed poll (the branch deleted, say) is logged and polling goes on.
    pub async fn run<F>(mut self, interval: Duration, poke: &Notify, mut on_move: F)
    where
        F: FnMut(Moved),
    {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = poke.notified() => {}
            }
            let polled = tokio::task::spawn_blocking(move || {
                let result = self.poll();
                (self, result)
            })
            .await;
            let result;
            (self, result) = match polled {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "the target-branch watcher stopped");
                    return;
                }
            };
            match result {
                Ok(Some(moved)) => on_move(moved),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the target branch"),
            }
        }
    }
}
