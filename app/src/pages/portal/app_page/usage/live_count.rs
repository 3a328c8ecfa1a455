//! The live connection count, in the browser: the server's
//! `/portal/live/{app}` WebSocket (`server/src/live_count.rs`) sends the
//! count, and again at each change; the page sends nothing.

use futures_util::StreamExt;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::Message;
use leptos::prelude::*;

/// Keeps `live` at the app's count until the socket ends or `live` is
/// gone with its section (dropping the socket then closes it).
pub(super) fn follow(app: String, live: RwSignal<Option<u64>>) {
    let location = window().location();
    let scheme = if location.protocol().as_deref() == Ok("https:") { "wss" } else { "ws" };
    let host = location.host().unwrap_or_default();
    // App names are letters, digits, `-`, `_` and `.`: nothing to escape.
    let Ok(mut socket) = WebSocket::open(&format!("{scheme}://{host}/portal/live/{app}")) else { return };
    leptos::task::spawn_local(async move {
        while let Some(Ok(Message::Text(text))) = socket.next().await {
            let Ok(count) = text.parse() else { continue };
            if live.try_set(Some(count)).is_some() {
                return;
            }
        }
    });
}
