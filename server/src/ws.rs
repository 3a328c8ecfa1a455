//! The WebSocket at `/ws/endpoint/{code}/`: the endpoint code is the
//! credential. This module speaks the protocol over one socket; which
//! connections are in a room and the fan-out to them is `comms_core::hub`,
//! seq and history are the broker's.
//!
//! One task per connection owns the socket. It waits on four things at
//! once: the hub closing it, the room's queue, the client's frames and the
//! ping timer. Queued frames are written in batches with a single flush, and
//! each frame is the same shared buffer every other member of the room got.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use comms_core::error::ServiceError;
use comms_core::limits::ConnectionRateLimiter;
use comms_core::service::{JoinTicket, Session};
use comms_protocol::ws::{close, ClientFrame, ServerFrame};
use comms_protocol::ErrorCode;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::{interval, Instant, MissedTickBehavior};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// Frames written before one flush, at most.
const WRITE_BATCH: usize = 64;
/// Socket read buffer: small, so idle connections stay cheap.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes gathered before a socket write; a flush writes whatever is there.
const WRITE_BUFFER: usize = 16 * 1024;

/// The WebSocket route, with and without the trailing slash.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/endpoint/{code}", get(connect))
        .route("/ws/endpoint/{code}/", get(connect))
}

#[derive(Debug, Deserialize)]
struct ConnectQuery {
    after_seq: Option<u64>,
}

/// Checks the code before upgrading, so unknown codes get a plain `404`.
#[tracing::instrument(skip_all)]
async fn connect(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ConnectQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ticket = state.service.ticket(&code).await?;
    let upgrade = upgrade.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    let limit = state.config.limits.max_message_bytes;
    // Frames up to 16x the limit are read whole so they can be answered with
    // `too_large`; anything bigger is cut off by the WebSocket library.
    let hard_limit = limit.saturating_mul(16).max(1024 * 1024);
    let tracker = state.sockets.clone();
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| tracker.track_future(serve(socket, state, ticket, query.after_seq)))
        .into_response())
}

type Sink = SplitSink<WebSocket, WsMessage>;
type Stream = SplitStream<WebSocket>;

/// What to do after handling one client frame.
enum Next {
    Continue,
    Close(u16, &'static str),
}

async fn serve(socket: WebSocket, state: AppState, ticket: JoinTicket, after_seq: Option<u64>) {
    let (mut sink, stream) = socket.split();
    let session = match state.service.join(&ticket, after_seq).await {
        Ok(session) => session,
        Err(err) => {
            tracing::error!(error = ?err, "joining a room failed");
            let _ = close_with(&mut sink, 1011, "internal error").await;
            return;
        }
    };
    let result = Connection {
        state: &state,
        ticket: &ticket,
        sink,
        limiter: ConnectionRateLimiter::new(
            state.config.limits.ws_messages_per_second,
            state.config.limits.ws_burst,
        ),
    }
    .run(session, stream)
    .await;
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with a socket error");
    }
}

struct Connection<'a> {
    state: &'a AppState,
    ticket: &'a JoinTicket,
    sink: Sink,
    limiter: ConnectionRateLimiter,
}

impl Connection<'_> {
    async fn run(mut self, session: Session, mut stream: Stream) -> Result<(), axum::Error> {
        let Session {
            mut membership,
            welcome,
            backlog,
            covered_seq,
        } = session;
        self.sink.feed(text_frame(&welcome)).await?;
        for message in &backlog {
            self.sink.feed(shared_frame(&message.frame)).await?;
        }
        self.sink.flush().await?;
        drop(backlog);

        let ping_every = Duration::from_secs(self.state.config.websocket.ping_interval_secs);
        let idle_timeout = Duration::from_secs(self.state.config.websocket.idle_timeout_secs);
        let mut ping = interval(ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();

        loop {
            tokio::select! {
                biased;
                reason = &mut membership.closed => {
                    let (code, text) = match reason {
                        Ok(reason) => (reason.code(), reason.text()),
                        Err(_) => (close::GOING_AWAY, "closed"),
                    };
                    return close_with(&mut self.sink, code, text).await;
                }
                queued = membership.queue.recv() => {
                    let Some(first) = queued else { return Ok(()) };
                    let mut next = Some(first);
                    let mut written = 0;
                    while let Some(message) = next.take() {
                        if message.seq() > covered_seq {
                            self.sink.feed(shared_frame(&message.frame)).await?;
                        }
                        written += 1;
                        if written < WRITE_BATCH {
                            next = membership.queue.try_recv().ok();
                        }
                    }
                    self.sink.flush().await?;
                }
                incoming = stream.next() => {
                    let Some(Ok(frame)) = incoming else { return Ok(()) };
                    last_heard = Instant::now();
                    match self.on_frame(frame).await? {
                        Next::Continue => {}
                        Next::Close(code, text) => return close_with(&mut self.sink, code, text).await,
                    }
                }
                _ = ping.tick() => {
                    let silent = last_heard.elapsed();
                    if silent >= idle_timeout {
                        return close_with(&mut self.sink, close::PING_TIMEOUT, "no answer to pings").await;
                    }
                    if silent >= ping_every {
                        self.sink.send(WsMessage::Ping(Default::default())).await?;
                    }
                }
            }
        }
    }

    async fn on_frame(&mut self, frame: WsMessage) -> Result<Next, axum::Error> {
        match frame {
            WsMessage::Text(text) => self.on_text(text.as_str()).await,
            WsMessage::Binary(_) => {
                self.send_error(ErrorCode::Invalid, "binary frames are not supported; send JSON text").await?;
                Ok(Next::Continue)
            }
            // The library queues the pong; flushing sends it now.
            WsMessage::Ping(_) => self.sink.flush().await.map(|()| Next::Continue),
            WsMessage::Pong(_) => Ok(Next::Continue),
            WsMessage::Close(_) => Ok(Next::Close(1000, "bye")),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<Next, axum::Error> {
        let limit = self.state.config.limits.max_message_bytes;
        if text.len() > limit {
            let reason = format!("frame is {} bytes, over the limit of {limit} bytes", text.len());
            self.send_error(ErrorCode::TooLarge, &reason).await?;
            return Ok(Next::Close(close::TOO_BIG, "message too large"));
        }
        if !self.limiter.allow() {
            self.send_error(ErrorCode::RateLimited, "sending too fast; message not published").await?;
            return Ok(Next::Continue);
        }
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(reason) => {
                self.send_error(ErrorCode::Invalid, &reason).await?;
                return Ok(Next::Continue);
            }
        };
        match self.state.service.publish_as_endpoint(self.ticket, frame.message).await {
            Ok(()) => {}
            Err(ServiceError::Internal(err)) => {
                tracing::error!(error = ?err, "publishing failed");
                self.send_error(ErrorCode::Internal, "internal error; message not published").await?;
            }
            Err(err) => self.send_error(err.code(), &err.to_string()).await?,
        }
        Ok(Next::Continue)
    }

    async fn send_error(&mut self, code: ErrorCode, message: &str) -> Result<(), axum::Error> {
        let frame = ServerFrame::Error {
            code,
            message: message.to_owned(),
        };
        self.sink.send(text_frame(&frame)).await
    }
}

fn text_frame(frame: &ServerFrame) -> WsMessage {
    WsMessage::Text(serde_json::to_string(frame).expect("server frames always serialize").into())
}

/// Wraps the shared, already-serialized bytes of a message frame.
fn shared_frame(frame: &bytes::Bytes) -> WsMessage {
    WsMessage::Text(Utf8Bytes::try_from(frame.clone()).expect("frames are serialized from JSON text"))
}

async fn close_with(sink: &mut Sink, code: u16, reason: &'static str) -> Result<(), axum::Error> {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    sink.send(WsMessage::Close(Some(frame))).await?;
    sink.close().await
}
