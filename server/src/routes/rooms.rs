//! `/api/v1/rooms` and `/api/v1/rooms/{room}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use comms_protocol::rest::{CreateRoomRequest, RoomList};
use comms_protocol::Room;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthApp};
use crate::state::AppState;

/// Routes of the rooms resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms", get(list_rooms).post(create_room))
        .route("/api/v1/rooms/{room}", get(get_room).delete(delete_room))
}

#[tracing::instrument(skip_all, fields(app = %app.name))]
async fn list_rooms(State(state): State<AppState>, AuthApp(app): AuthApp) -> Result<Json<RoomList>, ApiError> {
    let rooms = state.service.list_rooms(&app).await?;
    Ok(Json(RoomList { rooms }))
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %body.name))]
async fn create_room(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    ApiJson(body): ApiJson<CreateRoomRequest>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    let room = state.service.create_room(&app, &body.name).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn get_room(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    ApiPath(room): ApiPath<String>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(state.service.room(&app, &room).await?))
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn delete_room(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    ApiPath(room): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_room(&app, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}
