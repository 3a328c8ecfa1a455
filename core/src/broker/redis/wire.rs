//! How a message travels through Redis.
//!
//! The publishing node encodes everything it knows before the seq exists
//! (id, room, sender, payload) as one JSON body. The publish script adds the
//! seq and the time and stores `(seq, ms, body)` in the room's stream and
//! publishes `"SEQ MS BODY"` on the room's channel; every node listening
//! turns that back into the same [`Published`] message and frame.

use crate::message::{Published, Unsequenced};

/// The JSON text stored in a room's stream and published.
pub(super) fn encode(body: &Unsequenced) -> String {
    serde_json::to_string(body).expect("a message body always serializes")
}

/// Parses a stored or published body.
///
/// # Errors
///
/// Text that is not a body.
pub(super) fn decode(text: &[u8]) -> Result<Unsequenced, serde_json::Error> {
    serde_json::from_slice(text)
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
    let body = decode(body).map_err(|err| err.to_string())?;
    let seq = u64::try_from(seq).map_err(|_| "negative seq".to_owned())?;
    Ok(body.sequence(room_id, seq, ms))
}

#[cfg(test)]
mod tests {
    use comms_protocol::Sender;
    use serde_json::value::RawValue;

    use super::*;
    use crate::message::Draft;

    fn body() -> Unsequenced {
        let meta = RawValue::from_string(r#"{"name":"Ann"}"#.into()).unwrap();
        let payload = RawValue::from_string(r#"{"x": 1}"#.into()).unwrap();
        Unsequenced::new("lobby", Draft { sender: Sender { id: "ep_1".into(), meta }, payload })
    }

    #[test]
    fn an_announcement_reads_back_as_the_message_with_its_payload_untouched() {
        let payload = format!("7 1764500000123 {}", encode(&body()));
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
