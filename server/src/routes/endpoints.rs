//! `/api/v1/rooms/{room}/endpoints` and `…/endpoints/{code}`, and
//! `/api/v1/endpoints/{code}/children`, where an endpoint's holder mints
//! children with the code alone.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use comms_core::error::ServiceError;
use comms_core::input::{EndpointSpec, EndpointUpdate};
use comms_core::names::RoomName;
use comms_protocol::rest::{CreateEndpointRequest, EndpointList, UpdateEndpointRequest};
use comms_protocol::{Endpoint, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthApp, Client, WsBase};
use crate::state::AppState;

/// Routes of the endpoints resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(delete_endpoint, update_endpoint))
        .routes(routes!(create_child))
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
    Ok(Json(EndpointList { endpoints: state.service.endpoint_views(records, &ws_base).await? }))
}

/// Add an endpoint to a room: an unguessable code with a permission and
/// optional meta (a JSON object of at most 4 KiB) stamped on every message
/// sent through it, and optionally its own limits: `max_connections` at
/// once (past it a socket is closed with 4029), `single_use` (the code
/// works for one connection), `expires_at` (then sockets close with 4004),
/// `max_messages` (then sends get `budget_exhausted`) and `can_delegate`
/// (its holder may mint children).
#[utoipa::path(post, path = "/api/v1/rooms/{room}/endpoints", tag = "endpoints",
    params(("room" = String, Path, description = "Room name")),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Created", body = Endpoint),
        (status = 400, description = "Bad room name, permission, meta, expires_at or max_connections", body = ErrorBody),
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
    let spec = EndpointSpec::parse(&body, &state.config.limits)?;
    let record = state.service.create_endpoint(&app, &room, spec, Some(key_id)).await?;
    Ok((StatusCode::CREATED, Json(state.service.endpoint_view(record, &ws_base).await?)))
}

/// Change an endpoint: any of `permission`, `meta`, `expires_at`,
/// `max_messages`, `max_connections` (`null` clears a limit). Its open
/// connections take the change within a second, on every node, and are
/// sent an `endpoint` frame; endpoints minted from it are narrowed to stay
/// within it.
#[utoipa::path(patch, path = "/api/v1/rooms/{room}/endpoints/{code}", tag = "endpoints",
    params(("room" = String, Path, description = "Room name"), ("code" = String, Path, description = "Endpoint code")),
    request_body = UpdateEndpointRequest,
    responses(
        (status = 200, description = "The endpoint as it is now", body = Endpoint),
        (status = 400, description = "Bad room name, permission, meta, expires_at or max_connections", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room or endpoint in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn update_endpoint(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    WsBase(ws_base): WsBase,
    ApiPath((room, code)): ApiPath<(RoomName, String)>,
    ApiJson(body): ApiJson<UpdateEndpointRequest>,
) -> Result<Json<Endpoint>, ApiError> {
    let update = EndpointUpdate::parse(&body, &state.config.limits)?;
    let record = state.service.update_endpoint(&app, &room, &code, update).await?;
    Ok(Json(state.service.endpoint_view(record, &ws_base).await?))
}

/// Mint a child of an endpoint created with `can_delegate`, with its code
/// as the only credential (no API key). The body is the endpoint body; the
/// child is never wider than its parent (permission, `expires_at`,
/// `max_messages`, `max_connections`; absent ones are the parent's), and
/// goes with it when the parent is deleted. Unknown codes count as failed
/// credentials; minting counts against the app's request rate.
#[utoipa::path(post, path = "/api/v1/endpoints/{code}/children", tag = "endpoints",
    params(("code" = String, Path, description = "The parent endpoint's code")),
    request_body = CreateEndpointRequest,
    security(()),
    responses(
        (status = 201, description = "Created", body = Endpoint),
        (status = 400, description = "Bad permission, meta, expires_at or max_connections", body = ErrorBody),
        (status = 403, description = "The parent may not delegate, or the child would be wider than it", body = ErrorBody),
        (status = 404, description = "Unknown, expired or used-up code", body = ErrorBody),
        (status = 429, description = "Too many failed credentials from this address", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
async fn create_child(
    State(state): State<AppState>,
    Client(client): Client,
    WsBase(ws_base): WsBase,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<CreateEndpointRequest>,
) -> Result<(StatusCode, Json<Endpoint>), ApiError> {
    state.failed_auth.admit(client.ip)?;
    let spec = EndpointSpec::parse(&body, &state.config.limits)?;
    let parent = match state.service.delegating_parent(&code).await {
        Err(unknown @ ServiceError::NotFound(_)) => return Err(state.failed_auth.failed(client.ip, unknown).into()),
        other => other?,
    };
    // Minting writes as creating with the key does: the app's rate holds.
    state
        .api_limiter
        .check(parent.app_id)
        .map_err(|retry_after| ApiError::from(ServiceError::RateLimited { retry_after }))?;
    let record = state.service.create_child(&parent, spec).await?;
    Ok((StatusCode::CREATED, Json(state.service.endpoint_view(record, &ws_base).await?)))
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
