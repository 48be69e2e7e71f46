//! What every handler shares: the service and the change feed, and the one
//! way handlers call the (blocking) service from async code.

use std::sync::Arc;

use taskdaemon_service::{Feed, Service, ServiceError};

use crate::problem::Problem;

/// The server's shared state.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// The change feed the hub reads.
    pub feed: Arc<Feed>,
    /// Fans the feed out to every WebSocket client.
    pub hub: Arc<crate::stream::Hub>,
    /// Served over HTTPS: cookies are `Secure`.
    pub tls: bool,
}

impl AppState {
    /// Runs `call` on a blocking thread (the service reads files, the store
    /// and the daemon's socket synchronously) and turns its error into a
    /// problem object.
    pub async fn call<T, F>(&self, call: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
    {
        let service = self.service.clone();
        tokio::task::spawn_blocking(move || call(&service))
            .await
            .map_err(|e| Problem::internal(format!("the request's worker failed: {e}")))?
            .map_err(Problem::from)
    }
}
