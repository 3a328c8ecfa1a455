//! How a message, a presence change and a signal travel through Redis.
//!
//! The publishing node encodes everything it knows before the seq exists
//! (id, room, sender, payload) as one JSON body. The publish script adds the
//! seq and the time and stores `(seq, ms, body)` in the room's stream and
//! publishes `"SEQ MS BODY"` on the room's channel; every node listening
//! turns that back into the same [`Published`] message and frame.
//!
//! The same channel carries the room's presence changes as
//! `"P VERSION FRAME"` (published by the presence scripts) and its signals
//! as `"S NODE FRAME"` (`NODE`: the sending node, which has delivered it to
//! its own connections already); both frames are sent to clients as they
//! are.
//!
//! The control channel every node hears carries [`RoomEvent`]s as
//! `"NODE EVENT"` (`EVENT` its JSON), so the announcing node, which applied
//! it already, skips its own.

use bytes::Bytes;

use crate::message::{Order, Outgoing, Published, RoomEvent, Unsequenced};

/// What a room channel carries.
#[derive(Debug)]
pub(super) enum Announcement {
    /// A message, with its seq.
    Message(Published),
    /// A join or leave of a presence room ([`Order::Version`]).
    Presence(Outgoing),
    /// A signal sent through `node`.
    Signal {
        /// The sending node's id.
        node: String,
        /// The signal frame.
        frame: Bytes,
    },
}

/// The channel payload of a signal sent through `node`.
pub(super) fn encode_signal(node: &str, frame: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(node.len() + frame.len() + 3);
    payload.extend_from_slice(b"S ");
    payload.extend_from_slice(node.as_bytes());
    payload.push(b' ');
    payload.extend_from_slice(frame);
    payload
}

/// The control channel's payload of `event`, announced by `node`.
pub(super) fn encode_event(node: &str, event: &RoomEvent) -> String {
    format!("{node} {}", serde_json::to_string(event).expect("an event always serializes"))
}

/// Parses a control channel's payload: the announcing node and the event.
///
/// # Errors
///
/// A payload not of the form `"NODE EVENT"`.
pub(super) fn decode_event(payload: &[u8]) -> Result<(String, RoomEvent), String> {
    let (node, event) = split_word(payload).ok_or("no event")?;
    let node = std::str::from_utf8(node).map_err(|_| "bad node id")?.to_owned();
    let event = serde_json::from_slice(event).map_err(|err| err.to_string())?;
    Ok((node, event))
}

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

/// Parses a room channel's payload.
///
/// # Errors
///
/// A payload in none of the forms of the module docs.
pub(super) fn decode_announcement(room_id: i64, payload: &[u8]) -> Result<Announcement, String> {
    if let Some(rest) = payload.strip_prefix(b"P ") {
        let (version, frame) = split_word(rest).ok_or("no presence frame")?;
        let version = std::str::from_utf8(version).ok().and_then(|text| text.parse().ok()).ok_or("bad version")?;
        let frame = Bytes::copy_from_slice(frame);
        return Ok(Announcement::Presence(Outgoing { frame, order: Order::Version(version) }));
    }
    if let Some(rest) = payload.strip_prefix(b"S ") {
        let (node, frame) = split_word(rest).ok_or("no signal frame")?;
        let node = std::str::from_utf8(node).map_err(|_| "bad node id")?.to_owned();
        return Ok(Announcement::Signal { node, frame: Bytes::copy_from_slice(frame) });
    }
    decode_message(room_id, payload).map(Announcement::Message)
}

/// `(first word, the rest)` of `text`, split at its first space.
fn split_word(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = text.iter().position(|byte| *byte == b' ')?;
    Some((&text[..space], &text[space + 1..]))
}

/// Parses a message's payload `"SEQ MS BODY"`.
fn decode_message(room_id: i64, payload: &[u8]) -> Result<Published, String> {
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
        Unsequenced::new(
            "lobby",
            Draft { sender: Sender { id: "ep_1".into(), meta, parent: None }, payload, nonce: None },
        )
    }

    #[test]
    fn an_announcement_reads_back_as_the_message_with_its_payload_untouched() {
        let payload = format!("7 1764500000123 {}", encode(&body()));
        let Announcement::Message(published) = decode_announcement(3, payload.as_bytes()).unwrap() else {
            panic!("a message payload reads back as a message")
        };
        assert_eq!(published.room_id, 3);
        assert_eq!(published.seq(), 7);
        assert_eq!(published.message.timestamp, "2025-11-30T10:53:20.123Z");
        assert_eq!(published.message.message.get(), r#"{"x": 1}"#, "byte-exact payload");
        assert_eq!(published.message.sender.meta.get(), r#"{"name":"Ann"}"#);
    }

    #[test]
    fn presence_changes_and_signals_read_back_with_their_frames_untouched() {
        let frame = r#"{"type":"join","room":"lobby","member":{"id":"e","meta":{},"connections":1}}"#;
        let Announcement::Presence(change) = decode_announcement(3, format!("P 12 {frame}").as_bytes()).unwrap() else {
            panic!("a presence payload reads back as a presence change")
        };
        assert_eq!((change.order, &change.frame[..]), (Order::Version(12), frame.as_bytes()));
        let signal = br#"{"type":"signal","signal":"a b"}"#;
        let Announcement::Signal { node, frame } = decode_announcement(3, &encode_signal("n1", signal)).unwrap() else {
            panic!("a signal payload reads back as a signal")
        };
        assert_eq!((node.as_str(), &frame[..]), ("n1", &signal[..]));
    }

    #[test]
    fn malformed_announcements_are_refused() {
        for bad in ["", "7", "7 12", "x 12 {}", "7 12 not-json", "-1 12 {}", "P x {}", "P 12", "S n1"] {
            assert!(decode_announcement(1, bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_event_reads_back_with_the_node_that_announced_it() {
        let event = RoomEvent::Redacted { room_id: 3, room: "lobby".into(), messages: vec![(7, "m7".into())] };
        let text = encode_event("node1", &event);
        assert_eq!(text, r#"node1 {"event":"redacted","room_id":3,"room":"lobby","messages":[[7,"m7"]]}"#);
        let (node, read) = decode_event(text.as_bytes()).unwrap();
        assert_eq!(node, "node1");
        assert!(matches!(read, RoomEvent::Redacted { room_id: 3, ref messages, .. } if messages[0].0 == 7));
        assert!(decode_event(b"no-event-here").is_err());
    }
}
