//! What the portal's page of an app shows of its rooms: each room with its
//! endpoints (as the API shows them: live connections, messages sent,
//! limits), its online count and its newest messages.
//!
//! The page lists every room at once, so this reads them in a fixed number
//! of calls whatever the number of rooms: the rooms, then the endpoints of
//! all of them, then the online counts of all rooms and of all endpoints.
//! Only the newest
//! messages are asked per room, because the [`Broker`](crate::broker::Broker)
//! keeps history per room: the local broker answers from memory (a room's log
//! is read from the store once, the first time this node touches it), and
//! the rooms are asked concurrently so the page does not wait for them one
//! after another.

use std::collections::HashMap;

use comms_protocol::{Endpoint, Message};
use futures_util::future::try_join_all;

use crate::broker::RoomRef;
use crate::config::WsBase;
use crate::error::ServiceError;
use crate::service::Service;
use crate::store::{AppRecord, RoomRecord};

/// A room as the portal shows it.
#[derive(Debug, Clone)]
pub struct RoomOverview {
    /// The room.
    pub room: RoomRecord,
    /// Connections open now, over every node.
    pub online: u64,
    /// Its endpoints, oldest first, as the API shows them.
    pub endpoints: Vec<Endpoint>,
    /// Its newest retained messages, oldest first.
    pub latest: Vec<Message>,
}

/// The app's rooms, oldest first, each with its endpoints (their `ws_url`s
/// starting with `ws_base`), online count and newest `latest` messages.
///
/// # Errors
///
/// Store and broker failures.
pub async fn rooms_overview(
    service: &Service,
    app: &AppRecord,
    ws_base: &WsBase,
    latest: usize,
) -> Result<Vec<RoomOverview>, ServiceError> {
    let rooms = service.store.list_rooms(app.id).await?;
    let records = service.store.list_app_endpoints(app.id).await?;
    let room_ids: Vec<i64> = records.iter().map(|record| record.room_id).collect();
    let views = service.endpoint_views(records, ws_base).await?;
    let mut endpoints: HashMap<i64, Vec<Endpoint>> = HashMap::new();
    for (room_id, endpoint) in room_ids.into_iter().zip(views) {
        endpoints.entry(room_id).or_default().push(endpoint);
    }
    let ids: Vec<i64> = rooms.iter().map(|room| room.id).collect();
    let online = service.broker.online(&ids).await?;
    let newest = try_join_all(rooms.iter().map(|room| newest_messages(service, room, latest))).await?;
    Ok(rooms
        .into_iter()
        .zip(online)
        .zip(newest)
        .map(|((room, online), latest)| RoomOverview {
            endpoints: endpoints.remove(&room.id).unwrap_or_default(),
            room,
            online,
            latest,
        })
        .collect())
}

/// The newest `count` retained messages of `room`, oldest first.
async fn newest_messages(service: &Service, room: &RoomRecord, count: usize) -> Result<Vec<Message>, ServiceError> {
    let room = RoomRef { id: room.id, app_id: room.app_id, name: room.name.clone() };
    let last_seq = service.broker.history(&room, u64::MAX, 0).await?.last_seq;
    let history = service.broker.history(&room, last_seq.saturating_sub(count as u64), count).await?;
    Ok(history.messages.iter().map(|published| published.message.clone()).collect())
}
