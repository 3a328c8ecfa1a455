//! `/api/v1/rooms/{room}/messages`: history, server-side publish and
//! redaction.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use comms_core::capabilities::RedactTarget;
use comms_core::input::Meta;
use comms_core::names::RoomName;
use comms_protocol::rest::{MessageList, PublishMessageRequest, RedactSenderRequest, Redacted};
use comms_protocol::ws::Nonce;
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
    OpenApiRouter::new()
        .routes(routes!(list_messages, publish_message))
        .routes(routes!(redact_message))
        .routes(routes!(redact_sender))
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
    /// Only messages of the endpoint with this public id (or `app`).
    sender_id: Option<String>,
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
    let after_seq = query.after_seq.unwrap_or(0);
    let messages = state.service.list_messages(&app, &room, after_seq, query.limit, query.sender_id.as_deref()).await?;
    Ok(Json(MessageList { messages }))
}

/// Redact a retained message: it keeps its id, seq, time and sender, its
/// payload becomes `null` and it gains `redacted_at`, in history and on
/// resume; live connections get a `redaction` frame. Redacting it again
/// changes nothing.
#[utoipa::path(delete, path = "/api/v1/rooms/{room}/messages/{seq}", tag = "messages",
    params(("room" = String, Path, description = "Room name"), ("seq" = u64, Path, description = "The message's seq")),
    responses(
        (status = 204, description = "Redacted"),
        (status = 400, description = "Bad room name or seq", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app, or no such retained message", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn redact_message(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath((room, seq)): ApiPath<(RoomName, u64)>,
) -> Result<StatusCode, ApiError> {
    state.service.redact(&app, &room, RedactTarget::Seq(seq)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Redact every retained message of one sender (an endpoint's public id),
/// as `DELETE …/messages/{seq}` does for one.
#[utoipa::path(post, path = "/api/v1/rooms/{room}/messages/redact", tag = "messages",
    params(("room" = String, Path, description = "Room name")),
    request_body = RedactSenderRequest,
    responses(
        (status = 200, description = "How many messages this request redacted", body = Redacted),
        (status = 400, description = "Bad room name or body", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn redact_sender(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(room): ApiPath<RoomName>,
    ApiJson(body): ApiJson<RedactSenderRequest>,
) -> Result<Json<Redacted>, ApiError> {
    let redacted = state.service.redact(&app, &room, RedactTarget::Sender(body.sender_id)).await?;
    Ok(Json(Redacted { redacted }))
}

/// Publish from the app's backend: every connection of the room receives it
/// with sender id `"app"` and the given meta. Answers once it is stored.
/// With an `Idempotency-Key` the app sent for the room within the nonce
/// window (120 s), nothing new is published and the first message is
/// answered, so a request retried after a timeout is published once.
#[utoipa::path(post, path = "/api/v1/rooms/{room}/messages", tag = "messages",
    params(
        ("room" = String, Path, description = "Room name"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 64 characters, no control characters: a repeat within the window publishes nothing new"),
    ),
    request_body = PublishMessageRequest,
    responses(
        (status = 201, description = "Published and stored", body = Message),
        (status = 400, description = "Bad room name, body, meta or Idempotency-Key", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such room in this app", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key's first message is no longer retained", body = ErrorBody),
        (status = 413, description = "Message or body over the limit", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn publish_message(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(room): ApiPath<RoomName>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PublishMessageRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let key = idempotency_key(&headers)?;
    let meta = Meta::parse(body.meta.as_deref(), &state.config.limits)?;
    let message = state.service.publish_as_app(&app, &room, body.message, meta, key.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// The request's `Idempotency-Key`, checked as a message's nonce is.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<Nonce>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::invalid("Idempotency-Key must be text"))?;
    Nonce::parse(text.to_owned())
        .map(Some)
        .map_err(|_| ApiError::invalid("Idempotency-Key must be 1 to 64 characters, without control characters"))
}
