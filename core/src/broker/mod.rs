//! The broker: assigns each room's seq, keeps its history and hands every
//! published message to the hubs of all nodes that have the room open.
//!
//! It sits behind the [`Broker`] trait so a multi-node implementation (Redis)
//! can replace the in-process one without touching the WebSocket or REST
//! code. Whatever the implementation, a message is serialized into its
//! WebSocket frame exactly once, at publish time; every recipient gets the
//! same shared bytes.
//!
//! # Layout
//!
//! - this module: the trait, the [`Published`] message and the
//!   [`RoomEvent`]s every node must hear of.
//! - [`local`]: the in-process broker (one node), history in memory and in
//!   the store; `room_log` holds one room's in-memory log.
//! - [`redis`]: the Redis broker (several nodes acting as one server).
//! - [`writer`]: the batching history writer both persist with.

pub mod local;
pub mod redis;
mod room_log;
pub mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use comms_protocol::ws::ServerFrame;
use comms_protocol::{Message, Sender};
use serde_json::value::RawValue;

use crate::hub::{CloseReason, Hub};
use crate::store::StoreError;

/// The room a broker call is about. The name goes into every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRef {
    /// Row id of the room.
    pub id: i64,
    /// The room's name, copied into every message.
    pub name: String,
}

/// What a publisher hands in; the broker adds id, seq and timestamp.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Who sent it; stamped by the server, never taken from the client.
    pub sender: Sender,
    /// The payload exactly as the sender gave it.
    pub payload: Box<RawValue>,
}

/// A message with its seq assigned and its frame serialized once.
#[derive(Debug)]
pub struct Published {
    /// Row id of the room the message belongs to.
    pub room_id: i64,
    /// Milliseconds since the epoch; `message.timestamp` is its text form.
    pub created_ms: i64,
    /// The message as the API shows it.
    pub message: Message,
    /// `{"type": "message", …}` as sent on every WebSocket of the room.
    pub frame: Bytes,
}

impl Published {
    /// Serializes the frame of a message. Called once per message.
    pub fn new(room_id: i64, created_ms: i64, message: Message) -> Self {
        let frame = ServerFrame::Message(message);
        let bytes = serde_json::to_vec(&frame).expect("a message always serializes");
        let ServerFrame::Message(message) = frame else { unreachable!("built as a message frame above") };
        Self { room_id, created_ms, message, frame: Bytes::from(bytes) }
    }

    /// The message's seq.
    pub fn seq(&self) -> u64 {
        self.message.seq
    }
}

/// A slice of a room's retained history.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Oldest retained seq; `last_seq + 1` when none is retained.
    pub first_seq: u64,
    /// Newest seq of the room; 0 when nothing was ever published.
    pub last_seq: u64,
    /// Retained messages with `seq > after_seq`, oldest first, at most `limit`.
    pub messages: Vec<Arc<Published>>,
}

/// How long `publish` waits before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Return once delivered to live connections; history is written in the
    /// next batch. For WebSocket publishes, whose sender sees its own echo.
    Delivered,
    /// Return only once history holding the message is committed. For REST
    /// publishes, whose `201` promises the message is stored.
    Stored,
}

/// Why a broker call failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored message is not valid JSON.
    #[error("stored message is not valid JSON: {0}")]
    CorruptHistory(#[from] serde_json::Error),
    /// The broker is shutting down and takes no more messages.
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// The room was deleted.
    #[error("the room does not exist")]
    RoomGone,
    /// Storing a message took longer than the publisher waits.
    #[error("storing the message took too long")]
    StoreTimeout,
    /// The broker's backing service (Redis) cannot be reached; the text
    /// says what failed.
    #[error("the message broker is unavailable: {0}")]
    Unavailable(String),
}

/// Lets publishes in until [`PublishGate::close`], which then waits for
/// the ones inside to finish, so a broker's final flush of history sees
/// every message that was handed a seq.
#[derive(Default)]
pub(crate) struct PublishGate {
    closed: AtomicBool,
    inside: tokio::sync::RwLock<()>,
}

impl PublishGate {
    /// Admits a publish for as long as the guard lives; `None` once closed.
    pub(crate) async fn enter(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        let inside = self.inside.read().await;
        (!self.closed.load(Ordering::Acquire)).then_some(inside)
    }

    /// Admits no more publishes and waits for those admitted to finish.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        drop(self.inside.write().await);
    }
}

/// A change that closes live connections, on whichever node they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RoomEvent {
    /// An endpoint was deleted: its connections close with 4001.
    EndpointDeleted {
        /// Row id of the endpoint's room.
        room_id: i64,
        /// Row id of the endpoint.
        endpoint_id: i64,
    },
    /// A room was deleted: its connections close with 4002.
    RoomDeleted {
        /// Row id of the room.
        room_id: i64,
    },
    /// The room's app stopped being approved: its connections close with
    /// 4003 (new ones are refused by the app check itself).
    AppStopped {
        /// Row id of the room.
        room_id: i64,
    },
}

impl RoomEvent {
    /// Closes this node's connections the event ends.
    pub fn apply(self, hub: &Hub) {
        match self {
            Self::EndpointDeleted { room_id, endpoint_id } => hub.close_endpoint(room_id, endpoint_id),
            Self::RoomDeleted { room_id } => hub.close_room(room_id),
            Self::AppStopped { room_id } => hub.close_room_connections(room_id, CloseReason::AppStopped),
        }
    }
}

/// Seq, history and delivery of messages. See the module docs.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Assigns the next seq of the room, retains the message and delivers it
    /// to every live connection of the room, in seq order.
    async fn publish(
        &self,
        room: &RoomRef,
        draft: Draft,
        durability: Durability,
    ) -> Result<Arc<Published>, BrokerError>;

    /// Retained messages with `seq > after_seq`, oldest first, at most
    /// `limit` (0 gives just the bounds).
    async fn history(&self, room: &RoomRef, after_seq: u64, limit: usize) -> Result<History, BrokerError>;

    /// Makes sure this node receives the room's messages from now on.
    /// A joining connection calls it after joining the hub and before
    /// reading history, so nothing published in between is missed.
    async fn listen(&self, room_id: i64) -> Result<(), BrokerError>;

    /// Open connections in each room, over every node, in the order asked.
    async fn online(&self, room_ids: &[i64]) -> Result<Vec<u64>, BrokerError>;

    /// Closes the connections `event` ends, on this node at once and on
    /// every other node as soon as it hears of it.
    async fn announce(&self, event: RoomEvent);

    /// Drops what the broker holds for a deleted room.
    async fn forget_room(&self, room_id: i64);

    /// Whether the broker can serve, for `/readyz`.
    async fn ready(&self) -> Result<(), BrokerError>;

    /// Stops taking messages and writes out everything pending.
    async fn shutdown(&self);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn closing_the_gate_waits_for_publishes_inside_and_refuses_new_ones() {
        let gate = Arc::new(PublishGate::default());
        let inside = gate.enter().await.expect("open at first");
        let closing = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.close().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!closing.is_finished(), "close waits for the publish inside");
        drop(inside);
        tokio::time::timeout(Duration::from_secs(5), closing).await.expect("then closes").unwrap();
        assert!(gate.enter().await.is_none(), "no publish after closing");
    }
}
