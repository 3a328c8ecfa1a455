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
//! - this module: the trait, [`History`], [`Durability`] and the errors;
//!   the messages and room events it carries are in [`crate::message`].
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

use crate::hub::Occupancy;
use crate::message::{Draft, NonceKey, Published, Receipt, RoomEvent};
use crate::presence::{MemberCard, MemberChange, Roll, Signal, Swept, Transition};
use crate::quotas::SocketOwner;
use crate::store::StoreError;

/// One node's live connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConnections {
    /// The node's id (`this node` with the in-process broker).
    pub node: String,
    /// Its live WebSocket connections.
    pub connections: u64,
}

/// The room a broker call is about. The name goes into every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRef {
    /// Row id of the room.
    pub id: i64,
    /// Row id of the room's app, whose usage its messages count in.
    pub app_id: i64,
    /// The room's name, copied into every message.
    pub name: String,
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
    /// The draft's nonce was published already within the window: nothing
    /// new was published; this is the first publish's receipt.
    #[error("published already under this nonce")]
    Repeated(Receipt),
}

impl BrokerError {
    /// The same failure for another message it stopped (the store's and
    /// JSON errors, which cannot be copied, as their text).
    pub(crate) fn again(&self) -> Self {
        match self {
            Self::ShuttingDown => Self::ShuttingDown,
            Self::RoomGone => Self::RoomGone,
            Self::StoreTimeout => Self::StoreTimeout,
            Self::Unavailable(reason) => Self::Unavailable(reason.clone()),
            Self::Repeated(first) => Self::Repeated(first.clone()),
            Self::Store(_) | Self::CorruptHistory(_) => Self::Unavailable(self.to_string()),
        }
    }
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

    /// Publishes a connection's messages that arrived together, in order,
    /// as [`Durability::Delivered`] publishes one after the other would:
    /// one result per draft, in order. A broker that pays a round trip per
    /// publish (Redis) sends them in one.
    async fn publish_all(&self, room: &RoomRef, drafts: Vec<Draft>) -> Vec<Result<Arc<Published>, BrokerError>> {
        let mut results = Vec::with_capacity(drafts.len());
        for draft in drafts {
            results.push(self.publish(room, draft, Durability::Delivered).await);
        }
        results
    }

    /// The receipt of the message published in `room` under `nonce`
    /// within the nonce window, if any: how a repeat is answered when it
    /// never reaches a publish (its endpoint's budget is spent by then).
    async fn published_under(&self, room: &RoomRef, nonce: &NonceKey) -> Result<Option<Receipt>, BrokerError>;

    /// Returns once every message this node published before the call is
    /// stored: what an acknowledged send waits for before its ack, so that
    /// even a crash right after it cannot lose the message or its nonce.
    ///
    /// # Errors
    ///
    /// [`BrokerError::StoreTimeout`] when the database does not take them
    /// in time (they stay queued).
    async fn stored(&self) -> Result<(), BrokerError>;

    /// Retained messages with `seq > after_seq`, oldest first, at most
    /// `limit` (0 gives just the bounds).
    async fn history(&self, room: &RoomRef, after_seq: u64, limit: usize) -> Result<History, BrokerError>;

    /// Makes sure this node receives the room's messages from now on.
    /// A joining connection calls it after joining the hub and before
    /// reading history, so nothing published in between is missed.
    async fn listen(&self, room_id: i64) -> Result<(), BrokerError>;

    /// Open connections in each room, over every node, in the order asked.
    async fn online(&self, room_ids: &[i64]) -> Result<Vec<u64>, BrokerError>;

    /// Live connections of each endpoint, over every node, in the order
    /// asked.
    async fn endpoints_online(&self, endpoint_ids: &[i64]) -> Result<Vec<u64>, BrokerError>;

    /// Marks the room's retained messages of `seqs` redacted at `at_ms`,
    /// in its history here and in the store; the seqs it redacted (those
    /// retained and not redacted already), in the order given.
    async fn redact(&self, room: &RoomRef, seqs: &[u64], at_ms: i64) -> Result<Vec<u64>, BrokerError>;

    /// The connections of `owner` (its app, endpoint and address, in that
    /// order) on the other nodes, for the socket quotas.
    async fn sockets_elsewhere(&self, owner: &SocketOwner) -> Result<[u64; 3], BrokerError>;

    /// The app's live connections over every node.
    async fn app_connections(&self, app_id: i64) -> Result<u64, BrokerError>;

    /// Each node's live connections, this node's first, for the admin area.
    async fn connections_by_node(&self) -> Result<Vec<NodeConnections>, BrokerError>;

    /// Closes the connections `event` ends, on this node at once and on
    /// every other node as soon as it hears of it.
    async fn announce(&self, event: RoomEvent);

    /// Records a connection arriving in or departing from a presence room,
    /// over every node, and sends the `join` it causes to every node with a
    /// connection in the room. Called in the order transitions happen on
    /// this node (see [`crate::presence`]); the join, if it caused one.
    async fn presence(&self, transition: &Transition) -> Result<Option<MemberChange>, BrokerError>;

    /// Sends the `leave` of every endpoint whose leave time is `now_ms` or
    /// earlier, once over every node, whichever node asks; the leaves this
    /// call sent, and the rooms it found vacated.
    async fn expire_leaves(&self, now_ms: i64) -> Result<Swept, BrokerError>;
    /// Records a room's first connection on this node or its last one
    /// leaving; whether the room is now occupied (or vacated) over every
    /// node, which it tells once.
    async fn occupancy(&self, change: Occupancy) -> Result<bool, BrokerError>;

    /// A presence room's members over every node, with the change counter
    /// they reflect.
    async fn members(&self, room_id: i64) -> Result<Roll, BrokerError>;

    /// Shows `card` as its endpoint's member of a presence room from now
    /// on (the app changed its meta), over every node.
    async fn update_member(&self, room_id: i64, card: &MemberCard) -> Result<(), BrokerError>;

    /// Hands a signal to every other connection of its room, on every node.
    async fn signal(&self, signal: Signal) -> Result<(), BrokerError>;

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
