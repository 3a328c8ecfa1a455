//! The reference for the fan-out scenarios: the smallest WebSocket fan-out
//! server on comms' stack (axum's WebSocket on tokio), with nothing of comms
//! around it: no key, no code, no permission, no history, no presence.
//!
//! `comms-bench --bare-server ADDR` runs it in a process of its own, which
//! the bench pins like the server under test. It answers the two REST calls
//! a fan-out scenario makes with what the scenario reads (every endpoint's
//! `ws_url` is the one socket route) and `/healthz`, welcomes each connection with the
//! count of messages so far as `last_seq`, and relays every text frame to
//! every connection through one `tokio::sync::broadcast` channel, the client's
//! frame prefixed with a counter so the load generator can check that none
//! is lost, doubled or reordered. A connection that falls a channel's length
//! behind is closed with 1013, like comms' slow consumers. Same socket
//! buffers as comms.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::server::CONNECTION_QUEUE;

/// Frames written before one flush, at most (as comms).
const WRITE_BATCH: usize = 64;
/// comms' socket buffers (`server/src/ws.rs`).
const READ_BUFFER: usize = 1024;
const WRITE_BUFFER: usize = 16 * 1024;

/// What every connection shares.
#[derive(Clone)]
struct Relay {
    frames: broadcast::Sender<Utf8Bytes>,
    /// Messages numbered so far; held while one is numbered and sent, so
    /// frames go out in their numbers' order.
    published: Arc<Mutex<u64>>,
    ws_url: String,
}

/// Serves on `addr` until the process is killed.
///
/// # Errors
///
/// The address cannot be bound.
pub fn run(addr: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // No Nagle delay on small frames (comms sets the same).
        let listener = tokio::net::TcpListener::bind(addr).await?.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let relay = Relay {
            frames: broadcast::channel(CONNECTION_QUEUE).0,
            published: Arc::default(),
            ws_url: format!("ws://{addr}/ws"),
        };
        let app = Router::new()
            .route("/api/v1/rooms", post(created))
            .route("/api/v1/rooms/{room}/endpoints", post(created))
            .route("/ws", any(upgrade))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(relay);
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

/// Any creation: the one socket URL is every endpoint's.
async fn created(State(relay): State<Relay>) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({ "ws_url": relay.ws_url })))
}

async fn upgrade(State(relay): State<Relay>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| connection(socket, relay))
        .into_response()
}

/// One connection: relays what it sends, forwards what everyone sends.
async fn connection(socket: WebSocket, relay: Relay) {
    let mut frames = relay.frames.subscribe();
    let last_seq = *relay.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (mut sink, mut stream) = socket.split();
    let welcome = format!(r#"{{"type":"welcome","last_seq":{last_seq}}}"#);
    if sink.send(Message::text(welcome)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = frames.recv() => {
                // What else is waiting goes in the same write (as comms
                // does): a write per frame would make the reference slow.
                let mut next = frame.map_err(|err| match err {
                    RecvError::Lagged(behind) => TryRecvError::Lagged(behind),
                    RecvError::Closed => TryRecvError::Closed,
                });
                let mut batched = 0;
                loop {
                    match next {
                        Ok(frame) => {
                            if sink.feed(Message::Text(frame)).await.is_err() {
                                return;
                            }
                        }
                        Err(TryRecvError::Lagged(_)) => {
                            let close = CloseFrame { code: 1013, reason: "too slow".into() };
                            let _ = sink.send(Message::Close(Some(close))).await;
                            return;
                        }
                        Err(TryRecvError::Closed) => return,
                        Err(TryRecvError::Empty) => break,
                    }
                    batched += 1;
                    if batched == WRITE_BATCH {
                        break;
                    }
                    next = frames.try_recv();
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => relay.publish(&text),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

impl Relay {
    /// Numbers a client's `{"message": …}` frame and sends it to everyone:
    /// `{"type":"message","seq":N,"message": …}`.
    fn publish(&self, text: &str) {
        let Some(rest) = text.strip_prefix('{') else { return };
        let mut published = self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *published += 1;
        let frame = format!(r#"{{"type":"message","seq":{},{rest}"#, *published);
        let _ = self.frames.send(Utf8Bytes::from(frame));
    }
}
