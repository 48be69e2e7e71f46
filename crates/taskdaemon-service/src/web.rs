//! What the web dashboard and HTTP API need beyond the other views: the
//! login token, read-only share links and their scopes, and the listing of
//! tasks of every kind with filters and a cursor.
//!
//! The token lives in `.taskdaemon/web-token` (mode 0600), made at `init`
//! or on first use. Share links live in the store (meta key
//! [`SHARES_KEY`]), so every web server on a shared PostgreSQL database
//! honours them. Secrets are compared in constant time and never logged.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use taskdaemon_core::time::{Millis, now_millis};
use taskdaemon_core::{Status, TaskKind, TaskRecord};
use taskdaemon_store::{StoreError, TaskPageFilter};
use taskdaemon_workspace::secret;

use crate::{Result, Service, ServiceError};

/// The store meta key holding the share links (a JSON array).
pub const SHARES_KEY: &str = taskdaemon_store::SHARES_META_KEY;
/// The largest page a listing returns.
pub const MAX_PAGE: usize = 500;
/// A page when none is asked for.
pub const DEFAULT_PAGE: usize = 50;

/// What a share link may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "scope", content = "target", rename_all = "lowercase")]
pub enum ShareScope {
    All,
    /// One task (canonical id).
    Task(String),
    /// The items of one queue.
    Queue(String),
}

impl std::fmt::Display for ShareScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShareScope::All => f.write_str("all"),
            ShareScope::Task(id) => write!(f, "task {id}"),
            ShareScope::Queue(q) => write!(f, "queue {q}"),
        }
    }
}

/// A read-only link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Share {
    /// Names the link in `share list` and `share revoke`.
    pub id: String,
    /// The secret the URL carries; never shown by `share list`.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub secret: String,
    #[serde(flatten)]
    pub scope: ShareScope,
    #[schema(value_type = i64)]
    pub created_at: Millis,
    #[schema(value_type = i64)]
    pub expires_at: Millis,
}

impl Share {
    pub fn expired(&self, now: Millis) -> bool {
        now >= self.expires_at
    }

    /// The link without its secret, for listings.
    pub fn redacted(&self) -> Share {
        Share {
            secret: String::new(),
            ..self.clone()
        }
    }
}

/// Who a request to the web API acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The workspace token: may read and act on everything.
    Owner,
    /// A share link: may read within its scope, never act.
    Share(Share),
}

impl Access {
    pub fn can_act(&self) -> bool {
        matches!(self, Access::Owner)
    }

    pub fn scope(&self) -> ShareScope {
        match self {
            Access::Owner => ShareScope::All,
            Access::Share(share) => share.scope.clone(),
        }
    }
}

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The web token as last read, and the stamp of the file then.
#[derive(Default)]
pub(crate) struct TokenCache(std::sync::Mutex<Option<(FileStamp, String)>>);

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(FileStamp, String)>> {
        // Nothing is left half-done under this lock: a panic leaves a whole value or none.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A task listing's filters, as an interface received them (text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub queue: Option<String>,
    pub tool: Option<String>,
    pub session: Option<String>,
    pub label: Option<String>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

/// One page of a task listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskRecord>,
    /// Pass as `cursor` for the next page; none on the last.
    pub next: Option<String>,
}

/// One running process's newest resource sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveSample {
    pub task: String,
    /// CPU use over the last sample interval, in percent of one core.
    pub cpu_percent: f64,
    pub rss_kb: u64,
    /// Processes in the group.
    pub processes: u32,
}

/// The running processes' samples and, for the whole workspace, the host's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveSamples {
    pub samples: Vec<LiveSample>,
    pub health: Option<crate::Health>,
}

impl Service {
    /// The web login token, made (mode 0600) when missing.
    pub fn web_token(&self) -> Result<String> {
        let path = self.workspace()?.web_token_path();
        match secret::read_secret(&path) {
            Ok(Some(token)) => Ok(token),
            Ok(None) => self.rotate_web_token(),
            Err(e) => Err(ServiceError::Failed(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Replaces the web login token; the old one stops working at once.
    pub fn rotate_web_token(&self) -> Result<String> {
        let path = self.workspace()?.web_token_path();
        let token = random_secret()?;
        secret::write_secret(&path, &token)
            .map_err(|e| ServiceError::Failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(token)
    }

    /// Whether `secret` is the web token, compared in constant time. The
    /// file is read again only when its stamp (inode, size, times) changed,
    /// so the check costs one `stat`: cheap enough for every request, and a
    /// rotation (a new file renamed in place) is seen at once.
    pub fn is_web_token(&self, secret: &str) -> Result<bool> {
        if secret.is_empty() {
            return Ok(false);
        }
        let path = self.workspace()?.web_token_path();
        let stamp = std::fs::metadata(&path).ok().map(|m| FileStamp::of(&m));
        let mut cache = self.web_token.lock();
        let token = match (&*cache, stamp) {
            (Some((seen, token)), Some(now)) if *seen == now => token,
            (_, stamp) => {
                // Stamped before reading: a file replaced in between is read
                // again next time, never trusted stale.
                let token = self.web_token()?;
                let stamp = match stamp {
                    Some(stamp) => stamp,
                    None => FileStamp::of(&std::fs::metadata(&path).map_err(|e| {
                        ServiceError::Failed(format!("cannot read {}: {e}", path.display()))
                    })?),
                };
                &cache.insert((stamp, token)).1
            }
        };
        Ok(bool::from(token.as_bytes().ct_eq(secret.as_bytes())))
    }

    /// Who presents `secret`: the owner (the token), a live share link, or
    /// nobody. Compared in constant time.
    pub fn web_access(&self, secret: &str) -> Result<Option<Access>> {
        if secret.is_empty() {
            return Ok(None);
        }
        if self.is_web_token(secret)? {
            return Ok(Some(Access::Owner));
        }
        let now = now_millis();
        Ok(self
            .share_links()?
            .into_iter()
            .find(|share| bool::from(share.secret.as_bytes().ct_eq(secret.as_bytes())))
            .filter(|share| !share.expired(now))
            .map(Access::Share))
    }

    /// Makes a read-only link that expires after `expires`.
    pub fn create_share(&self, scope: ShareScope, expires: Duration) -> Result<Share> {
        let scope = match scope {
            ShareScope::Task(id) => ShareScope::Task(self.store.task(&id)?.id),
            ShareScope::Queue(q)
                if self.config.queue_entry(&q).is_none() && !self.queue_known(&q)? =>
            {
                return Err(ServiceError::BadInput(format!("no queue named {q:?}")));
            }
            other => other,
        };
        let now = now_millis();
        let secret = random_secret()?;
        let share = Share {
            id: format!("SHARE-{}", &random_secret()?[..8]),
            secret,
            scope,
            created_at: now,
            expires_at: now.saturating_add(i64::try_from(expires.as_millis()).unwrap_or(i64::MAX)),
        };
        let mut shares = self.share_links()?;
        shares.push(share.clone());
        self.save_shares(&shares)?;
        Ok(share)
    }

    /// Every share link (expired ones included), secrets removed.
    pub fn shares(&self) -> Result<Vec<Share>> {
        Ok(self.share_links()?.iter().map(Share::redacted).collect())
    }

    /// Revokes a link by id; an unknown id is an error.
    pub fn revoke_share(&self, id: &str) -> Result<Share> {
        let mut shares = self.share_links()?;
        let Some(at) = shares.iter().position(|s| s.id.eq_ignore_ascii_case(id)) else {
            return Err(ServiceError::Store(StoreError::NotFound(format!(
                "no share link {id}"
            ))));
        };
        let removed = shares.remove(at);
        self.save_shares(&shares)?;
        Ok(removed.redacted())
    }

    fn share_links(&self) -> Result<Vec<Share>> {
        match self.store.meta(SHARES_KEY)? {
            None => Ok(Vec::new()),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                ServiceError::Failed(format!("the stored share links are unreadable: {e}"))
            }),
        }
    }

    fn save_shares(&self, shares: &[Share]) -> Result<()> {
        let text = serde_json::to_string(shares)
            .map_err(|e| ServiceError::Failed(format!("cannot encode share links: {e}")))?;
        Ok(self.store.set_meta(SHARES_KEY, &text)?)
    }

    fn queue_known(&self, queue: &str) -> Result<bool> {
        Ok(self.store.queue_counts()?.iter().any(|c| c.queue == queue))
    }

    /// A page of tasks of every kind, newest first, as `scope` may see them.
    /// An unknown status or kind, or a malformed cursor, is bad input.
    pub fn task_page(&self, query: &TaskQuery, scope: &ShareScope) -> Result<TaskPage> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ServiceError::BadInput(format!(
                "limit must be between 1 and {MAX_PAGE}, not {limit}"
            )));
        }
        let mut filter = TaskPageFilter {
            status: parse_filter::<Status>("status", query.status.as_deref())?,
            kind: parse_filter::<TaskKind>("kind", query.kind.as_deref())?,
            tool: crate::tool_name(query.tool.as_deref())?,
            session: query.session.clone(),
            queue: query.queue.clone(),
            label: query.label.clone(),
            id: None,
            before_uuid: match &query.cursor {
                Some(cursor) => Some(
                    uuid::Uuid::parse_str(cursor)
                        .map_err(|_| {
                            ServiceError::BadInput(format!(
                                "cursor {cursor:?} is not one this API gave"
                            ))
                        })?
                        .to_string(),
                ),
                None => None,
            },
            limit: limit + 1,
        };
        match scope {
            ShareScope::All => {}
            ShareScope::Task(id) => filter.id = Some(id.clone()),
            ShareScope::Queue(q) => {
                if filter.queue.as_ref().is_some_and(|asked| asked != q) {
                    return Ok(TaskPage {
                        tasks: Vec::new(),
                        next: None,
                    });
                }
                filter.queue = Some(q.clone());
            }
        }
        let mut tasks = self.store.task_page(&filter)?;
        let next = if tasks.len() > limit {
            tasks.truncate(limit);
            tasks.last().map(|t| t.uuid.to_string())
        } else {
            None
        };
        Ok(TaskPage { tasks, next })
    }

    /// One task, if `scope` may see it; otherwise the same error as an
    /// unknown id (a share link does not learn which ids exist).
    pub fn scoped_task(&self, id: &str, scope: &ShareScope) -> Result<TaskRecord> {
        let task = self.store.task(id)?;
        if self.scope_allows(&task, scope)? {
            Ok(task)
        } else {
            Err(ServiceError::Store(StoreError::NotFound(format!(
                "no task {id}"
            ))))
        }
    }

    /// The gates of task `id`, when `scope` may see the task.
    pub fn scoped_gates(
        &self,
        id: &str,
        scope: &ShareScope,
    ) -> Result<Vec<taskdaemon_core::gate::Gate>> {
        let task = self.scoped_task(id, scope)?;
        self.gates_of(&task.id)
    }

    /// The latest resource sample of every running process `scope` may see
    /// (task id order), with the host's health for the whole-workspace
    /// scope: what the stream's `samples` topic sends.
    pub fn live_samples(&self, scope: &ShareScope) -> Result<LiveSamples> {
        let mut samples = Vec::new();
        for process in self.processes(false, None)? {
            let (Some(cpu_percent), Some(rss_kb), Some(processes)) =
                (process.cpu_percent, process.rss_kb, process.processes)
            else {
                continue;
            };
            if self.scope_allows(&process.task, scope)? {
                samples.push(LiveSample {
                    task: process.task.id,
                    cpu_percent,
                    rss_kb,
                    processes,
                });
            }
        }
        samples.sort_by(|a, b| a.task.cmp(&b.task));
        let health = matches!(scope, ShareScope::All).then(|| self.health());
        Ok(LiveSamples { samples, health })
    }

    /// Whether `scope` may see `task`.
    pub fn scope_allows(&self, task: &TaskRecord, scope: &ShareScope) -> Result<bool> {
        Ok(match scope {
            ShareScope::All => true,
            ShareScope::Task(id) => task.id == *id,
            ShareScope::Queue(q) => match self.store.queue_item(&task.id) {
                Ok(item) => item.queue == *q,
                Err(StoreError::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            },
        })
    }
}

fn parse_filter<T: std::str::FromStr>(field: &str, value: Option<&str>) -> Result<Option<T>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ServiceError::BadInput(format!("invalid {field} filter {v:?}")))
        })
        .transpose()
}

/// 32 random bytes from the OS, as 64 hex digits.
fn random_secret() -> Result<String> {
    secret::random_secret()
        .map_err(|e| ServiceError::Failed(format!("cannot read random bytes: {e}")))
}

/// Which part of a log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSlice {
    /// The last lines.
    Tail(usize),
    /// Up to `length` bytes from `offset` (follow a log by asking again
    /// from the `end` of the previous answer).
    Range { offset: u64, length: u64 },
}

/// The largest byte range one log read returns.
pub const MAX_LOG_READ: u64 = 1 << 20;

/// Part of a task's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskLogChunk {
    pub id: String,
    /// Byte offset of `text` in the file.
    pub offset: u64,
    /// Byte offset just after `text`: where to read on from.
    pub end: u64,
    /// The file's size now.
    pub size: u64,
    /// The bytes, lossily decoded as UTF-8.
    pub text: String,
}

/// A process started from the web: its command runs in the workspace (or
/// `cwd` inside it) with the server's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    /// Program and arguments.
    pub argv: Vec<String>,
    pub name: Option<String>,
    pub tool: Option<String>,
    /// Relative to the workspace root unless absolute.
    pub cwd: Option<String>,
}

impl Service {
    /// Part of a task's stdout (or stderr) log, if `scope` may see the task.
    /// A task that has not written anything yet has an empty log.
    pub fn task_log(
        &self,
        id: &str,
        scope: &ShareScope,
        stderr: bool,
        slice: LogSlice,
    ) -> Result<TaskLogChunk> {
        let task = self.scoped_task(id, scope)?;
        let (id, path) = self.log_path(&task.id, stderr)?;
        let size = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(read_failed(&path, &e)),
        };
        let (offset, bytes) = match slice {
            _ if size == 0 => (0, Vec::new()),
            LogSlice::Tail(lines) => {
                let bytes = crate::tail_log(&path, lines).map_err(|e| read_failed(&path, &e))?;
                (size.saturating_sub(bytes.len() as u64), bytes)
            }
            LogSlice::Range { offset, length } => {
                let offset = offset.min(size);
                let length = length.min(MAX_LOG_READ).min(size - offset);
                let mut bytes = vec![0u8; length as usize];
                let mut file = std::fs::File::open(&path).map_err(|e| read_failed(&path, &e))?;
                std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset))
                    .and_then(|_| std::io::Read::read_exact(&mut file, &mut bytes))
                    .map_err(|e| read_failed(&path, &e))?;
                (offset, bytes)
            }
        };
        Ok(TaskLogChunk {
            id,
            offset,
            end: offset + bytes.len() as u64,
            size,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Starts `request` under supervision, in the workspace (or `cwd`
    /// inside it), with the server's environment.
    pub fn spawn_request(&self, request: SpawnRequest) -> Result<TaskRecord> {
        if request.argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(ServiceError::BadInput(
                "argv: give the program and its arguments".to_owned(),
            ));
        }
        let root = self.workspace()?.root().to_path_buf();
        let cwd = match &request.cwd {
            Some(dir) => root.join(dir),
            None => root,
        };
        if !cwd.is_dir() {
            return Err(ServiceError::BadInput(format!(
                "cwd: {} is not a directory",
                cwd.display()
            )));
        }
        self.spawn_command(crate::SpawnInput {
            tool: request.tool,
            name: request.name,
            cwd: Some(cwd),
            ..crate::SpawnInput::command(request.argv)
        })
    }
}

fn read_failed(path: &std::path::Path, e: &std::io::Error) -> ServiceError {
    ServiceError::Failed(format!("cannot read {}: {e}", path.display()))
}

impl Service {
    /// Records the base URL a web server of this workspace now serves.
    pub fn record_web_url(&self, url: &str) -> Result<()> {
        let path = self.workspace()?.web_url_path();
        taskdaemon_workspace::write_projection(&path, format!("{url}\n").as_bytes())
            .map_err(|e| ServiceError::Failed(format!("cannot write {}: {e}", path.display())))
    }

    /// The base URL of this workspace's dashboard: the one a server last
    /// recorded, else the configured `[web] listen`, else none.
    pub fn web_url(&self) -> Result<Option<String>> {
        let path = self.workspace()?.web_url_path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let url = text.trim();
            if !url.is_empty() {
                return Ok(Some(url.to_owned()));
            }
        }
        Ok(self
            .config
            .web
            .listen
            .as_ref()
            .map(|addr| format!("http://{addr}")))
    }

    /// The URL that logs a browser in with `secret` (the token or a share link's).
    pub fn login_url(base: &str, secret: &str) -> String {
        format!("{}/login?token={secret}", base.trim_end_matches('/'))
    }
}
