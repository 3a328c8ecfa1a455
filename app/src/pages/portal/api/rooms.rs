//! Rooms and endpoints of a developer's approved app, through the same
//! [`comms_core::service::Service`] calls as the REST API.

use leptos::prelude::*;

use crate::pages::portal::error::PortalError;
#[cfg(feature = "ssr")]
use comms_core::input::{parse_permission, EndpointSpec, Meta};
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
    let new = NewRoom { name: RoomName::parse(&room)?, presence: presence.is_some_and(|value| value == "true") };
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
    /// `read` or `read_and_write`.
    permission: String,
    /// A JSON object's text, or empty for none.
    meta: String,
) -> Result<(), PortalError> {
    use comms_core::error::ServiceError;
    let (context, record) = guards::approved_app(&csrf, &app).await?;
    let meta = match meta.trim() {
        "" => None,
        text => Some(
            serde_json::value::RawValue::from_string(text.to_owned())
                .map_err(|_| ServiceError::Invalid("meta must be a JSON object, like {\"name\": \"Ann\"}".into()))?,
        ),
    };
    let meta = Meta::parse(meta.as_deref(), &context.limits)?;
    let spec = EndpointSpec::plain(parse_permission(&permission)?, meta);
    context.service.create_endpoint(&record, &RoomName::parse(&room)?, spec, None).await?;
    Ok(())
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
