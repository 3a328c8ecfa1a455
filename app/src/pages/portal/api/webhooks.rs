//! Webhooks of a developer's approved app and their deliveries, through
//! the same [`comms_core::service::Service`] calls as the REST API
//! (`/api/v1/webhooks`).

use comms_protocol::webhook::CreatedWebhook;
use leptos::prelude::*;

use crate::pages::portal::error::PortalError;
#[cfg(feature = "ssr")]
use crate::pages::portal::guards;

/// Registers a webhook posting `events` to `url`; the answer holds its
/// secret, shown this once.
#[server(prefix = "/portal/fn", endpoint = "create_webhook")]
pub async fn create_webhook(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// Where events are posted.
    url: String,
    /// The event types checked in the form (`events[]`); none checked
    /// sends none, which the service refuses with its own message.
    #[server(default)]
    events: Vec<String>,
) -> Result<CreatedWebhook, PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    Ok(context.service.create_webhook(&record, &url, &events).await?)
}

/// Deletes one of the app's webhooks with its pending deliveries.
#[server(prefix = "/portal/fn", endpoint = "delete_webhook")]
pub async fn delete_webhook(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The webhook's id.
    id: String,
) -> Result<(), PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    Ok(context.service.delete_webhook(&record, &id).await?)
}

/// Sends one of a webhook's deliveries again now, with the same
/// `webhook-id`.
#[server(prefix = "/portal/fn", endpoint = "redeliver")]
pub async fn redeliver(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The webhook's id.
    id: String,
    /// The delivery's id.
    delivery: u64,
) -> Result<(), PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    Ok(context.service.redeliver(&record, &id, delivery).await?)
}

/// The app's webhooks, each with its recent deliveries: one store call for
/// the list, then one per webhook (at most `webhooks_per_app` of them),
/// made at once.
#[cfg(feature = "ssr")]
pub(super) async fn webhook_panels(
    service: &comms_core::service::Service,
    app: &comms_core::store::AppRecord,
) -> Result<Vec<crate::pages::portal::views::WebhookPanel>, PortalError> {
    use crate::pages::portal::views::WebhookPanel;
    let webhooks = service.list_webhooks(app).await?;
    let deliveries =
        futures_util::future::try_join_all(webhooks.iter().map(|webhook| service.webhook_deliveries(app, &webhook.id)))
            .await?;
    Ok(webhooks.into_iter().zip(deliveries).map(|(webhook, deliveries)| WebhookPanel { webhook, deliveries }).collect())
}
