//! A message as the system knows it, from what a publisher hands in to the
//! frame every socket gets and the row the store keeps, and the room events
//! every node must hear.
//!
//! A message moves through three forms:
//!
//! - [`Draft`]: what a publisher (an endpoint's socket, the app's backend)
//!   hands in: the stamped sender and the payload.
//! - [`Unsequenced`]: the draft with its id and room, everything known
//!   before a broker gives it a seq and a time. The Redis broker stores and
//!   publishes exactly this body.
//! - [`Published`]: the message with its seq and time, and its WebSocket
//!   frame serialized once for every recipient ([`Outgoing`], the form every
//!   frame in a room's log takes). [`Published::to_stored`] and
//!   [`Published::from_stored`] convert to and from the store's row.
//!
//! [`Unsequenced::sequence`] is the one place a [`Message`] is assembled,
//! whichever broker published it and whether it is fresh or restored.

use std::sync::Arc;

use bytes::Bytes;
use comms_protocol::ws::{Nonce, ServerFrame};
use comms_protocol::{Message, Sender};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::live_endpoint::EndpointState;
use crate::store::StoredMessage;
use crate::time::format_ms;

/// What a publisher hands in; the broker adds id, seq and timestamp.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Who sent it; stamped by the server, never taken from the client.
    pub sender: Sender,
    /// The payload exactly as the sender gave it.
    pub payload: Box<RawValue>,
    /// The sender's nonce for it, if any: published under the same key
    /// within the window, it is not published again.
    pub nonce: Option<NonceKey>,
}

/// What a published message got: the `ack` frame's `id` and `seq`, and
/// what a repeat of its nonce is answered with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The message's id.
    pub id: String,
    /// Its seq in the room.
    pub seq: u64,
}

impl Receipt {
    /// The receipt of a published message.
    pub fn of(published: &Published) -> Self {
        Self { id: published.message.id.clone(), seq: published.seq() }
    }
}

/// A client's nonce with whose it is: the key a repeated message is
/// recognised by (see `docs/protocol.md#acknowledged-sends`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NonceKey(String);

impl NonceKey {
    /// An endpoint's nonce: its connections share it.
    pub fn of_endpoint(endpoint_id: i64, nonce: &Nonce) -> Self {
        Self(format!("e:{endpoint_id}:{}", nonce.as_str()))
    }

    /// An app's `Idempotency-Key` on the REST publish.
    pub fn of_app(app_id: i64, key: &Nonce) -> Self {
        Self(format!("a:{app_id}:{}", key.as_str()))
    }

    /// The key as text (the end of a Redis key, a stored message's `nonce`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key as [`NonceKey::as_str`] gave it, read back from the store.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

/// A message with its id and room but no seq or time yet.
///
/// Its JSON form (`{"id", "room", "sender", "message"}`) is what the Redis
/// broker keeps in a room's stream and publishes to other nodes; see
/// `broker::redis::wire`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Unsequenced {
    id: String,
    room: String,
    sender: Sender,
    message: Box<RawValue>,
}

impl Unsequenced {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A fresh message of `room` with a new time-ordered id.
    pub fn new(room: &str, draft: Draft) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            room: room.to_owned(),
            sender: draft.sender,
            message: draft.payload,
        }
    }

    /// A stored message of `room` without its seq and time.
    ///
    /// # Errors
    ///
    /// A stored meta or payload that is not valid JSON.
    pub fn from_stored(room: &str, stored: &StoredMessage) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: stored.id.clone(),
            room: room.to_owned(),
            sender: Sender {
                id: stored.sender_id.clone(),
                meta: RawValue::from_string(stored.sender_meta.clone())?,
                parent: stored.sender_parent.clone(),
            },
            message: RawValue::from_string(stored.payload.clone())?,
        })
    }

    /// The message once a broker gave it `seq` and `created_ms`, with its
    /// frame serialized.
    pub fn sequence(self, room_id: i64, seq: u64, created_ms: i64) -> Published {
        let message = Message {
            id: self.id,
            seq,
            room: self.room,
            timestamp: format_ms(created_ms),
            sender: self.sender,
            message: self.message,
            redacted_at: None,
        };
        Published::new(room_id, created_ms, None, message)
    }
}

/// A frame every connection of a room gets (a message, a join or leave, a
/// signal), serialized once and shared by all of them: what a room's log
/// (see [`crate::hub`]) carries, and what a connection reads from it.
#[derive(Debug)]
pub struct Outgoing {
    /// The frame's JSON text.
    pub frame: Bytes,
    /// Where it stands among the room's frames.
    pub order: Order,
}

/// What tells a joining connection whether its welcome covers a frame
/// already queued for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// A message, by its seq: covered by the welcome's `last_seq`.
    Seq(u64),
    /// A join or leave, by its room's presence version: covered by the
    /// welcome's `members` (see [`crate::presence`]).
    Version(u64),
    /// A signal: never covered, never replayed.
    Ephemeral,
}

impl Outgoing {
    /// Serializes `frame`, placed at `order`.
    pub fn new(frame: &ServerFrame, order: Order) -> Self {
        let frame = serde_json::to_vec(frame).expect("server frames always serialize");
        Self { frame: Bytes::from(frame), order }
    }

    /// Whether a welcome reflecting messages up to `seq` and presence
    /// changes up to `version` already covers this frame.
    pub fn covered(&self, seq: u64, version: u64) -> bool {
        match self.order {
            Order::Seq(own) => own <= seq,
            Order::Version(own) => own <= version,
            Order::Ephemeral => false,
        }
    }
}

/// A message with its seq assigned and its frame serialized once.
#[derive(Debug)]
pub struct Published {
    /// Row id of the room the message belongs to.
    pub room_id: i64,
    /// Milliseconds since the epoch; `message.timestamp` is its text form.
    pub created_ms: i64,
    /// When it was redacted, in milliseconds since the epoch;
    /// `message.redacted_at` is its text form.
    pub redacted_ms: Option<i64>,
    /// The message as the API shows it.
    pub message: Message,
    /// `{"type": "message", …}` as sent on every WebSocket of the room.
    pub outgoing: Arc<Outgoing>,
}

impl Published {
    /// Serializes the frame of a message. Called once per message.
    fn new(room_id: i64, created_ms: i64, redacted_ms: Option<i64>, message: Message) -> Self {
        let seq = message.seq;
        let frame = ServerFrame::Message(message);
        let outgoing = Arc::new(Outgoing::new(&frame, Order::Seq(seq)));
        let ServerFrame::Message(message) = frame else { unreachable!("built as a message frame above") };
        Self { room_id, created_ms, redacted_ms, message, outgoing }
    }

    /// The message as it is served once redacted at `at_ms`: the same id,
    /// seq, time and sender, a `null` payload and `redacted_at`.
    pub fn redacted(&self, at_ms: i64) -> Self {
        let message = Message {
            message: RawValue::from_string("null".into()).expect("null is JSON"),
            redacted_at: Some(format_ms(at_ms)),
            ..self.message.clone()
        };
        Self::new(self.room_id, self.created_ms, Some(at_ms), message)
    }

    /// Whether the message was redacted.
    pub fn is_redacted(&self) -> bool {
        self.redacted_ms.is_some()
    }

    /// `{"type": "message", …}` as sent on every WebSocket of the room.
    pub fn frame(&self) -> &Bytes {
        &self.outgoing.frame
    }

    /// A stored message of the room `room_id` named `room`, as published.
    ///
    /// # Errors
    ///
    /// A stored meta or payload that is not valid JSON.
    pub fn from_stored(room_id: i64, room: &str, stored: &StoredMessage) -> Result<Self, serde_json::Error> {
        let published = Unsequenced::from_stored(room, stored)?.sequence(room_id, stored.seq, stored.created_at);
        Ok(match stored.redacted_at {
            Some(at_ms) => published.redacted(at_ms),
            None => published,
        })
    }

    /// The row the store keeps of this message.
    pub fn to_stored(&self) -> StoredMessage {
        let message = &self.message;
        StoredMessage {
            room_id: self.room_id,
            seq: message.seq,
            id: message.id.clone(),
            created_at: self.created_ms,
            sender_id: message.sender.id.clone(),
            sender_meta: message.sender.meta.get().to_owned(),
            payload: message.message.get().to_owned(),
            sender_parent: message.sender.parent.clone(),
            redacted_at: self.redacted_ms,
            nonce: None,
        }
    }

    /// The message's seq.
    pub fn seq(&self) -> u64 {
        self.message.seq
    }
}

/// A change to live connections, on whichever node they are: closing
/// them, changing their endpoint, redacting messages they were sent.
/// Brokers carry it to every node; each applies it to its hub
/// ([`Hub::apply`](crate::hub::Hub::apply)).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The app changed an endpoint: its connections take the new state
    /// and are sent an `endpoint` frame.
    EndpointChanged {
        /// Row id of the endpoint's room.
        room_id: i64,
        /// Row id of the endpoint.
        endpoint_id: i64,
        /// What it is now.
        state: EndpointState,
    },
    /// Messages of a room were redacted: its connections are sent a
    /// `redaction` frame for each.
    Redacted {
        /// Row id of the room.
        room_id: i64,
        /// Name of the room.
        room: String,
        /// The redacted messages' seqs and ids.
        messages: Vec<(u64, String)>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredMessage {
        StoredMessage {
            room_id: 3,
            seq: 7,
            id: "m1".into(),
            created_at: 1_764_500_000_123,
            sender_id: "ep_1".into(),
            sender_meta: r#"{"name":"Ann"}"#.into(),
            payload: r#"{"x": 1}"#.into(),
            sender_parent: Some("ep_0".into()),
            redacted_at: None,
            nonce: None,
        }
    }

    #[test]
    fn a_stored_message_round_trips_byte_exact() {
        let published = Published::from_stored(3, "lobby", &stored()).unwrap();
        assert_eq!(published.message.timestamp, "2025-11-30T10:53:20.123Z");
        assert_eq!(published.to_stored(), stored());
        let frame: serde_json::Value = serde_json::from_slice(published.frame()).unwrap();
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["room"], "lobby");
        assert_eq!(frame["message"]["x"], 1);
    }

    #[test]
    fn a_redacted_message_keeps_all_but_its_payload() {
        let published = Published::from_stored(3, "lobby", &stored()).unwrap().redacted(1_764_500_001_000);
        let frame: serde_json::Value = serde_json::from_slice(published.frame()).unwrap();
        assert_eq!(frame["message"], serde_json::Value::Null);
        assert_eq!(frame["redacted_at"], "2025-11-30T10:53:21.000Z");
        assert_eq!((frame["seq"].as_u64(), frame["id"].as_str()), (Some(7), Some("m1")));
        assert_eq!(frame["sender"]["parent"], "ep_0");
        let stored = published.to_stored();
        assert_eq!((stored.payload.as_str(), stored.redacted_at), ("null", Some(1_764_500_001_000)));
        let restored = Published::from_stored(3, "lobby", &stored).unwrap();
        assert_eq!(restored.message.redacted_at.as_deref(), Some("2025-11-30T10:53:21.000Z"));
    }

    #[test]
    fn a_stored_message_with_broken_json_is_refused() {
        let broken = StoredMessage { payload: "{".into(), ..stored() };
        assert!(Published::from_stored(3, "lobby", &broken).is_err());
    }
}
