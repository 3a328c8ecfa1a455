//! Webhooks: events from comms to an app's backend, signed, durable and
//! retried (SPEC "Webhooks", `docs/webhooks.md`).
//!
//! **Outbox.** An event is a row of `webhook_deliveries` per webhook that
//! receives it, written by the store in the transaction of the change that
//! causes it (a room or endpoint created or deleted, a message stored), so
//! an event exists exactly when its change does, and a crash loses neither.
//! Events no transaction carries (presence, occupancy, expiry) are written
//! by the one node that saw the change happen over every node. Every
//! attempt of a delivery posts the same stored body with the same
//! `webhook-id`; receivers dedupe on it, since delivery is at least once.
//!
//! **Delivery.** Each node runs a [`delivery::Dispatcher`] that leases due
//! rows, posts them and records the outcome; see that module for the
//! retries, the leases between nodes and the bounds per app.
//!
//! # Layout
//!
//! - this module: [`Webhooks`], what the service holds to build events and
//!   wake the dispatcher; the app's operations on its webhooks (the REST
//!   API and the portal call the same functions).
//! - [`event`]: the bodies of the ten event types.
//! - [`signature`]: Standard Webhooks secrets and signatures.
//! - [`destination`]: which URLs and addresses webhooks may post to.
//! - [`activity`]: joins, leaves, occupancy: events no transaction carries.
//! - [`delivery`]: the delivery worker.
//! - [`expiry`]: `endpoint.expired`, once over every node.

pub mod activity;
pub mod delivery;
pub mod destination;
pub mod event;
pub mod expiry;
pub mod signature;

use std::sync::Arc;

use comms_protocol::webhook::{CreatedWebhook, Delivery, EventType, Webhook};
use comms_protocol::Quota;
use tokio::sync::mpsc;

use crate::config::WsBase;
use crate::error::ServiceError;
use crate::presence::Observed;
use crate::secrets;
use crate::service::{quota_full, Service};
use crate::store::{AppRecord, DeliveryRecord, EventTypes, FailingWebhook, NewWebhook, WebhookRecord};
use crate::time::{format_ms, now_ms};
use delivery::Wake;
use destination::Destinations;
use signature::WebhookSecret;

/// Deliveries a listing shows, newest first.
pub const LISTED_DELIVERIES: u64 = 50;

/// What the service needs to make events: where endpoints' `ws_url`s
/// point, which destinations are refused, and the dispatcher to wake.
/// Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    /// The start of the `ws_url` of endpoints in events (no request to
    /// take a host from): `server.public_url`, else the listening address.
    pub ws_base: WsBase,
    /// Which URLs webhooks may post to.
    pub destinations: Arc<Destinations>,
    /// Tells this node's dispatcher that events were written.
    pub wake: Wake,
    /// Where the presence tracker hands what webhooks report: joins,
    /// leaves, rooms vacated by counting out a node (see [`activity`]).
    pub observed: mpsc::UnboundedSender<Observed>,
}

/// A webhook as the API lists it.
pub fn webhook_view(record: WebhookRecord) -> Webhook {
    Webhook { id: record.public_id, url: record.url, events: record.events.0, created_at: format_ms(record.created_at) }
}

/// A delivery as the API lists it.
pub fn delivery_view(record: DeliveryRecord) -> Delivery {
    let pending = record.state == comms_protocol::webhook::DeliveryState::Pending;
    Delivery {
        id: u64::try_from(record.id).unwrap_or(0),
        event_id: record.event_id,
        event: record.event_type,
        state: record.state,
        attempts: u64::try_from(record.attempts).unwrap_or(0),
        last_status: record.last_status.and_then(|status| u16::try_from(status).ok()),
        last_error: record.last_error,
        next_attempt_at: pending.then(|| format_ms(record.next_attempt_at)),
        created_at: format_ms(record.created_at),
    }
}

/// Parses a webhook's event list: at least one known type, each once.
///
/// # Errors
///
/// `Invalid` for an empty list or an unknown name.
pub fn parse_events(names: &[String]) -> Result<EventTypes, ServiceError> {
    if names.is_empty() {
        return Err(ServiceError::Invalid("events must list at least one event type".into()));
    }
    let mut events = Vec::with_capacity(names.len());
    for name in names {
        let event = EventType::parse(name).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|event| event.as_str()).collect();
            ServiceError::Invalid(format!("unknown event type {name:?}; known: {}", known.join(", ")))
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    events.sort_unstable();
    Ok(EventTypes(events))
}

impl Service {
    /// Registers a webhook of `app` posting `events` to `url`; the answer
    /// holds its secret, shown this once.
    ///
    /// # Errors
    ///
    /// `Invalid` for a URL that is not http(s), refused in `prod`, or an
    /// event list with an unknown type; `QuotaExceeded` over the app's
    /// `webhooks_per_app`.
    pub async fn create_webhook(
        &self,
        app: &AppRecord,
        url: &str,
        events: &[String],
    ) -> Result<CreatedWebhook, ServiceError> {
        let destinations = &self.webhooks.destinations;
        let url = destinations.parse_url(url.trim()).map_err(|err| ServiceError::Invalid(err.to_string()))?;
        let events = parse_events(events)?;
        destinations.check(&url).await.map_err(|err| ServiceError::Invalid(err.to_string()))?;
        let secret = WebhookSecret::generate();
        let new = NewWebhook {
            app_id: app.id,
            public_id: secrets::webhook_id(),
            url: url.to_string(),
            events,
            secret,
            created_at: now_ms(),
        };
        let at_most = app.quotas.limit(Quota::WebhooksPerApp, &self.quotas);
        let record = self
            .store
            .create_webhook(new, at_most)
            .await
            .map_err(|err| quota_full(err, Quota::WebhooksPerApp, at_most))?;
        let secret = record.secret.clone();
        let Webhook { id, url, events, created_at } = webhook_view(record);
        Ok(CreatedWebhook { id, url, events, secret, created_at })
    }

    /// The app's webhooks, oldest first.
    ///
    /// # Errors
    ///
    /// Only store failures.
    pub async fn list_webhooks(&self, app: &AppRecord) -> Result<Vec<Webhook>, ServiceError> {
        Ok(self.store.list_webhooks(app.id).await?.into_iter().map(webhook_view).collect())
    }

    /// Deletes one of the app's webhooks with its pending deliveries.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such webhook.
    pub async fn delete_webhook(&self, app: &AppRecord, id: &str) -> Result<(), ServiceError> {
        if secrets::is_code_shaped(id) && self.store.delete_webhook(app.id, id).await? {
            Ok(())
        } else {
            Err(no_such_webhook())
        }
    }

    /// The webhook's most recent deliveries, newest first.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such webhook.
    pub async fn webhook_deliveries(&self, app: &AppRecord, id: &str) -> Result<Vec<Delivery>, ServiceError> {
        let webhook = self.find_webhook(app, id).await?;
        let deliveries = self.store.webhook_deliveries(webhook.id, LISTED_DELIVERIES).await?;
        Ok(deliveries.into_iter().map(delivery_view).collect())
    }

    /// Sends a delivery again now ("send again"), with a new retry period.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such webhook or it no such delivery.
    pub async fn redeliver(&self, app: &AppRecord, id: &str, delivery_id: u64) -> Result<(), ServiceError> {
        let webhook = self.find_webhook(app, id).await?;
        let delivery_id = i64::try_from(delivery_id).map_err(|_| no_such_delivery())?;
        if !self.store.redeliver(webhook.id, delivery_id, now_ms()).await? {
            return Err(no_such_delivery());
        }
        self.webhooks.wake.now();
        Ok(())
    }
}

impl Service {
    /// One of the app's webhooks by public id. An id that cannot be one
    /// this server hands out (a NUL byte, which PostgreSQL refuses in text,
    /// would be a 500) is not looked up.
    async fn find_webhook(&self, app: &AppRecord, id: &str) -> Result<WebhookRecord, ServiceError> {
        if !secrets::is_code_shaped(id) {
            return Err(no_such_webhook());
        }
        self.store.webhook(app.id, id).await?.ok_or_else(no_such_webhook)
    }

    /// Webhooks of every app with failed or retrying deliveries, most
    /// failures first, for the admin area.
    ///
    /// # Errors
    ///
    /// Only store failures.
    pub async fn failing_webhooks(&self, limit: u64) -> Result<Vec<FailingWebhook>, ServiceError> {
        Ok(self.store.failing_webhooks(limit).await?)
    }
}

fn no_such_webhook() -> ServiceError {
    ServiceError::NotFound("this app has no webhook with that id".into())
}

fn no_such_delivery() -> ServiceError {
    ServiceError::NotFound("this webhook has no delivery with that id".into())
}
