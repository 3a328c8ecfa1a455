//! One router per resource, merged in [`router`].

pub mod endpoints;
pub mod legacy;
pub mod messages;
pub mod ops;
pub mod rooms;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Every HTTP route of the server, WebSocket included.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(rooms::router())
        .merge(endpoints::router())
        .merge(messages::router())
        .merge(legacy::router())
        .merge(crate::ws::router())
        .merge(ops::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut response = ApiError::invalid("method not allowed on this route").into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
