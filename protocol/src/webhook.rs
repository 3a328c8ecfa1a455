//! Webhooks: what an app registers, the events comms posts to it, and the
//! record of each delivery.

use serde::{Deserialize, Serialize};

/// What happened, as a webhook's `events` list and an event's `type` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// A room was created.
    #[serde(rename = "room.created")]
    RoomCreated,
    /// A room was deleted.
    #[serde(rename = "room.deleted")]
    RoomDeleted,
    /// A room got its first live connection (over every node).
    #[serde(rename = "room.occupied")]
    RoomOccupied,
    /// A room's last live connection closed (over every node).
    #[serde(rename = "room.vacated")]
    RoomVacated,
    /// An endpoint became a member of a presence room.
    #[serde(rename = "member.joined")]
    MemberJoined,
    /// An endpoint stopped being a member of a presence room, after the
    /// grace period.
    #[serde(rename = "member.left")]
    MemberLeft,
    /// An endpoint was created (by the app, the portal or a delegating
    /// parent).
    #[serde(rename = "endpoint.created")]
    EndpointCreated,
    /// An endpoint was deleted.
    #[serde(rename = "endpoint.deleted")]
    EndpointDeleted,
    /// An endpoint reached its `expires_at`.
    #[serde(rename = "endpoint.expired")]
    EndpointExpired,
    /// A message was published; sent only to webhooks that list it.
    #[serde(rename = "message.created")]
    MessageCreated,
}

impl EventType {
    /// Every event type, in the order the docs list them.
    pub const ALL: [Self; 10] = [
        Self::RoomCreated,
        Self::RoomDeleted,
        Self::RoomOccupied,
        Self::RoomVacated,
        Self::MemberJoined,
        Self::MemberLeft,
        Self::EndpointCreated,
        Self::EndpointDeleted,
        Self::EndpointExpired,
        Self::MessageCreated,
    ];

    /// The name on the wire, e.g. `room.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoomCreated => "room.created",
            Self::RoomDeleted => "room.deleted",
            Self::RoomOccupied => "room.occupied",
            Self::RoomVacated => "room.vacated",
            Self::MemberJoined => "member.joined",
            Self::MemberLeft => "member.left",
            Self::EndpointCreated => "endpoint.created",
            Self::EndpointDeleted => "endpoint.deleted",
            Self::EndpointExpired => "endpoint.expired",
            Self::MessageCreated => "message.created",
        }
    }

    /// Parses a wire name; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWebhookRequest {
    /// Where events are posted: an `http://` or `https://` URL.
    pub url: String,
    /// The events to post (at least one); `message.created` only when listed.
    pub events: Vec<String>,
}

/// A webhook as the API lists it (its secret is shown only at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Public id, `wh_…`.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The events it receives.
    pub events: Vec<EventType>,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
}

/// The answer to `POST /api/v1/webhooks`: the webhook and, this once, the
/// secret its deliveries are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedWebhook {
    /// Public id, `wh_…`.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The events it receives.
    pub events: Vec<EventType>,
    /// `whsec_<base64>`: the key of the Standard Webhooks signature. Shown
    /// only here.
    pub secret: String,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
}

/// `GET /api/v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookList {
    /// The app's webhooks, oldest first.
    pub webhooks: Vec<Webhook>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet: waiting for its first attempt or its next retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Retried for the whole retry period without a 2xx; no more attempts
    /// unless sent again.
    Failed,
}

impl DeliveryState {
    /// The name on the wire, e.g. `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// One event on its way to one webhook, and how its attempts went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// The delivery's id, for sending it again.
    pub id: u64,
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub event_id: String,
    /// The event's type.
    pub event: EventType,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u64,
    /// The HTTP status of the last answer, if one came.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries), RFC 3339.
    pub next_attempt_at: Option<String>,
    /// When the event happened, RFC 3339.
    pub created_at: String,
}

/// `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryList {
    /// The webhook's most recent deliveries, newest first.
    pub deliveries: Vec<Delivery>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_through_serde_and_parse() {
        for event in EventType::ALL {
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
            assert_eq!(EventType::parse(event.as_str()), Some(event));
        }
        assert_eq!(EventType::parse("room.renamed"), None);
    }

    #[test]
    fn delivery_states_are_named_as_serde_names_them() {
        for state in [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Failed] {
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        }
    }
}
