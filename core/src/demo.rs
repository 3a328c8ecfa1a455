//! The public demo: the app `demo` with a few rooms and endpoints, made at
//! start when `demo.enabled` (and kept if they exist), and a bot that posts
//! in `lobby` so the demo is never silent. The site shows them; clients
//! join with the endpoint codes like any others.

use std::sync::Arc;
use std::time::Duration;

use comms_protocol::Permission;
use serde_json::value::RawValue;
use tokio::task::JoinHandle;

use crate::apps::Apps;
use crate::error::ServiceError;
use crate::names::AppName;
use crate::service::Service;
use crate::store::{AppRecord, AppStatus, Store};

/// Name of the demo app.
pub const DEMO_APP: &str = "demo";
/// The room the bot keeps busy.
pub const BOT_ROOM: &str = "lobby";

/// Rooms of the demo and their endpoints: `(permission, meta)`.
const ROOMS: &[(&str, &[(Permission, &str)])] = &[
    (
        BOT_ROOM,
        &[
            (Permission::ReadAndWrite, r#"{"name":"Ann"}"#),
            (Permission::ReadAndWrite, r#"{"name":"Bob"}"#),
            (Permission::Read, r#"{"name":"Watcher"}"#),
        ],
    ),
    ("quiet", &[(Permission::ReadAndWrite, r#"{"name":"Cleo"}"#), (Permission::Read, r#"{"name":"Dev"}"#)]),
];

/// What the bot says, in turn.
const LINES: &[&str] = &[
    "Hello from the demo bot.",
    "Every message carries a seq: reconnect with after_seq to catch up.",
    "My name comes from my meta, stamped by the server.",
    "Open this room in two tabs and chat with yourself.",
];

/// Makes the demo app, rooms and endpoints that are missing.
///
/// # Errors
///
/// Store failures.
pub async fn prepare(store: &Arc<dyn Store>, apps: &Apps, service: &Service) -> Result<AppRecord, ServiceError> {
    let name = AppName::parse(DEMO_APP)?;
    let app = match store.app_by_name(&name).await? {
        Some(app) => app,
        None => apps.create(DEMO_APP, AppStatus::Approved).await?.app,
    };
    for (room, endpoints) in ROOMS {
        match service.create_room(&app, room).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(err) => return Err(err),
        }
        if !service.list_endpoints(&app, room, "").await?.is_empty() {
            continue;
        }
        for (permission, meta) in *endpoints {
            let meta = RawValue::from_string((*meta).to_owned()).map_err(|err| ServiceError::Internal(err.into()))?;
            service.create_endpoint(&app, room, permission.as_str(), Some(&meta), "").await?;
        }
    }
    Ok(app)
}

/// Starts the bot: a message in [`BOT_ROOM`] every `interval`, as the app
/// with the meta `{"name": "demo bot"}`. Abort the handle to stop it.
pub fn spawn_bot(service: Service, app: AppRecord, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        for line in LINES.iter().cycle() {
            tick.tick().await;
            let payload = serde_json::json!({ "text": line }).to_string();
            let (Ok(payload), Ok(meta)) =
                (RawValue::from_string(payload), RawValue::from_string(r#"{"name":"demo bot"}"#.to_owned()))
            else {
                continue;
            };
            if let Err(err) = service.publish_as_app(&app, BOT_ROOM, payload, Some(&meta)).await {
                tracing::warn!(error = %err, "the demo bot could not post");
            }
        }
    })
}
