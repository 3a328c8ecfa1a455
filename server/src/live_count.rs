//! The portal's live connection count: a WebSocket at
//! `/portal/live/{app}` that sends the signed-in developer's approved app's
//! open connections over every node, then again each time the number
//! changes, until the page goes or the server shuts down.
//!
//! A route of its own rather than a Leptos server function, so that who
//! may open it is settled before the upgrade (no session: `403`; an app
//! that is not the developer's approved one: `404`) and the socket reads
//! client frames of at most [`MAX_CLIENT_FRAME`] bytes: the page never
//! sends anything but its close, and nobody may make the server buffer
//! more. An account holds at most `portal.live_counts_per_account` of
//! them at once on a node ([`LiveCounts`]), as each looks the count up
//! twice a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use comms_core::accounts::{SESSION_ACCOUNT_KEY, SESSION_EPOCH_KEY};
use comms_core::error::ServiceError;
use comms_core::store::AppRecord;
use tower_sessions::Session;

use crate::error::ApiError;
use crate::state::AppState;

/// How often the count is looked up; it is sent only when it changed.
const LIVE_EVERY: Duration = Duration::from_millis(500);
/// The largest frame read from the page.
const MAX_CLIENT_FRAME: usize = 1024;

/// The live-count sockets each account holds open on this node.
#[derive(Default)]
pub struct LiveCounts(parking_lot::Mutex<HashMap<i64, usize>>);

/// One account's hold on one live-count socket, given back when dropped.
struct LiveCountPermit {
    counts: Arc<LiveCounts>,
    account_id: i64,
}

impl LiveCounts {
    /// A hold for `account_id`, unless it holds `most` already.
    fn admit(self: &Arc<Self>, account_id: i64, most: usize) -> Option<LiveCountPermit> {
        let mut held = self.0.lock();
        let count = held.entry(account_id).or_default();
        if *count >= most {
            return None;
        }
        *count += 1;
        Some(LiveCountPermit { counts: Arc::clone(self), account_id })
    }
}

impl Drop for LiveCountPermit {
    fn drop(&mut self) {
        let mut held = self.counts.0.lock();
        if let Some(count) = held.get_mut(&self.account_id) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.account_id);
            }
        }
    }
}

/// Checks the session, the app and the account's open live counts, then
/// upgrades.
pub async fn connect(
    State(state): State<AppState>,
    Path(app): Path<String>,
    session: Session,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let session_failed = |err: tower_sessions::session::Error| ServiceError::Internal(err.into());
    let account_id = session.get::<i64>(SESSION_ACCOUNT_KEY).await.map_err(session_failed)?;
    let epoch = session.get::<i64>(SESSION_EPOCH_KEY).await.map_err(session_failed)?;
    let signed_in = match account_id {
        Some(id) => state.accounts.signed_in(id, epoch).await?,
        None => None,
    };
    let owner = signed_in.ok_or_else(|| ServiceError::Denied("sign in first".into()))?;
    let app = state.portal.approved_app_of(&owner, &app).await?;
    let upgrade = upgrade.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    let most = state.config.portal.live_counts_per_account;
    let permit = state.live_counts.admit(owner.id, most).ok_or_else(|| {
        ServiceError::Denied(format!("at most {most} live counts may be open at once; close another portal tab"))
    })?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| send_counts(socket, state, app, permit))
        .into_response())
}

/// Sends the count at once and after each change; `_permit` is held until
/// the socket ends.
async fn send_counts(mut socket: WebSocket, state: AppState, app: AppRecord, _permit: LiveCountPermit) {
    let mut every = tokio::time::interval(LIVE_EVERY);
    let mut last = None;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let Ok(now) = state.service.connections_of(&app).await else { continue };
                if last != Some(now) {
                    if socket.send(Message::Text(now.to_string().into())).await.is_err() {
                        return;
                    }
                    last = Some(now);
                }
            }
            frame = socket.recv() => match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // The page's close, anything the page should not send, a
                // frame over the limit, or the connection gone.
                _ => return,
            },
            () = state.stopping.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}
