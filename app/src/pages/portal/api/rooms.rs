//! Rooms, endpoints and messages of a developer's approved app, through
//! the same [`comms_core::service::Service`] calls as the REST API.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::pages::portal::error::PortalError;
#[cfg(feature = "ssr")]
use comms_core::config::LimitsConfig;
#[cfg(feature = "ssr")]
use comms_core::error::ServiceError;
#[cfg(feature = "ssr")]
use comms_core::input::{parse_permission, parse_time, EndpointSpec, EndpointUpdate, Meta};
#[cfg(feature = "ssr")]
use comms_core::names::RoomName;
#[cfg(feature = "ssr")]
use comms_core::store::NewRoom;

#[cfg(feature = "ssr")]
use crate::pages::portal::guards;

/// Creates a room in the developer's approved app.
#[server(prefix = "/portal/fn", endpoint = "create_room")]
pub async fn create_room(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
    /// Present (`true`) for a presence room.
    presence: Option<String>,
) -> Result<(), PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    let new = NewRoom::new(RoomName::parse(&room)?, presence.is_some_and(|value| value == "true"));
    context.service.create_room(&record, &new).await?;
    Ok(())
}

/// Deletes a room of the developer's app, closing its sockets.
#[server(prefix = "/portal/fn", endpoint = "delete_room")]
pub async fn delete_room(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
) -> Result<(), PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    Ok(context.service.delete_room(&record, &RoomName::parse(&room)?).await?)
}

/// Adds an endpoint; `meta` is a JSON object's text, or empty for none.
#[server(prefix = "/portal/fn", endpoint = "create_endpoint")]
pub async fn create_endpoint(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
    /// `read`, `read_and_write` or `moderate`.
    permission: String,
    /// A JSON object's text, or empty for none.
    meta: String,
) -> Result<(), PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    let spec = EndpointSpec::plain(parse_permission(&permission)?, meta_field(&meta, &context.limits)?);
    context.service.create_endpoint(&record, &RoomName::parse(&room)?, spec, None).await?;
    Ok(())
}

/// An endpoint's form on its app's page: the endpoint and what it is to
/// be, every field as typed (the form's names are `change[code]` and so on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointChange {
    /// The endpoint's code.
    pub code: String,
    /// `read`, `read_and_write` or `moderate`.
    pub permission: String,
    /// A JSON object's text, or empty for none.
    pub meta: String,
    /// An RFC 3339 time, or empty for never.
    pub expires_at: String,
    /// A whole number, or empty for unlimited.
    pub max_messages: String,
}

/// Changes an endpoint as its form says: every field is set, an empty
/// `expires_at` or `max_messages` lifts that limit. Open connections take
/// the change at once (see [`comms_core::capabilities`]).
#[server(prefix = "/portal/fn", endpoint = "update_endpoint")]
pub async fn update_endpoint(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
    /// The endpoint and its new settings.
    change: EndpointChange,
) -> Result<(), PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    let expires_at = match change.expires_at.trim() {
        "" => None,
        text => Some(parse_time("expires_at", text)?),
    };
    let max_messages = match change.max_messages.trim() {
        "" => None,
        text => Some(text.parse::<u64>().map_err(|_| {
            ServiceError::Invalid("max_messages must be a whole number, or empty for unlimited".into())
        })?),
    };
    let update = EndpointUpdate {
        permission: Some(parse_permission(&change.permission)?),
        meta: Some(meta_field(&change.meta, &context.limits)?),
        expires_at: Some(expires_at),
        max_messages: Some(max_messages),
        max_connections: None,
    };
    context.service.update_endpoint(&record, &RoomName::parse(&room)?, &change.code, update).await?;
    Ok(())
}

/// Redacts a retained message of a room: its payload is gone from history,
/// and live connections are told to hide it.
#[server(prefix = "/portal/fn", endpoint = "redact_message")]
pub async fn redact_message(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
    /// The message's seq.
    seq: u64,
) -> Result<(), PortalError> {
    use comms_core::capabilities::RedactTarget;
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    context.service.redact(&record, &RoomName::parse(&room)?, RedactTarget::Seq(seq)).await?;
    Ok(())
}

/// The meta of an endpoint form: a JSON object's text, or empty for none,
/// checked as the REST API checks it.
#[cfg(feature = "ssr")]
fn meta_field(text: &str, limits: &LimitsConfig) -> Result<Meta, PortalError> {
    let meta = match text.trim() {
        "" => None,
        text => Some(
            serde_json::value::RawValue::from_string(text.to_owned())
                .map_err(|_| ServiceError::Invalid("meta must be a JSON object, like {\"name\": \"Ann\"}".into()))?,
        ),
    };
    Ok(Meta::parse(meta.as_deref(), limits)?)
}

/// Deletes an endpoint, closing its sockets.
#[server(prefix = "/portal/fn", endpoint = "delete_endpoint")]
pub async fn delete_endpoint(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
    /// The endpoint's code.
    code: String,
) -> Result<(), PortalError> {
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    Ok(context.service.delete_endpoint(&record, &RoomName::parse(&room)?, &code).await?)
}
