//! `/api/v1/webhooks`: the app's webhooks and their deliveries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use comms_protocol::webhook::{CreateWebhookRequest, CreatedWebhook, DeliveryList, WebhookList};
use comms_protocol::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthApp};
use crate::state::AppState;

/// Routes of the webhooks resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
}

/// List the app's webhooks, oldest first (without their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The app's webhooks", body = WebhookList),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name))]
async fn list_webhooks(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
) -> Result<Json<WebhookList>, ApiError> {
    Ok(Json(WebhookList { webhooks: state.service.list_webhooks(&app).await? }))
}

/// Register a webhook: comms posts the listed events to `url`, signed with
/// the returned `secret` (Standard Webhooks), which is shown only here.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Created; the only answer holding the secret", body = CreatedWebhook),
        (status = 400, description = "Not an http(s) URL, a refused address, or an unknown event type",
            body = ErrorBody),
        (status = 403, description = "Missing or bad API key, or webhooks_per_app reached", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name))]
async fn create_webhook(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let webhook = state.service.create_webhook(&app, &body.url, &body.events).await?;
    Ok((StatusCode::CREATED, Json(webhook)))
}

/// Delete a webhook; its pending deliveries are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such webhook in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, webhook = %id))]
async fn delete_webhook(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_webhook(&app, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's 50 most recent deliveries, newest first: the event, where
/// it stands, the attempts made, the last answer or error and, while
/// pending, when the next attempt is due.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "Recent deliveries", body = DeliveryList),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such webhook in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, webhook = %id))]
async fn list_deliveries(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    Ok(Json(DeliveryList { deliveries: state.service.webhook_deliveries(&app, &id).await? }))
}

/// Send a delivery again now, with the same event id, and retry it for a
/// new retry period if it fails.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
        ("delivery" = u64, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 202, description = "Due now"),
        (status = 400, description = "Bad delivery id", body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 404, description = "No such webhook or delivery in this app", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name, webhook = %id))]
async fn redeliver(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiPath((id, delivery)): ApiPath<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    state.service.redeliver(&app, &id, delivery).await?;
    Ok(StatusCode::ACCEPTED)
}
