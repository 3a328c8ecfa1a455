//! Cross-origin access to the REST API, the legacy API, the OpenAPI
//! document and the WebSocket route's plain `GET` answers, so an app's web
//! pages can call them with `fetch`.
//!
//! Preflight requests carry no API key, so they cannot be answered per app:
//! every origin's preflight is accepted here, and the app's own allow-list
//! of origins is checked with its key, in `extract::AuthApp`, which answers
//! `403 forbidden` to a page the app does not list. Keys travel in headers,
//! never in cookies, so `Access-Control-Allow-Origin: *` exposes nothing a
//! page could not already send.

use std::time::Duration;

use axum::http::{header, HeaderName, Method};
use tower_http::cors::{Any, CorsLayer};

/// How long browsers may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The CORS policy of the API routes.
pub fn api_layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("idempotency-key"),
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}
