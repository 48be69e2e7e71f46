//! What every handler shares: the service and the change feed, and the one
//! way handlers call the (blocking) service from async code (with
//! [`AppState::cached_json`] for reads whose answers may be kept).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use taskdaemon_service::{Feed, Service, ServiceError};

use crate::cache::ResponseCache;
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
    /// Kept answers of hot reads, valid until the next commit.
    pub cache: Arc<ResponseCache>,
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

    /// Answers with `call`'s value as JSON, served from the cache while the
    /// store's commit version stays what it was when the answer was made
    /// (see [`crate::cache`]). `key` names the request: route, the caller's
    /// scope and every argument. A hit never leaves the async thread.
    pub async fn cached_json<T, F>(&self, key: String, call: F) -> Result<Response, Problem>
    where
        T: serde::Serialize + Send + 'static,
        F: FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
    {
        // Read before the answer's own read begins, so the answer is at
        // least as new as the version it is kept under. One `PRAGMA
        // data_version` on SQLite: cheap enough to run here.
        let version = self.service.commit_version().map_err(Problem::from)?;
        let Some(version) = version else {
            return Ok(json_response(self.encoded(call).await?));
        };
        if let Some(body) = self.cache.get(&key, version) {
            return Ok(json_response(body));
        }
        // After a commit every client misses at once: one of them reads,
        // the others wait for its answer instead of repeating the read.
        let flight = self.cache.flight(&key);
        let _turn = flight.lock().await;
        let version = self
            .service
            .commit_version()
            .map_err(Problem::from)?
            .unwrap_or(version);
        if let Some(body) = self.cache.get(&key, version) {
            return Ok(json_response(body));
        }
        let body = self.encoded(call).await?;
        self.cache.put(key, version, body.clone());
        Ok(json_response(body))
    }

    /// `call`'s value encoded as JSON, on a blocking thread.
    async fn encoded<T, F>(&self, call: F) -> Result<Bytes, Problem>
    where
        T: serde::Serialize + Send + 'static,
        F: FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
    {
        self.call(move |service| {
            let value = call(service)?;
            serde_json::to_vec(&value)
                .map(Bytes::from)
                .map_err(|e| ServiceError::Failed(format!("cannot encode the answer: {e}")))
        })
        .await
    }
}

/// A JSON body already encoded, with the content type `Json` gives.
fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
