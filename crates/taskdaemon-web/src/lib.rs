//! The web face of taskdaemon: a dashboard and a JSON API over HTTP, served
//! from the daemon (`start --web`, `[web] listen`) or in the foreground
//! (`taskdaemon web`).
//!
//! - [`api`]: REST v1, thin handlers over `taskdaemon-service`.
//! - [`plans`]: plans, their trees and the actions people take on them.
//! - [`stream`]: the change feed over a WebSocket.
//! - [`metrics`]: Prometheus text.
//! - [`auth`]: the token and share links (401/403).
//! - [`cache`]: answers of hot reads kept until the next commit.
//! - [`problem`]: errors as problem objects.
//! - [`assets`]: the dashboard (HTML, CSS, JS) compiled into the binary.
//!
//! The server runs on its own multi-threaded runtime ([`spawn`]), so API
//! load never competes with the daemon's own event loop.

pub mod api;
pub mod assets;
pub mod auth;
pub mod cache;
pub mod gates;
pub mod metrics;
pub mod openapi;
pub mod plans;
pub mod problem;
pub mod state;
pub mod stream;
pub mod tls;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use taskdaemon_service::{FeedOptions, Service};

pub use problem::Problem;
pub use state::AppState;
pub use tls::TlsFiles;

/// The largest request body accepted (a task document fits easily).
pub const BODY_LIMIT: usize = 1 << 20;
/// Where the dashboard listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7777";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("invalid listen address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error(
        "{addr} is not a loopback address: pass --allow-remote (or set [web] allow_remote = true) to serve other hosts"
    )]
    Remote { addr: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the web server: {0}")]
    Start(String),
    #[error("TLS: {0}")]
    Tls(String),
}

/// Binds `addr`. A non-loopback address needs `allow_remote`, and without
/// `tls` it warns: the token would cross the network in clear.
pub fn bind(addr: &str, allow_remote: bool, tls: bool) -> Result<TcpListener, WebError> {
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| WebError::Address {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    let Some(first) = resolved.first() else {
        return Err(WebError::Address {
            addr: addr.to_owned(),
            reason: "it resolves to nothing".to_owned(),
        });
    };
    if !resolved.iter().all(|a| a.ip().is_loopback()) {
        if !allow_remote {
            return Err(WebError::Remote {
                addr: addr.to_owned(),
            });
        }
        if !tls {
            tracing::warn!(
                %addr,
                "serving a non-loopback address without TLS: the token travels in clear"
            );
            eprintln!(
                "warning: {addr} is reachable from other hosts without TLS: the token travels in clear (give --tls-cert and --tls-key)"
            );
        }
    }
    let listener = TcpListener::bind(first).map_err(|source| WebError::Bind {
        addr: addr.to_owned(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| WebError::Start(e.to_string()))?;
    Ok(listener)
}

/// The whole application: pages, API, stream and metrics, behind auth.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/tasks", get(api::list_tasks))
        .route("/tasks/{id}", get(api::show_task))
        .route("/tasks/{id}/logs", get(api::task_logs))
        .route("/tasks/{id}/result", get(api::task_result))
        .route("/tasks/{id}/kill", post(api::kill))
        .route("/tasks/{id}/restart", post(api::restart))
        .route("/tasks/{id}/cancel", post(api::cancel))
        .route("/tasks/{id}/retry", post(api::retry))
        .route("/tasks/{id}/{action}", post(api::act))
        .route("/processes", get(api::processes).post(api::spawn))
        .route("/queues", get(api::queues))
        .route("/queues/{queue}/tasks", get(api::queue_tasks))
        .route("/queues/{queue}/submit", post(api::submit))
        .route("/workers", get(api::workers))
        .route("/loops", get(api::loops).post(api::loop_run))
        .route("/loops/{id}", get(api::show_loop))
        .route("/loops/{id}/stop", post(api::loop_stop))
        .route("/tracked", get(api::tracked))
        .route("/memory", get(api::memory))
        .route("/search", get(api::search))
        .route("/history", get(api::history))
        .route("/metrics", get(api::metrics_json))
        .route("/aggregates", get(api::aggregates))
        .route("/report", get(api::report))
        .route("/me", get(api::me))
        .route("/stream", get(stream::stream))
        .merge(plans::routes())
        .merge(gates::routes());
    let protected = Router::new()
        .nest("/api/v1", v1)
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/docs", get(openapi::docs_page))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(assets::index))
        .route_layer(from_fn_with_state(state.clone(), auth::require_access));
    Router::new()
        .merge(protected)
        .route("/login", get(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/app.js", get(assets::script))
        .route("/assets/app.css", get(assets::style))
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The state for `service`, with one change feed for every stream client.
pub fn state(service: Service, tls: bool) -> Result<AppState, WebError> {
    let feed = service
        .feed(FeedOptions::default())
        .map_err(|e| WebError::Start(e.to_string()))?;
    let hub = stream::Hub::start(&feed).map_err(|e| WebError::Start(e.to_string()))?;
    Ok(AppState {
        service: Arc::new(service),
        feed: Arc::new(feed),
        hub: Arc::new(hub),
        tls,
        cache: Arc::default(),
    })
}

/// Serves on `listener` (HTTPS with `tls`) until the process ends, on a
/// runtime of its own.
pub fn serve_blocking(
    service: Service,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), WebError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("td-web")
        .enable_all()
        .build()
        .map_err(|e| WebError::Start(e.to_string()))?;
    let state = state(service, tls.is_some())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| WebError::Start(e.to_string()))?;
        let served = match tls {
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config)
                    .map_err(|e| WebError::Start(e.to_string()))?;
                axum::serve(listener, router(state)).await
            }
            None => axum::serve(listener, router(state)).await,
        };
        served.map_err(|e| WebError::Start(e.to_string()))
    })
}

/// Serves on `listener` from a thread of its own (the daemon's way).
pub fn spawn(
    service: Service,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), WebError> {
    std::thread::Builder::new()
        .name("td-web".into())
        .spawn(move || {
            if let Err(e) = serve_blocking(service, listener, tls) {
                tracing::error!(error = %e, "the web server stopped");
            }
        })
        .map(|_| ())
        .map_err(|e| WebError::Start(e.to_string()))
}

/// The base URL a listener serves.
pub fn base_url(listener: &TcpListener, tls: bool) -> Result<String, WebError> {
    let addr = listener
        .local_addr()
        .map_err(|e| WebError::Start(e.to_string()))?;
    Ok(format!("{}://{addr}", if tls { "https" } else { "http" }))
}
