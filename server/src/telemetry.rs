//! Logging (tracing, to stderr so command output on stdout stays clean) and
//! the HTTP metrics middleware.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use comms_core::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

use crate::state::AppState;

/// Installs the global subscriber; `RUST_LOG` overrides `log.filter`.
/// Calling it twice is harmless (the second call does nothing).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.format == LogFormat::Json { builder.json().try_init() } else { builder.try_init() };
}

/// Records the latency of every routed request by method, route pattern and
/// status.
pub async fn track_http(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only known methods become labels: any other string a client sends
    // would otherwise create a new series.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.observe_http(method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
