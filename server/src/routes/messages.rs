//! `/api/v1/rooms/{room}/messages`: history and server-side publish.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use comms_protocol::rest::{MessageList, PublishMessageRequest};
use comms_protocol::Message;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthApp};
use crate::state::AppState;

/// Routes of the messages resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/rooms/{room}/messages", get(list_messages).post(publish_message))
}

/// `?after_seq=N&limit=L`; `after_seq` defaults to 0 (from the oldest
/// retained message), `limit` to 100.
#[derive(Debug, Deserialize)]
struct MessagesQuery {
    after_seq: Option<u64>,
    limit: Option<usize>,
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn list_messages(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    ApiPath(room): ApiPath<String>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let messages = state.service.list_messages(&app, &room, query.after_seq.unwrap_or(0), query.limit).await?;
    Ok(Json(MessageList { messages }))
}

#[tracing::instrument(skip_all, fields(app = %app.name, room = %room))]
async fn publish_message(
    State(state): State<AppState>,
    AuthApp(app): AuthApp,
    ApiPath(room): ApiPath<String>,
    ApiJson(body): ApiJson<PublishMessageRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let message = state.service.publish_as_app(&app, &room, body.message, body.meta.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(message)))
}
