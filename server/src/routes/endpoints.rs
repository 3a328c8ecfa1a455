//! `/api/v1/rooms/{room}/endpoints` and `…/endpoints/{code}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use comms_core::input::{parse_permission, Meta};
use comms_core::names::RoomName;
use comms_core::service::endpoint_view;
use comms_core::store::EndpointLimits;
use comms_protocol::rest::{CreateEndpointRequest, EndpointList};
use comms_protocol::{Endpoint, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthApp, WsBase};
use crate::state::AppState;

/// Routes of the endpoints resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_endpoints, create_endpoint)).routes(routes!(delete_endpoint))
}

/// List a room's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/endpoints", tag = "endpoints",
    params(("room" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The room's endpoints", body = EndpointList),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn list_endpoints(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    WsBase(ws_base): WsBase,
    ApiPath(room): ApiPath<RoomName>,
) -> Result<Json<EndpointList>, ApiError> {
    let records = state.service.list_endpoints(&app, &room).await?;
    let endpoints = records.into_iter().map(|record| endpoint_view(record, &ws_base)).collect::<Result<_, _>>()?;
    Ok(Json(EndpointList { endpoints }))
}

/// Add an endpoint to a room: an unguessable code with a permission and
/// optional meta (a JSON object of at most 4 KiB) stamped on every message
/// sent through it, and optionally its own limits: `max_connections` at
/// once (past it a socket is closed with 4029) and `single_use` (the code
/// works for one connection).
#[utoipa::path(post, path = "/api/v1/rooms/{room}/endpoints", tag = "endpoints",
    params(("room" = String, Path, description = "Room name")),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Created", body = Endpoint),
        (status = 400, description = "Bad room name, permission, meta or max_connections", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn create_endpoint(
    State(state): State<AppState>,
    AuthApp { app, key_id }: AuthApp,
    WsBase(ws_base): WsBase,
    ApiPath(room): ApiPath<RoomName>,
    ApiJson(body): ApiJson<CreateEndpointRequest>,
) -> Result<(StatusCode, Json<Endpoint>), ApiError> {
    let permission = parse_permission(&body.permission)?;
    let meta = Meta::parse(body.meta.as_deref(), &state.config.limits)?;
    let limits = EndpointLimits { max_connections: body.max_connections, single_use: body.single_use };
    let record = state.service.create_endpoint(&app, &room, permission, meta, limits, Some(key_id)).await?;
    Ok((StatusCode::CREATED, Json(endpoint_view(record, &ws_base)?)))
}

/// Delete an endpoint by code; its live connections are closed with code 4001.
#[utoipa::path(delete, path = "/api/v1/rooms/{room}/endpoints/{code}", tag = "endpoints",
    params(("room" = String, Path, description = "Room name"), ("code" = String, Path, description = "Endpoint code")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room or endpoint in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn delete_endpoint(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath((room, code)): ApiPath<(RoomName, String)>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_endpoint(&app, &room, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
