//! The one way the daemon runs blocking work (store calls, file writes,
//! launches, `/proc` reads) from its async tasks: on tokio's blocking pool,
//! with a panic turned into an error instead of taking the caller down.

/// Blocking work that panicked (or was cancelled at shutdown); converts
/// into the caller's error type.
#[derive(Debug)]
pub(crate) struct Panicked(String);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Panicked> for String {
    fn from(p: Panicked) -> Self {
        format!("blocking work panicked: {p}")
    }
}

/// Runs `work` on the blocking pool and returns what it returned.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panicked> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Panicked(e.to_string()))
}
