//! `/api/v1/rooms` and `/api/v1/rooms/{room}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use comms_core::names::RoomName;
use comms_core::store::NewRoom;
use comms_protocol::rest::{CreateRoomRequest, RoomList};
use comms_protocol::{ErrorBody, Presence, Room};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthApp};
use crate::state::AppState;

/// Routes of the rooms resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(get_room, delete_room))
        .routes(routes!(get_presence))
}

/// List the app's rooms, oldest first.
#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms",
    responses(
        (status = 200, description = "The app's rooms", body = RoomList),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name))]
async fn list_rooms(State(state): State<AppState>, AuthApp { app, .. }: AuthApp) -> Result<Json<RoomList>, ApiError> {
    let rooms = state.service.list_rooms(&app).await?;
    Ok(Json(RoomList { rooms }))
}

/// Create a room. Names are 1–64 characters from `A–Z a–z 0–9 - _ .`,
/// unique per app.
#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", request_body = CreateRoomRequest,
    responses(
        (status = 201, description = "Created", body = Room),
        (status = 400, description = "Bad name or malformed body", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 409, description = "The app has a room of that name", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %body.name))]
async fn create_room(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiJson(body): ApiJson<CreateRoomRequest>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    let new = NewRoom::new(RoomName::parse(&body.name)?, body.presence);
    let room = state.service.create_room(&app, &new).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// One room.
#[utoipa::path(get, path = "/api/v1/rooms/{room}", tag = "rooms",
    params(("room" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The room", body = Room),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn get_room(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(room): ApiPath<RoomName>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(state.service.room(&app, &room).await?))
}

/// Delete a room with its endpoints and history; its live connections are
/// closed with code 4002.
#[utoipa::path(delete, path = "/api/v1/rooms/{room}", tag = "rooms",
    params(("room" = String, Path, description = "Room name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn delete_room(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(room): ApiPath<RoomName>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_room(&app, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is in a room: live connections over every node (`online`), and in a
/// presence room its members, each with its meta and connections.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/presence", tag = "rooms",
    params(("room" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The room's presence", body = Presence),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn get_presence(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(room): ApiPath<RoomName>,
) -> Result<Json<Presence>, ApiError> {
    Ok(Json(state.service.presence(&app, &room).await?))
}
