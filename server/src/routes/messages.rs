//! `/api/v1/rooms/{room}/messages`: history and server-side publish.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use comms_core::input::Meta;
use comms_core::names::RoomName;
use comms_protocol::rest::{MessageList, PublishMessageRequest};
use comms_protocol::{ErrorBody, Message};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthApp};
use crate::state::AppState;

/// Routes of the messages resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_messages, publish_message))
}

/// Paging through retained history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MessagesQuery {
    /// Only messages with a greater seq; default 0 (from the oldest retained).
    after_seq: Option<u64>,
    /// At most this many messages (1 or more; default 100, capped at
    /// `limits.max_page_size`, 1000 by default).
    limit: Option<usize>,
}

/// Retained messages of a room, oldest first.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/messages", tag = "messages",
    params(("room" = String, Path, description = "Room name"), MessagesQuery),
    responses(
        (status = 200, description = "Messages, oldest first", body = MessageList),
        (status = 400, description = "Bad room name or query", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn list_messages(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(room): ApiPath<RoomName>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let messages = state.service.list_messages(&app, &room, query.after_seq.unwrap_or(0), query.limit).await?;
    Ok(Json(MessageList { messages }))
}

/// Publish from the app's backend: every connection of the room receives it
/// with sender id `"app"` and the given meta. Answers once it is stored.
#[utoipa::path(post, path = "/api/v1/rooms/{room}/messages", tag = "messages",
    params(("room" = String, Path, description = "Room name")),
    request_body = PublishMessageRequest,
    responses(
        (status = 201, description = "Published and stored", body = Message),
        (status = 400, description = "Bad room name, body or meta", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 413, description = "Message or body over the limit", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn publish_message(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(room): ApiPath<RoomName>,
    ApiJson(body): ApiJson<PublishMessageRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let meta = Meta::parse(body.meta.as_deref(), &state.config.limits)?;
    let message = state.service.publish_as_app(&app, &room, body.message, meta).await?;
    Ok((StatusCode::CREATED, Json(message)))
}
