//! Events as a webhook receives them: the body `{"type", "timestamp",
//! "data"}`, serialized once when the event happens and stored in the
//! outbox, so every attempt posts the same bytes.

use comms_protocol::webhook::EventType;
use comms_protocol::{Endpoint, Member, Room};
use serde::Serialize;

use crate::message::Published;
use crate::secrets;
use crate::store::{NewEvent, StoredMessage};
use crate::time::{format_ms, now_ms};

#[derive(Serialize)]
struct Body<'a, D> {
    #[serde(rename = "type")]
    event_type: EventType,
    timestamp: &'a str,
    data: D,
}

/// `{"room": Room}`.
#[derive(Serialize)]
struct RoomData<'a> {
    room: &'a Room,
}

/// `{"room": "<name>", "endpoint": Endpoint}`.
#[derive(Serialize)]
struct EndpointData<'a> {
    room: &'a str,
    endpoint: &'a Endpoint,
}

/// `{"room": "<name>", "member": Member}`.
#[derive(Serialize)]
struct MemberData<'a> {
    room: &'a str,
    member: &'a Member,
}

/// `{"message": Message}`.
#[derive(Serialize)]
struct MessageData<'a> {
    message: &'a comms_protocol::Message,
}

/// The event `event_type` about `data`, happening at `at_ms`, with a fresh id.
fn event(event_type: EventType, data: impl Serialize, at_ms: i64) -> Result<NewEvent, serde_json::Error> {
    let timestamp = format_ms(at_ms);
    let body = serde_json::to_string(&Body { event_type, timestamp: &timestamp, data })?;
    Ok(NewEvent { id: secrets::event_id(), event_type, body, created_at: at_ms })
}

/// Serializing these views cannot fail: their JSON fields are already
/// checked JSON text.
fn infallible(result: Result<NewEvent, serde_json::Error>) -> NewEvent {
    result.expect("API views always serialize")
}

/// `room.created`, `room.deleted`, `room.occupied` or `room.vacated`.
pub fn room(event_type: EventType, room: &Room) -> NewEvent {
    infallible(event(event_type, RoomData { room }, now_ms()))
}

/// `endpoint.created`, `endpoint.deleted` or `endpoint.expired` of an
/// endpoint of `room`.
pub fn endpoint(event_type: EventType, room: &str, endpoint: &Endpoint) -> NewEvent {
    infallible(event(event_type, EndpointData { room, endpoint }, now_ms()))
}

/// `member.joined` or `member.left` of a presence room.
pub fn member(event_type: EventType, room: &str, member: &Member) -> NewEvent {
    infallible(event(event_type, MemberData { room, member }, now_ms()))
}

/// `message.created` of a message of `room`, as it is being stored.
///
/// # Errors
///
/// A stored message whose JSON does not parse.
pub fn message_created(room: &str, stored: &StoredMessage) -> Result<NewEvent, serde_json::Error> {
    let published = Published::from_stored(stored.room_id, room, stored)?;
    event(EventType::MessageCreated, MessageData { message: &published.message }, stored.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_event_has_the_type_timestamp_and_data_of_the_contract() {
        let view = Room {
            name: "lobby".into(),
            created_at: "2026-12-05T10:00:00.000Z".into(),
            endpoint_count: 0,
            online: 0,
            presence: false,
        };
        let event = room(EventType::RoomCreated, &view);
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["type"], "room.created");
        assert_eq!(body["data"]["room"]["name"], "lobby");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(event.id.starts_with("evt_"));
    }
}
