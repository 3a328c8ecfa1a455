//! A developer's apps: registering, listing, the page of one app, keys,
//! allowed origins and deletion. Which app a developer may touch is decided
//! by [`comms_core::portal::Portal`].

use leptos::prelude::*;

use crate::pages::portal::error::PortalError;
#[cfg(feature = "ssr")]
use crate::pages::portal::guards;
use crate::pages::portal::views::{AppDetails, AppRow};

/// Latest messages shown per room.
#[cfg(feature = "ssr")]
const LATEST_MESSAGES: usize = 10;

/// Registers an app for the signed-in developer; answers its name.
#[server(prefix = "/portal/fn", endpoint = "register_app")]
pub async fn register_app(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    name: String,
    /// What the app is.
    description: String,
    /// Its web site, or empty.
    website: String,
    /// What it will use comms for.
    intended_use: String,
) -> Result<String, PortalError> {
    let owner = guards::account(Some(&csrf)).await?;
    let request = comms_core::portal::AppRequest { name, description, website, intended_use };
    Ok(guards::context()?.portal.register(&owner, request).await?.name)
}

/// The signed-in developer's apps.
#[server(prefix = "/portal/fn", endpoint = "my_apps")]
pub async fn my_apps() -> Result<Vec<AppRow>, PortalError> {
    let owner = guards::account(None).await?;
    let apps = guards::context()?.portal.apps_of(&owner).await?;
    Ok(apps.into_iter().map(AppRow::from).collect())
}

/// One of the developer's apps with its rooms, endpoints and latest
/// messages, in a fixed number of store and broker calls whatever the
/// number of rooms (see [`comms_core::overview`]), the members of its
/// presence rooms (asked of all of them at once), and its webhooks with
/// their recent deliveries.
#[server(prefix = "/portal/fn", endpoint = "app_overview")]
pub async fn app_overview(
    /// The app's name.
    app: String,
) -> Result<AppDetails, PortalError> {
    use crate::pages::portal::views::RoomPanel;
    let owner = guards::account(None).await?;
    let context = guards::context()?;
    let summary = context.portal.summary_of(&owner, &app).await?;
    let (mut rooms, mut webhooks) = (Vec::new(), Vec::new());
    if summary.app.status == comms_core::store::AppStatus::Approved {
        let ws_base = guards::ws_base()?;
        let overview =
            comms_core::overview::rooms_overview(&context.service, &summary.app, &ws_base, LATEST_MESSAGES).await?;
        let members = futures_util::future::try_join_all(
            overview.iter().map(|room| members_of(&context.service, &summary.app, &room.room)),
        )
        .await?;
        rooms = overview.into_iter().zip(members).map(|(room, members)| RoomPanel::new(room, members)).collect();
        webhooks = super::webhooks::webhook_panels(&context.service, &summary.app).await?;
    }
    Ok(AppDetails { app: AppRow::from(summary), rooms, webhooks })
}

/// The members of `room` if it is a presence room, else `None`.
#[cfg(feature = "ssr")]
async fn members_of(
    service: &comms_core::service::Service,
    app: &comms_core::store::AppRecord,
    room: &comms_core::store::RoomRecord,
) -> Result<Option<Vec<comms_protocol::Member>>, PortalError> {
    if !room.presence {
        return Ok(None);
    }
    let name = comms_core::names::RoomName::parse(&room.name)?;
    Ok(service.presence(app, &name).await?.members)
}

/// Issues a new key for the developer's approved app (earlier keys stop
/// working; with `revoke_endpoints`, the endpoints they created are
/// deleted too); the key is in this answer only.
#[server(prefix = "/portal/fn", endpoint = "issue_key")]
pub async fn issue_key(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// Present (`true`) to delete the endpoints made with the old keys.
    revoke_endpoints: Option<String>,
) -> Result<String, PortalError> {
    let owner = guards::account(Some(&csrf)).await?;
    let revoke_endpoints = revoke_endpoints.is_some_and(|value| value == "true");
    Ok(guards::context()?.portal.issue_key(&owner, &app, revoke_endpoints).await?.api_key)
}

/// Revokes every key of the developer's app; answers how many.
#[server(prefix = "/portal/fn", endpoint = "revoke_keys")]
pub async fn revoke_keys(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
) -> Result<u64, PortalError> {
    let owner = guards::account(Some(&csrf)).await?;
    Ok(guards::context()?.portal.revoke_keys(&owner, &app).await?)
}

/// Replaces the browser origins the developer's app allows: origins
/// separated by white space or commas; nothing allows any origin. Answers
/// the list as stored (normalized).
#[server(prefix = "/portal/fn", endpoint = "set_allowed_origins")]
pub async fn set_allowed_origins(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The origins as typed.
    origins: String,
) -> Result<Vec<String>, PortalError> {
    let owner = guards::account(Some(&csrf)).await?;
    let app = guards::context()?.portal.set_allowed_origins(&owner, &app, &origins).await?;
    Ok(app.allowed_origins.entries())
}

/// Deletes the developer's app with everything in it.
#[server(prefix = "/portal/fn", endpoint = "delete_app")]
pub async fn delete_app(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
) -> Result<(), PortalError> {
    let owner = guards::account(Some(&csrf)).await?;
    Ok(guards::context()?.portal.delete(&owner, &app).await?)
}
