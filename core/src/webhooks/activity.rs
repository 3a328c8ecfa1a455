//! Events of what connections do, which no transaction carries: members
//! joining and leaving presence rooms, rooms becoming occupied and vacated.
//!
//! Joins and leaves come from the presence tracker, which hears of each
//! once over every node (the broker's roster decides). Occupancy starts in
//! the hub, which knows a room's first and last connection on this node;
//! the broker then tells whether that occupied or vacated the room over
//! every node (with Redis, a set of nodes per room), and the tracker's
//! sweep reports rooms vacated by counting a dead node out. One task per
//! node turns all of it into events and writes them to the outbox,
//! retrying while the store is down.

use std::time::Duration;

use comms_protocol::webhook::EventType;
use tokio::sync::mpsc;

use super::event;
use crate::hub::Occupancy;
use crate::presence::{MemberChange, Observed};
use crate::service::Service;
use crate::store::NewEvent;

/// Longest pause between retries of a write the store refused.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Starts the task writing the events of what the tracker `observed` and
/// of this node's `occupancy` changes through `service`'s store; it ends
/// when both senders are gone.
pub fn spawn_recorder(
    service: Service,
    mut observed: mpsc::UnboundedReceiver<Observed>,
    mut occupancy: mpsc::UnboundedReceiver<Occupancy>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let found = tokio::select! {
                Some(seen) = observed.recv() => match seen {
                    Observed::Member(change) => Some(member_event(change)),
                    Observed::Vacated(room_id) => occupancy_event(&service, Occupancy::Vacated(room_id)).await,
                },
                Some(change) = occupancy.recv() => match service.broker.occupancy(change).await {
                    Ok(true) => occupancy_event(&service, change).await,
                    Ok(false) => None,
                    Err(err) => {
                        tracing::warn!(error = %err, ?change, "could not record a room's occupancy; no event for it");
                        None
                    }
                },
                else => return,
            };
            let Some((room_id, events)) = found else { continue };
            let mut pause = Duration::from_millis(100);
            while let Err(err) = service.store.record_room_events(room_id, &events).await {
                tracing::warn!(error = %err, retry_in = ?pause, "could not record a webhook event; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
            service.webhooks.wake.now();
        }
    })
}

fn member_event(change: MemberChange) -> (i64, Vec<NewEvent>) {
    let event_type = if change.joined { EventType::MemberJoined } else { EventType::MemberLeft };
    (change.room_id, vec![event::member(event_type, &change.room, &change.member)])
}

/// The event of an occupancy change; `None` for a room deleted meanwhile
/// (its `room.deleted` says it all) or one the store cannot read now.
async fn occupancy_event(service: &Service, change: Occupancy) -> Option<(i64, Vec<NewEvent>)> {
    let (room_id, event_type) = match change {
        Occupancy::Occupied(room_id) => (room_id, EventType::RoomOccupied),
        Occupancy::Vacated(room_id) => (room_id, EventType::RoomVacated),
    };
    let room = match service.store.room_by_id(room_id).await {
        Ok(room) => room?,
        Err(err) => {
            tracing::warn!(error = %err, room_id, "could not read a room for its occupancy event");
            return None;
        }
    };
    let online = service.broker.online(&[room_id]).await.ok()?.first().copied().unwrap_or(0);
    let view = crate::service::room_view(room, online);
    Some((room_id, vec![event::room(event_type, &view)]))
}
