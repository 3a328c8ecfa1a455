//! Bodies of the REST API under `/api/v1`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What an endpoint may do in its room.
///
/// Ordered from narrowest to widest: a delegated child's permission is
/// never greater than its parent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Receive messages only; sending gets a `read_only` error frame.
    Read,
    /// Receive and send messages.
    ReadAndWrite,
    /// Everything `read_and_write` may, plus redacting messages
    /// (`{"redact": seq}` on the socket).
    Moderate,
}

impl Permission {
    /// The permission as it appears on the wire and in legacy paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadAndWrite => "read_and_write",
            Self::Moderate => "moderate",
        }
    }

    /// Parses `read`, `read_and_write` or `moderate`; anything else is
    /// `None`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "read_and_write" => Some(Self::ReadAndWrite),
            "moderate" => Some(Self::Moderate),
            _ => None,
        }
    }

    /// Whether an endpoint with this permission may publish and signal.
    pub fn can_write(self) -> bool {
        self >= Self::ReadAndWrite
    }

    /// Whether an endpoint with this permission may redact messages.
    pub fn can_moderate(self) -> bool {
        self == Self::Moderate
    }
}

/// A room as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    /// Name, unique per app: 1–64 of `A–Z a–z 0–9 - _ .`.
    pub name: String,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// Endpoints the room has.
    pub endpoint_count: u64,
    /// Live WebSocket connections in the room right now.
    pub online: u64,
    /// Whether the room tracks its members (welcome `members`, `join` and
    /// `leave` frames); set at creation.
    pub presence: bool,
}

/// An endpoint as the API shows it. The `code` is the credential a client
/// connects with; `id` is public and is what other clients see as sender.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    /// Public id, shown to other clients as the sender.
    pub id: String,
    /// The secret a client connects with (at least 128 random bits, URL-safe).
    pub code: String,
    /// Name of the endpoint's room.
    pub room: String,
    /// What the endpoint may do.
    pub permission: Permission,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    /// JSON object stamped on every message sent through the endpoint.
    pub meta: Box<RawValue>,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// The full `ws://` or `wss://` URL to connect to.
    pub ws_url: String,
    /// Live connections it may have at once (past it: close 4029); `null`
    /// when only the app's socket quotas apply.
    pub max_connections: Option<u64>,
    /// Whether the code works for one connection only.
    pub single_use: bool,
    /// When the code stops working (RFC 3339 UTC with milliseconds); `null`
    /// when it never does.
    pub expires_at: Option<String>,
    /// Messages it may ever publish; `null` when unlimited.
    pub max_messages: Option<u64>,
    /// Messages published through it so far.
    pub messages_sent: u64,
    /// Its live connections right now, over every node.
    pub online: u64,
    /// Whether its holder may mint child endpoints
    /// (`POST /api/v1/endpoints/{code}/children`).
    pub can_delegate: bool,
    /// The public id of the endpoint that minted it; `null` for endpoints
    /// the app created.
    pub parent: Option<String>,
}

/// Who sent a message: an endpoint's public id and meta, or `"app"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sender {
    /// The sending endpoint's public id, or `"app"` for server-side publishes.
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    /// The sending endpoint's meta, or the meta of a server-side publish.
    pub meta: Box<RawValue>,
    /// For an endpoint minted by another one: the minting endpoint's
    /// public id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A published message, as the messages API lists it and as the `message`
/// WebSocket frame carries it (that frame adds `"type": "message"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Unique message id.
    pub id: String,
    /// Per-room sequence number: strictly increasing and never reused;
    /// consecutive in normal operation and across clean restarts; after a
    /// node crashes it may skip ahead.
    pub seq: u64,
    /// Name of the room.
    pub room: String,
    /// RFC 3339 UTC with milliseconds, set by the server.
    pub timestamp: String,
    /// Who sent the message, stamped by the server.
    pub sender: Sender,
    /// The payload exactly as the sender gave it; `null` once redacted.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub message: Box<RawValue>,
    /// When a moderator or the app redacted it (RFC 3339 UTC with
    /// milliseconds); absent for messages that were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_at: Option<String>,
}

/// An endpoint present in a room: one with a live connection, or whose
/// last connection closed less than the leave grace period ago
/// (`connections` is then 0).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The endpoint's public id.
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    /// The endpoint's meta.
    pub meta: Box<RawValue>,
    /// Live connections of the endpoint, over every node.
    pub connections: u64,
}

/// `GET /api/v1/rooms/{room}/presence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Presence {
    /// The room's members, in a presence room only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
    /// Live WebSocket connections in the room, over every node.
    pub online: u64,
}

/// `POST /api/v1/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRoomRequest {
    /// Room name: 1–64 of `A–Z a–z 0–9 - _ .`.
    pub name: String,
    /// Track members (join, leave, the welcome's `members`); default false.
    #[serde(default)]
    pub presence: bool,
}

/// `POST /api/v1/rooms/{room}/endpoints`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateEndpointRequest {
    /// What the endpoint may do.
    // Kept as text here so an unknown value gets `400 invalid`
    // (docs/protocol.md#error-codes), not a generic deserialization error.
    #[cfg_attr(feature = "openapi", schema(value_type = Permission))]
    pub permission: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    /// JSON object (at most 4 KiB) stamped on every message sent through the endpoint.
    pub meta: Option<Box<RawValue>>,
    /// Live connections it may have at once (at least 1); absent or `null`:
    /// only the app's socket quotas.
    #[serde(default)]
    pub max_connections: Option<u64>,
    /// The code works for one connection: once one has joined, later
    /// upgrades are refused `404`. Default false.
    #[serde(default)]
    pub single_use: bool,
    /// When the code stops working (RFC 3339); absent or `null`: never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Messages it may ever publish; absent or `null`: unlimited.
    #[serde(default)]
    pub max_messages: Option<u64>,
    /// Whether its holder may mint child endpoints. Default false.
    #[serde(default)]
    pub can_delegate: bool,
}

/// `PATCH /api/v1/rooms/{room}/endpoints/{code}`: any subset of the
/// fields. An absent field is left as it is; `null` clears a limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateEndpointRequest {
    /// The new permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Permission>))]
    pub permission: Option<String>,
    /// The new meta (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub meta: Option<Box<RawValue>>,
    /// When the code stops working (RFC 3339), or `null` for never.
    #[serde(default, deserialize_with = "set_or_clear", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable))]
    pub expires_at: Option<Option<String>>,
    /// Messages it may ever publish, or `null` for unlimited.
    #[serde(default, deserialize_with = "set_or_clear", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>, nullable))]
    pub max_messages: Option<Option<u64>>,
    /// Live connections it may have at once, or `null` for only the app's
    /// socket quotas.
    #[serde(default, deserialize_with = "set_or_clear", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>, nullable))]
    pub max_connections: Option<Option<u64>>,
}

/// A field that is absent (`None`), `null` (`Some(None)`) or set.
fn set_or_clear<'de, D, T>(value: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(value).map(Some)
}

/// `POST /api/v1/rooms/{room}/messages/redact`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedactSenderRequest {
    /// The public id of the endpoint whose retained messages are redacted.
    pub sender_id: String,
}

/// The answer to `POST /api/v1/rooms/{room}/messages/redact`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redacted {
    /// How many messages this request redacted.
    pub redacted: u64,
}

/// `POST /api/v1/rooms/{room}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishMessageRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    /// The payload: any JSON value.
    pub message: Box<RawValue>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    /// JSON object shown as the sender's meta.
    pub meta: Option<Box<RawValue>>,
}

/// `GET /api/v1/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomList {
    /// The app's rooms, oldest first.
    pub rooms: Vec<Room>,
}

/// `GET /api/v1/rooms/{room}/endpoints`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointList {
    /// The room's endpoints, oldest first.
    pub endpoints: Vec<Endpoint>,
}

/// `GET /api/v1/rooms/{room}/messages`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageList {
    /// Messages, oldest first.
    pub messages: Vec<Message>,
}
