//! How a message travels through Redis.
//!
//! The publishing node encodes everything it knows before the seq exists
//! (id, room, sender, payload) as one JSON body. The publish script adds the
//! seq and the time and stores `(seq, ms, body)` in the room's stream and
//! publishes `"SEQ MS BODY"` on the room's channel; every node listening
//! turns that back into the same [`Published`] message and frame.

use comms_protocol::{Message, Sender};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::broker::Published;
use crate::store::StoredMessage;
use crate::time::format_ms;

/// A message without its seq and time.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Body {
    id: String,
    room: String,
    sender: Sender,
    message: Box<RawValue>,
}

impl Body {
    /// A new message's body.
    pub(super) fn new(id: String, room: String, sender: Sender, message: Box<RawValue>) -> Self {
        Self { id, room, sender, message }
    }

    /// The body of a message stored in the database, for restoring a room's
    /// stream after Redis lost it.
    ///
    /// # Errors
    ///
    /// A stored meta or payload that is not valid JSON.
    pub(super) fn from_stored(room: &str, stored: &StoredMessage) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: stored.id.clone(),
            room: room.to_owned(),
            sender: Sender { id: stored.sender_id.clone(), meta: RawValue::from_string(stored.sender_meta.clone())? },
            message: RawValue::from_string(stored.payload.clone())?,
        })
    }

    /// The JSON text stored and published.
    pub(super) fn encode(&self) -> String {
        serde_json::to_string(self).expect("a body always serializes")
    }

    /// Parses a stored or published body.
    ///
    /// # Errors
    ///
    /// Text that is not a body.
    pub(super) fn decode(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The message once the script gave it a seq and a time.
    pub(super) fn publish(self, room_id: i64, seq: u64, created_ms: i64) -> Published {
        let message = Message {
            id: self.id,
            seq,
            room: self.room,
            timestamp: format_ms(created_ms),
            sender: self.sender,
            message: self.message,
        };
        Published::new(room_id, created_ms, message)
    }
}

/// Parses a channel payload `"SEQ MS BODY"` into the message it carries.
///
/// # Errors
///
/// A payload that is not in that form.
pub(super) fn decode_announcement(room_id: i64, payload: &[u8]) -> Result<Published, String> {
    let mut parts = payload.splitn(3, |byte| *byte == b' ');
    let mut number = |what: &str| -> Result<i64, String> {
        let part = parts.next().ok_or_else(|| format!("no {what}"))?;
        std::str::from_utf8(part).ok().and_then(|text| text.parse().ok()).ok_or_else(|| format!("bad {what}"))
    };
    let seq = number("seq")?;
    let ms = number("time")?;
    let body = parts.next().ok_or("no body")?;
    let body = Body::decode(body).map_err(|err| err.to_string())?;
    let seq = u64::try_from(seq).map_err(|_| "negative seq".to_owned())?;
    Ok(body.publish(room_id, seq, ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Body {
        let meta = RawValue::from_string(r#"{"name":"Ann"}"#.into()).unwrap();
        let payload = RawValue::from_string(r#"{"x": 1}"#.into()).unwrap();
        Body::new("m1".into(), "lobby".into(), Sender { id: "ep_1".into(), meta }, payload)
    }

    #[test]
    fn an_announcement_reads_back_as_the_message_with_its_payload_untouched() {
        let payload = format!("7 1764500000123 {}", body().encode());
        let published = decode_announcement(3, payload.as_bytes()).unwrap();
        assert_eq!(published.room_id, 3);
        assert_eq!(published.seq(), 7);
        assert_eq!(published.message.timestamp, "2025-11-30T10:53:20.123Z");
        assert_eq!(published.message.message.get(), r#"{"x": 1}"#, "byte-exact payload");
        assert_eq!(published.message.sender.meta.get(), r#"{"name":"Ann"}"#);
    }

    #[test]
    fn malformed_announcements_are_refused() {
        for bad in ["", "7", "7 12", "x 12 {}", "7 12 not-json", "-1 12 {}"] {
            assert!(decode_announcement(1, bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
