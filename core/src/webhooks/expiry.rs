//! `endpoint.expired`: sent once per expiry, over every node.
//!
//! A node closes the sockets of an expired endpoint by itself (the hub's
//! sweep), but an endpoint may expire with no socket anywhere, and several
//! nodes may hold its sockets. So the event comes from the store instead:
//! every node looks for endpoints past their `expires_at` whose expiry is
//! not announced yet, and marks each announced in the transaction that
//! writes its event; of several nodes, the one whose mark lands sends it.
//! A new `expires_at` (a PATCH) clears the mark.

use std::time::Duration;

use comms_protocol::webhook::EventType;

use super::event;
use crate::service::Service;
use crate::time::now_ms;

/// How often expiries are looked for: an event is written at most this
/// late.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Expiries announced per look, at most (the next look takes the rest).
const PER_LOOK: u64 = 200;

/// Starts announcing expiries through `service` until aborted.
pub fn spawn_announcer(service: Service) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = announce_due(&service).await {
                tracing::warn!(error = %err, "could not announce expired endpoints; trying again");
            }
        }
    })
}

/// Announces the expiries due now.
async fn announce_due(service: &Service) -> Result<(), crate::error::ServiceError> {
    let due = service.store.unannounced_expiries(now_ms(), PER_LOOK).await?;
    let mut any = false;
    for (app_id, record) in due {
        let (endpoint_id, expires_at, room) = (record.id, record.expires_at.unwrap_or(0), record.room_name.clone());
        let view = service.endpoint_view(record, &service.webhooks.ws_base).await?;
        let events = [event::endpoint(EventType::EndpointExpired, &room, &view)];
        any |= service.store.announce_expiry(endpoint_id, expires_at, app_id, &events).await?;
    }
    if any {
        service.webhooks.wake.now();
    }
    Ok(())
}
