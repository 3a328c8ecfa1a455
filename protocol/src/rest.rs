//! Bodies of the REST API under `/api/v1`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What an endpoint may do in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Receive messages only; sending gets a `read_only` error frame.
    Read,
    /// Receive and send messages.
    ReadAndWrite,
}

impl Permission {
    /// The permission as it appears on the wire and in legacy paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadAndWrite => "read_and_write",
        }
    }

    /// Parses `read` or `read_and_write`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "read_and_write" => Some(Self::ReadAndWrite),
            _ => None,
        }
    }

    /// Whether an endpoint with this permission may publish.
    pub fn can_write(self) -> bool {
        self == Self::ReadAndWrite
    }
}

/// A room as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    pub name: String,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    pub endpoint_count: u64,
    /// Live WebSocket connections in the room right now.
    pub online: u64,
}

/// An endpoint as the API shows it. The `code` is the credential a client
/// connects with; `id` is public and is what other clients see as sender.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub id: String,
    pub code: String,
    pub room: String,
    pub permission: Permission,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub meta: Box<RawValue>,
    pub created_at: String,
    /// The full `ws://` or `wss://` URL to connect to.
    pub ws_url: String,
}

/// Who sent a message: an endpoint's public id and meta, or `"app"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sender {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub meta: Box<RawValue>,
}

/// A published message, as the messages API lists it and as the `message`
/// WebSocket frame carries it (that frame adds `"type": "message"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: String,
    pub seq: u64,
    pub room: String,
    pub timestamp: String,
    pub sender: Sender,
    /// The payload exactly as the sender gave it.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub message: Box<RawValue>,
}

/// `POST /api/v1/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRoomRequest {
    pub name: String,
}

/// `POST /api/v1/rooms/{room}/endpoints`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateEndpointRequest {
    /// Kept as text so an unknown value gets SPEC's `invalid` error.
    #[cfg_attr(feature = "openapi", schema(value_type = Permission))]
    pub permission: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub meta: Option<Box<RawValue>>,
}

/// `POST /api/v1/rooms/{room}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishMessageRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub message: Box<RawValue>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub meta: Option<Box<RawValue>>,
}

/// `GET /api/v1/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomList {
    pub rooms: Vec<Room>,
}

/// `GET /api/v1/rooms/{room}/endpoints`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointList {
    pub endpoints: Vec<Endpoint>,
}

/// `GET /api/v1/rooms/{room}/messages`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageList {
    pub messages: Vec<Message>,
}
