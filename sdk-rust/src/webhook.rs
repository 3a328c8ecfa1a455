//! [`verify_webhook`]: checks that a webhook delivery comes from comms and
//! reads its event.
//!
//! comms signs deliveries the Standard Webhooks way
//! (<https://www.standardwebhooks.com>): `webhook-signature` holds one or
//! more space-separated `v1,<base64>` entries, each an HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` keyed with the bytes of the
//! webhook's secret (`whsec_<base64>`); one matching entry is enough, which
//! lets a sender list a signature per key while it rotates keys.
//!
//! The signature is checked first, over the headers and the body exactly as
//! received, and everything after it reads authenticated input only: a
//! [`WebhookError::StaleTimestamp`] is a genuine delivery that is too old or
//! too new (a replay, or a clock far off), never a forgery.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::generated::{Endpoint, EventType, Member, Message, Room};

/// Prefix of every webhook secret.
const SECRET_PREFIX: &str = "whsec_";

/// Prefix of a signature entry of the only version comms sends.
const SIGNATURE_PREFIX: &str = "v1,";

/// How far `webhook-timestamp` may be from now, either way, when you have no
/// reason to choose otherwise: the Standard Webhooks libraries' five
/// minutes, wide enough for ordinary clock drift and a slow network.
pub const DEFAULT_WEBHOOK_TOLERANCE: Duration = Duration::from_secs(300);

/// A verified delivery's body, `{"type", "timestamp", "data"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// What happened; [`EventType::Unknown`] for a type newer than this SDK.
    pub event_type: EventType,
    /// When it happened, RFC 3339 UTC with milliseconds. Deliveries may
    /// arrive in any order; this is the order of the events.
    pub timestamp: String,
    /// The objects concerned, as the REST API shows them.
    pub data: WebhookData,
}

/// The `data` of an event, by the kind of object it is about.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookData {
    /// `room.created`, `room.deleted` (the room as it was), `room.occupied`
    /// and `room.vacated`.
    Room(Room),
    /// `member.joined` and `member.left` of a presence room.
    Member {
        /// The room's name.
        room: String,
        /// The member that joined or left.
        member: Member,
    },
    /// `endpoint.created`, `endpoint.deleted` (the endpoint as it was) and
    /// `endpoint.expired`.
    Endpoint {
        /// The room's name.
        room: String,
        /// The endpoint, with its `code` and `ws_url`.
        endpoint: Endpoint,
    },
    /// `message.created`.
    Message(Message),
    /// The `data` of an event type this SDK does not know, as sent.
    Unknown(serde_json::Value),
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The secret is not `whsec_` followed by base64, the form
    /// `create_webhook` returns it in.
    #[error("a webhook secret is whsec_ followed by base64")]
    InvalidSecret,
    /// No entry of `webhook-signature` is this secret's signature of this
    /// id, timestamp and body: the delivery was not signed with this secret,
    /// or something changed on the way (the body re-encoded, say).
    #[error("no webhook-signature entry matches this secret, id, timestamp and body")]
    InvalidSignature,
    /// Correctly signed, but `webhook-timestamp` is further from now than
    /// the tolerance.
    #[error("webhook-timestamp {timestamp} is further from now than the tolerance")]
    StaleTimestamp {
        /// The delivery's `webhook-timestamp`, in Unix seconds.
        timestamp: i64,
    },
    /// Correctly signed, but the timestamp is not Unix seconds or the body
    /// not an event of comms.
    #[error("malformed webhook delivery: {0}")]
    Malformed(String),
}

/// Verifies a delivery and returns its event: `id`, `timestamp` and
/// `signature_header` are the `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` headers, `body` the request body exactly as
/// received (before any JSON parsing, which could change its bytes).
/// `now` is compared with the timestamp, which may be at most `tolerance`
/// away either way ([`DEFAULT_WEBHOOK_TOLERANCE`]).
///
/// Signatures are compared in constant time, so a forger learns nothing
/// from how long a refusal takes. Delivery is at least once: deduplicate
/// verified events on `id`.
///
/// # Errors
///
/// [`WebhookError::InvalidSecret`] for a secret not of the form
/// `whsec_<base64>`; [`WebhookError::InvalidSignature`] unless one of the
/// signatures matches; then [`WebhookError::StaleTimestamp`] outside the
/// tolerance, and [`WebhookError::Malformed`] for a signed timestamp or body
/// that comms would not send.
pub fn verify_webhook(
    secret: &str,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<WebhookEvent, WebhookError> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .ok_or(WebhookError::InvalidSecret)?;
    if !signed(&key, id, timestamp, signature_header, body) {
        return Err(WebhookError::InvalidSignature);
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| WebhookError::Malformed(format!("webhook-timestamp {timestamp:?} is not Unix seconds")))?;
    // A clock before 1970 counts as 1970: nothing passes but very old stamps.
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if (i128::from(sent) - i128::from(now)).unsigned_abs() > u128::from(tolerance.as_secs()) {
        return Err(WebhookError::StaleTimestamp { timestamp: sent });
    }
    parse_event(body).map_err(|err| WebhookError::Malformed(format!("the body is not an event: {err}")))
}

/// Whether an entry of `signature_header` is the signature of `key` over
/// the delivery. Entries of other versions and undecodable ones are
/// skipped, as the convention asks.
fn signed(key: &[u8], id: &str, timestamp: &str, signature_header: &str, body: &[u8]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix(SIGNATURE_PREFIX))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok())
}

/// The body as sent; `data` is read by the type's shape once the type is
/// known, so a mismatch is reported as such rather than as whichever shape
/// came closest.
#[derive(Deserialize)]
struct Body {
    #[serde(rename = "type")]
    event_type: EventType,
    timestamp: String,
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct RoomData {
    room: Room,
}

#[derive(Deserialize)]
struct MemberData {
    room: String,
    member: Member,
}

#[derive(Deserialize)]
struct EndpointData {
    room: String,
    endpoint: Endpoint,
}

#[derive(Deserialize)]
struct MessageData {
    message: Message,
}

fn parse_event(body: &[u8]) -> Result<WebhookEvent, serde_json::Error> {
    let Body { event_type, timestamp, data } = serde_json::from_slice(body)?;
    let data = match event_type {
        EventType::RoomCreated | EventType::RoomDeleted | EventType::RoomOccupied | EventType::RoomVacated => {
            WebhookData::Room(serde_json::from_value::<RoomData>(data)?.room)
        }
        EventType::MemberJoined | EventType::MemberLeft => {
            let MemberData { room, member } = serde_json::from_value(data)?;
            WebhookData::Member { room, member }
        }
        EventType::EndpointCreated | EventType::EndpointDeleted | EventType::EndpointExpired => {
            let EndpointData { room, endpoint } = serde_json::from_value(data)?;
            WebhookData::Endpoint { room, endpoint }
        }
        EventType::MessageCreated => WebhookData::Message(serde_json::from_value::<MessageData>(data)?.message),
        EventType::Unknown => WebhookData::Unknown(data),
    };
    Ok(WebhookEvent { event_type, timestamp, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const BODY: &str = r#"{"test": 2432232314}"#;

    fn key(secret: &str) -> Vec<u8> {
        STANDARD.decode(secret.strip_prefix(SECRET_PREFIX).unwrap()).unwrap()
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// The signature header of `body`, made here as comms makes it.
    fn sign(timestamp: &str, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key(SECRET)).unwrap();
        mac.update(format!("{ID}.{timestamp}.{body}").as_bytes());
        format!("{SIGNATURE_PREFIX}{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn the_standard_webhooks_reference_example_is_signed() {
        assert!(signed(&key(SECRET), ID, TIMESTAMP, SIGNATURE, BODY.as_bytes()));
        // Signed, so what is refused is the body, which is no comms event.
        let read = verify_webhook(SECRET, ID, TIMESTAMP, SIGNATURE, BODY.as_bytes(), at(1614265330), Duration::ZERO);
        assert!(matches!(read, Err(WebhookError::Malformed(_))), "{read:?}");
    }

    #[test]
    fn a_changed_body_id_or_timestamp_or_another_secret_is_refused() {
        let key = key(SECRET);
        assert!(!signed(&key, ID, TIMESTAMP, SIGNATURE, br#"{"test": 2432232315}"#));
        assert!(!signed(&key, "msg_other", TIMESTAMP, SIGNATURE, BODY.as_bytes()));
        assert!(!signed(&key, ID, "1614265331", SIGNATURE, BODY.as_bytes()));
        assert!(!signed(b"another key", ID, TIMESTAMP, SIGNATURE, BODY.as_bytes()));
        let other = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
        let read = verify_webhook(other, ID, TIMESTAMP, SIGNATURE, BODY.as_bytes(), at(1614265330), Duration::ZERO);
        assert!(matches!(read, Err(WebhookError::InvalidSignature)), "{read:?}");
    }

    #[test]
    fn one_matching_entry_of_several_is_enough() {
        let body = BODY.as_bytes();
        let key = key(SECRET);
        assert!(signed(&key, ID, TIMESTAMP, &format!("v1,bm90IGl0 {SIGNATURE}"), body));
        assert!(signed(&key, ID, TIMESTAMP, &format!("v1a,c2lnbmF0dXJl  v1,%%% {SIGNATURE}"), body));
        assert!(!signed(&key, ID, TIMESTAMP, "v1,bm90IGl0 v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body));
        assert!(!signed(&key, ID, TIMESTAMP, "", body));
    }

    #[test]
    fn secrets_must_be_whsec_and_base64() {
        for secret in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"] {
            let read = verify_webhook(secret, ID, TIMESTAMP, SIGNATURE, BODY.as_bytes(), at(0), Duration::ZERO);
            assert!(matches!(read, Err(WebhookError::InvalidSecret)), "{secret}: {read:?}");
        }
    }

    #[test]
    fn timestamps_further_than_the_tolerance_either_way_are_stale() {
        let body = r#"{"type":"room.vacated","timestamp":"2021-02-25T15:02:10.000Z","data":{"room":{"name":"lobby","created_at":"2021-02-25T15:00:00.000Z","endpoint_count":1,"online":0,"presence":false}}}"#;
        let signature = sign(TIMESTAMP, body);
        let verify =
            |now| verify_webhook(SECRET, ID, TIMESTAMP, &signature, body.as_bytes(), at(now), Duration::from_secs(300));
        for now in [1614265330 - 300, 1614265330, 1614265330 + 300] {
            let event = verify(now).unwrap();
            assert_eq!(event.event_type, EventType::RoomVacated);
            assert!(matches!(event.data, WebhookData::Room(room) if room.name == "lobby"));
        }
        for now in [1614265330 - 301, 1614265330 + 301] {
            assert!(matches!(verify(now), Err(WebhookError::StaleTimestamp { timestamp: 1614265330 })));
        }
    }

    #[test]
    fn signed_but_unreadable_deliveries_are_malformed_and_unknown_types_are_kept() {
        // Signed here as comms signs, checked at the reference time.
        let verify = |timestamp: &str, body: &str| {
            let signature = sign(timestamp, body);
            verify_webhook(
                SECRET,
                ID,
                timestamp,
                &signature,
                body.as_bytes(),
                at(1614265330),
                DEFAULT_WEBHOOK_TOLERANCE,
            )
        };
        let not_seconds = verify("soon", BODY);
        assert!(matches!(not_seconds, Err(WebhookError::Malformed(_))), "{not_seconds:?}");
        let wrong_shape =
            r#"{"type":"member.joined","timestamp":"2021-02-25T15:02:10.000Z","data":{"room":{"name":"lobby"}}}"#;
        let read = verify(TIMESTAMP, wrong_shape);
        assert!(matches!(read, Err(WebhookError::Malformed(_))), "{read:?}");

        let newer = r#"{"type":"room.renamed","timestamp":"2021-02-25T15:02:10.000Z","data":{"from":"a","to":"b"}}"#;
        let event = verify(TIMESTAMP, newer).unwrap();
        assert_eq!(event.event_type, EventType::Unknown);
        assert_eq!(event.data, WebhookData::Unknown(serde_json::json!({"from": "a", "to": "b"})));
    }
}
