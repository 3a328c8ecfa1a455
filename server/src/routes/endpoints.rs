//! `/api/v1/rooms/{room}/endpoints` and `…/endpoints/{code}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use comms_protocol::rest::{CreateEndpointRequest, EndpointList};
use comms_protocol::Endpoint;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthApp, WsBase};
use crate::state::AppState;

/// Routes of the endpoints resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room}/endpoints", get(list_endpoints).post(create_endpoint))
        .route("/api/v1/rooms/{room}/endpoints/{code}", delete(delete_endpoint))
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn list_endpoints(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    WsBase(ws_base): WsBase,
    ApiPath(room): ApiPath<String>,
) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = state.service.list_endpoints(&app, &room, &ws_base).await?;
    Ok(Json(EndpointList { endpoints }))
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn create_endpoint(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    WsBase(ws_base): WsBase,
    ApiPath(room): ApiPath<String>,
    ApiJson(body): ApiJson<CreateEndpointRequest>,
) -> Result<(StatusCode, Json<Endpoint>), ApiError> {
    let endpoint =
        state.service.create_endpoint(&app, &room, &body.permission, body.meta.as_deref(), &ws_base).await?;
    Ok((StatusCode::CREATED, Json(endpoint)))
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn delete_endpoint(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    ApiPath((room, code)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_endpoint(&app, &room, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
