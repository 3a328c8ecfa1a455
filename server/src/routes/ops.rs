//! Operations endpoints: `/healthz` (the process is alive), `/readyz` (the
//! database and broker answer) and `/metrics` (Prometheus text, for the
//! addresses and token of `[metrics]` only).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use comms_core::error::ServiceError;

use crate::error::ApiError;
use crate::extract::{bearer_token, Client};
use crate::state::AppState;

/// Routes of the operations endpoints.
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.store.ping().await.map_err(|err| tracing::warn!(error = %err, "readiness: database"));
    let broker = state.broker.ready().await.map_err(|err| tracing::warn!(error = %err, "readiness: broker"));
    // Details go to the log only: this route needs no key.
    let check = |result: &Result<(), ()>| if result.is_ok() { "ok" } else { "unreachable" };
    let ready = database.is_ok() && broker.is_ok();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": check(&database),
        "broker": check(&broker),
    });
    (status, Json(body))
}

async fn metrics(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if !state.config.metrics.permits(client.ip, bearer_token(&headers)) {
        return Err(ServiceError::Denied("metrics are readable from the addresses in metrics.allow only".into()).into());
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], state.metrics.render()))
}
