//! The WebSocket at `/ws/endpoint/{code}/`: the endpoint code is the
//! credential. This module speaks the protocol over one socket; which
//! connections are in a room and the fan-out to them is `comms_core::hub`,
//! seq and history are the broker's.
//!
//! One task per connection owns the socket whole (not split in halves
//! behind a lock). It waits on three things at once: the room's queue
//! (messages, presence changes, signals, and the hub closing it), the
//! client's frames and the ping timer, and acts on one at a time. Queued
//! frames are written in batches with a single flush, and each frame is the
//! same shared buffer every other member of the room got.

use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use comms_core::broker::RoomRef;
use comms_core::error::ServiceError;
use comms_core::hub::{Delivery, Membership};
use comms_core::limits::ConnectionRateLimiter;
use comms_core::live_endpoint::LiveEndpoint;
use comms_core::message::Outgoing;
use comms_core::message::Receipt;
use comms_core::quotas::SocketPermit;
use comms_core::subscription::{JoinError, JoinTicket, Outbound, Subscription};
use comms_core::usage::Refusal;
use comms_protocol::ws::{close, ClientFrame, Nonce, ServerFrame};
use comms_protocol::ErrorCode;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::{interval, Instant, Interval, MissedTickBehavior};

use crate::error::ApiError;
use crate::extract::{ApiPath, Client, ForeignOrigin};
use crate::state::AppState;

/// Frames written before one flush, at most.
const WRITE_BATCH: usize = 64;
/// Client frames handled together, at most: those already received when
/// the first is read (see `Connection::on_frames`). Half of
/// [`WRITE_BATCH`]: a connection's own messages come back through its
/// queue, and the loop takes turns at reading and writing, so a turn of
/// reading must add less than a turn of writing takes away, or a client
/// sending flat out would fill its own queue and be closed as too slow
/// (with 64 it was, in the benchmark).
const READ_BATCH: usize = 32;
/// Socket read buffer: small, so idle connections stay cheap.
const READ_BUFFER: usize = 1024;
/// How long a closing connection waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Bytes gathered before a socket write; a flush writes whatever is there.
const WRITE_BUFFER: usize = 16 * 1024;

/// The WebSocket route, with and without the trailing slash. Open to
/// other origins like the API, so that a page whose socket failed before
/// opening (browsers tell it no more than 1006) can ask the same address
/// with a plain `GET`: `404` means the code is gone and retrying is
/// pointless, `400` (no upgrade) that it still works. The app's own list of
/// origins is checked either way.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/endpoint/{code}", get(connect))
        .route("/ws/endpoint/{code}/", get(connect))
        .layer(crate::cors::api_layer())
}

#[derive(Debug, Deserialize)]
struct ConnectQuery {
    after_seq: Option<u64>,
}

/// Checks the code (and the page's origin against the app's allow-list)
/// before upgrading, so unknown codes get a plain `404` (before any
/// complaint about the query or a missing upgrade).
#[tracing::instrument(skip_all)]
async fn connect(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    uri: Uri,
    ForeignOrigin(origin): ForeignOrigin,
    Client(client): Client,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    state.failed_auth.admit(client.ip)?;
    let (ticket, claim) = match state.service.ticket(&code, origin.as_deref(), client.ip).await {
        Err(unknown @ ServiceError::NotFound(_)) => return Err(state.failed_auth.failed(client.ip, unknown).into()),
        other => other?,
    };
    // Boxed: the connection's task keeps its arguments for as long as it
    // runs, and the endpoint row is needed only until it has joined.
    let ticket = Box::new(ticket);
    let query = Query::<ConnectQuery>::try_from_uri(&uri)?.0;
    let upgrade = upgrade.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    let limit = state.config.limits.max_message_bytes;
    // Frames up to 16x the limit are read whole so they can be answered with
    // `too_large`; anything bigger is cut off by the WebSocket library.
    let hard_limit = limit.saturating_mul(16).max(1024 * 1024);
    // Counted before the upgrade so a burst of handshakes cannot overshoot
    // a quota; a full one is told after it (see `serve`).
    let admission = state.service.admit_socket(claim).await;
    if admission.is_ok() {
        state.service.claim_single_use(&ticket).await?;
    }
    let tracker = state.sockets.clone();
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| tracker.track_future(serve(socket, state, ticket, admission, query.after_seq)))
        .into_response())
}

/// What to do after handling one client frame.
enum Next {
    Continue,
    Close(u16, &'static str),
    /// The client closed the connection.
    Gone,
}

/// Runs one connection. `admission` is its socket-quota verdict: a full
/// quota is answered by accepting the upgrade and closing at once with
/// 4029, because browsers cannot read the status of a refused handshake.
/// The permit counts the connection until it ends.
async fn serve(
    socket: WebSocket,
    state: AppState,
    ticket: Box<JoinTicket>,
    admission: Result<SocketPermit, JoinError>,
    after_seq: Option<u64>,
) {
    // Matched by reference: the permit stays where it is, in the one slot
    // `admission` already takes in this task, until the connection ends.
    let joined = match admission {
        // Boxed: the join's state does not stay in this task while the
        // connection is idle (see docs/performance.md).
        Ok(ref _permit) => Box::pin(state.service.join(&ticket, after_seq)).await.map_err(join_refusal),
        Err(refused) => {
            state.service.usage().refused(ticket.room.app_id, Refusal::Quota);
            Err(join_refusal(refused))
        }
    };
    // Only the room is kept: the endpoint's state from now on is the
    // membership's, and an idle connection should not carry its row.
    let room = (*ticket).into_room();
    let limits = &state.config.limits;
    let mut connection = Connection {
        state: &state,
        room,
        socket,
        write_timeout: state.config.websocket.write_timeout,
        limiter: ConnectionRateLimiter::new(limits.ws_messages_per_second, limits.ws_burst),
        signal_limiter: ConnectionRateLimiter::new(limits.ws_signals_per_second, limits.ws_signals_per_second),
        member_id: 0,
    };
    let ending = match joined {
        Ok(subscription) => connection.pump(subscription).await,
        Err(refusal) => Ok(Some(refusal)),
    };
    let result = match ending {
        Ok(Some((code, reason))) => connection.close_politely(code, reason).await,
        Ok(None) => Ok(()),
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with a socket error");
    }
}

struct Connection<'a> {
    state: &'a AppState,
    /// The room the connection joined.
    room: RoomRef,
    socket: WebSocket,
    /// Every write gives up after this: a client that stops reading must not
    /// hold its task, and the close it is owed, forever.
    write_timeout: Duration,
    limiter: ConnectionRateLimiter,
    signal_limiter: ConnectionRateLimiter,
    /// The connection's id in the hub, which its signals carry.
    member_id: u64,
}

impl Connection<'_> {
    /// Sends the close frame and waits briefly for the client's, so the
    /// client reads the code before the TCP connection goes away.
    async fn close_politely(&mut self, code: u16, reason: &'static str) -> Result<(), axum::Error> {
        self.close(code, reason).await?;
        let socket = &mut self.socket;
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(frame)) = socket.next().await {
                if matches!(frame, WsMessage::Close(_)) {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }

    /// Writes frames in chunks of [`WRITE_BATCH`]: one flush, and one write
    /// timeout, per chunk.
    async fn write_all(&mut self, frames: Vec<WsMessage>) -> Result<(), axum::Error> {
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            let chunk: Vec<WsMessage> = frames.by_ref().take(WRITE_BATCH).collect();
            let socket = &mut self.socket;
            within(self.write_timeout, async move {
                for frame in chunk {
                    socket.feed(frame).await?;
                }
                socket.flush().await
            })
            .await?;
        }
        Ok(())
    }

    /// Runs the protocol until the connection should end: `Some` with the
    /// close code to send, `None` when the client is already gone.
    async fn pump(&mut self, subscription: Subscription) -> Result<Option<(u16, &'static str)>, axum::Error> {
        let Subscription { membership, presence: _counted_as_member, covered_presence, welcome, backlog, covered_seq } =
            subscription;
        self.member_id = membership.member_id();
        // Whether a queued frame is already covered by the welcome (its
        // `last_seq` and backlog, its `members`) and must be skipped.
        let covered = |outgoing: &Outgoing| outgoing.covered(covered_seq, covered_presence);
        let mut frames = Vec::with_capacity(backlog.len() + 1);
        frames.push(text_frame(&welcome));
        frames.extend(backlog.iter().map(|message| shared_frame(message.frame().clone())));
        drop(backlog);
        // Boxed, like the other rare awaits below: an idle connection's
        // task then holds only its small waiting state, not the largest
        // future it ever awaits (see docs/performance.md).
        Box::pin(self.write_all(frames)).await?;

        let ping_every = self.state.config.websocket.ping_interval;
        let idle_timeout = self.state.config.websocket.idle_timeout;
        let mut ping = interval(ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();

        let mut read_first = true;
        loop {
            read_first = !read_first;
            match next_event(&mut self.socket, &membership, &mut ping, read_first).await {
                Event::Received(incoming) => {
                    let first = match incoming {
                        Some(Ok(frame)) => frame,
                        Some(Err(err)) => return self.unreadable(&err).await,
                        None => return Ok(None),
                    };
                    // Turns alternate, so the hub may have closed the
                    // connection with a read ready: a deleted endpoint must
                    // not publish.
                    if let Some(reason) = membership.closed() {
                        return Ok(Some((reason.code(), reason.text())));
                    }
                    last_heard = Instant::now();
                    let budget = self.state.config.limits.max_message_bytes;
                    let (frames, after) = received_with(first, &mut self.socket, budget);
                    match Box::pin(self.on_frames(frames, &membership.endpoint)).await? {
                        Next::Continue => {}
                        Next::Close(code, text) => return Ok(Some((code, text))),
                        Next::Gone => return Ok(None),
                    }
                    match after {
                        Some(ReadEnd::Failed(err)) => return self.unreadable(&err).await,
                        Some(ReadEnd::Ended) => return Ok(None),
                        None => {}
                    }
                }
                Event::Tick => {
                    let silent = last_heard.elapsed();
                    if silent >= idle_timeout {
                        return Ok(Some((close::PING_TIMEOUT, "no answer to pings")));
                    }
                    // Half an interval, so a tick landing just short of a
                    // full interval of silence still pings.
                    if silent >= ping_every / 2 {
                        let ping = self.socket.send(WsMessage::Ping(Default::default()));
                        Box::pin(within(self.write_timeout, ping)).await?;
                    }
                }
                Event::Delivered(delivery) => {
                    let first = match delivery {
                        Delivery::Frame(first) => first,
                        Delivery::Closed(reason) => return Ok(Some((reason.code(), reason.text()))),
                    };
                    // Not boxed, unlike the rarer writes: this is the fan-out
                    // path, woken for every delivery. A closing met on the
                    // way ends the batch, and the next turn reads it again.
                    let socket = &mut self.socket;
                    within(self.write_timeout, async {
                        let mut next = Some(first);
                        let mut written = 0;
                        while let Some(outgoing) = next.take() {
                            if !covered(&outgoing) {
                                socket.feed(shared_frame(outgoing.frame)).await?;
                            }
                            written += 1;
                            if written < WRITE_BATCH {
                                next = match membership.try_next() {
                                    Some(Delivery::Frame(outgoing)) => Some(outgoing),
                                    _ => None,
                                };
                            }
                        }
                        socket.flush().await
                    })
                    .await?;
                }
            }
        }
    }

    /// Answers a read that failed: a frame over the library's hard size
    /// limit is still worth a `too_large` and a 1009 close; anything else
    /// means the client is gone.
    async fn unreadable(&mut self, err: &axum::Error) -> Result<Option<(u16, &'static str)>, axum::Error> {
        if !is_over_capacity(err) {
            return Ok(None);
        }
        self.send_error(ErrorCode::TooLarge, "frame over the size limit", None).await?;
        Ok(Some((close::TOO_BIG, "message too large")))
    }

    /// Handles frames received together, in order. Consecutive messages,
    /// each checked on its own (size, rate), are published together: a
    /// client sending back to back costs the broker one round trip for all
    /// of them. Anything else is handled after the messages before it are
    /// published.
    async fn on_frames(&mut self, frames: Vec<WsMessage>, endpoint: &LiveEndpoint) -> Result<Next, axum::Error> {
        let mut batch = Vec::new();
        for frame in frames {
            match self.on_frame(frame, endpoint, &mut batch).await? {
                Next::Continue => {}
                ending => return Ok(ending),
            }
        }
        self.publish(&mut batch, endpoint).await?;
        Ok(Next::Continue)
    }

    /// Handles one frame; a message joins `batch`, and anything answered
    /// or ending the connection publishes `batch` first.
    async fn on_frame(
        &mut self,
        frame: WsMessage,
        endpoint: &LiveEndpoint,
        batch: &mut Vec<Outbound>,
    ) -> Result<Next, axum::Error> {
        match frame {
            WsMessage::Text(text) => self.on_text(text.as_str(), endpoint, batch).await,
            WsMessage::Binary(bytes) => {
                self.publish(batch, endpoint).await?;
                if let Some(next) = self.refuse_oversized(bytes.len(), None).await? {
                    return Ok(next);
                }
                self.send_error(ErrorCode::Invalid, "binary frames are not supported; send JSON text", None).await?;
                Ok(Next::Continue)
            }
            // The library queues the pong; flushing sends it now.
            WsMessage::Ping(_) => within(self.write_timeout, self.socket.flush()).await.map(|()| Next::Continue),
            WsMessage::Pong(_) => Ok(Next::Continue),
            // The library answers the client's close; flushing sends it.
            WsMessage::Close(_) => {
                self.publish(batch, endpoint).await?;
                let _ = within(self.write_timeout, self.socket.close()).await;
                Ok(Next::Gone)
            }
        }
    }

    /// Answers a frame over the size limit with `too_large` (naming the
    /// message's `nonce`, if it had one) and a 1009 close.
    async fn refuse_oversized(&mut self, size: usize, nonce: Option<Nonce>) -> Result<Option<Next>, axum::Error> {
        let limit = self.state.config.limits.max_message_bytes;
        if size <= limit {
            return Ok(None);
        }
        let reason = format!("frame is {size} bytes, over the limit of {limit} bytes");
        self.send_error(ErrorCode::TooLarge, &reason, nonce).await?;
        Ok(Some(Next::Close(close::TOO_BIG, "message too large")))
    }

    /// Handles a client's text frame through `endpoint` as the app last
    /// changed it: a message within the rate joins `batch`; anything else
    /// publishes `batch` first.
    async fn on_text(
        &mut self,
        text: &str,
        endpoint: &LiveEndpoint,
        batch: &mut Vec<Outbound>,
    ) -> Result<Next, axum::Error> {
        // Not parsed when over the size limit.
        let parsed = (text.len() <= self.state.config.limits.max_message_bytes).then(|| ClientFrame::parse(text));
        let parsed = match parsed {
            Some(Ok(ClientFrame::Message { payload, nonce })) if self.limiter.allow() => {
                batch.push(Outbound { payload, nonce });
                return Ok(Next::Continue);
            }
            other => other,
        };
        self.publish(batch, endpoint).await?;
        let frame = match parsed {
            None => {
                let nonce = Nonce::of_oversized_frame(text);
                return Ok(self.refuse_oversized(text.len(), nonce).await?.unwrap_or(Next::Continue));
            }
            Some(Err(reason)) => {
                self.send_error(ErrorCode::Invalid, &reason, None).await?;
                return Ok(Next::Continue);
            }
            Some(Ok(frame)) => frame,
        };
        let sent = match frame {
            ClientFrame::Message { nonce, .. } => {
                return self.refuse_rate("sending too fast; message not published", nonce).await;
            }
            ClientFrame::Signal(payload) => {
                if !self.signal_limiter.allow() {
                    return self.refuse_rate("signalling too fast; signal not sent", None).await;
                }
                self.state.service.signal(&self.room, endpoint, self.member_id, payload).await
            }
            // Counted with messages: a redaction is a write to the room.
            ClientFrame::Redact(seq) => {
                if !self.limiter.allow() {
                    return self.refuse_rate("sending too fast; not redacted", None).await;
                }
                self.state.service.redact_as_endpoint(&self.room, endpoint, seq).await
            }
        };
        self.report(sent).await?;
        Ok(Next::Continue)
    }

    /// Publishes the messages of `batch`, emptying it, and answers each:
    /// an `ack` for one that carried a nonce, an error frame (with its
    /// nonce) for one that failed.
    async fn publish(&mut self, batch: &mut Vec<Outbound>, endpoint: &LiveEndpoint) -> Result<(), axum::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let messages = std::mem::take(batch);
        let nonces: Vec<Option<Nonce>> = messages.iter().map(|message| message.nonce.clone()).collect();
        let results = self.state.service.publish_all_as_endpoint(&self.room, endpoint, messages).await;
        for (sent, nonce) in results.into_iter().zip(nonces) {
            match (sent, nonce) {
                (Ok(Receipt { id, seq }), Some(nonce)) => {
                    within(self.write_timeout, self.socket.send(text_frame(&ServerFrame::Ack { nonce, id, seq })))
                        .await?;
                }
                (Ok(_), None) => {}
                (Err(err), nonce) => self.refuse(err, nonce).await?,
            }
        }
        Ok(())
    }

    /// Answers a write that failed with its error frame, counting a
    /// refusal in the app's usage.
    async fn report(&mut self, sent: Result<(), ServiceError>) -> Result<(), axum::Error> {
        match sent {
            Ok(()) => Ok(()),
            Err(err) => self.refuse(err, None).await,
        }
    }

    /// Answers a refused write with its error frame (naming the message's
    /// nonce, if it had one), counting the refusal in the app's usage.
    async fn refuse(&mut self, err: ServiceError, nonce: Option<Nonce>) -> Result<(), axum::Error> {
        if let Some(why) = err.refusal() {
            self.state.service.usage().refused(self.room.app_id, why);
        }
        match err {
            ServiceError::Internal(err) => {
                tracing::error!(error = ?err, "publishing failed");
                self.send_error(ErrorCode::Internal, "internal error; not sent", nonce).await
            }
            err => self.send_error(err.code(), &err.to_string(), nonce).await,
        }
    }

    async fn refuse_rate(&mut self, message: &str, nonce: Option<Nonce>) -> Result<Next, axum::Error> {
        self.state.service.usage().refused(self.room.app_id, Refusal::Rate);
        self.send_error(ErrorCode::RateLimited, message, nonce).await?;
        Ok(Next::Continue)
    }

    async fn send_error(&mut self, code: ErrorCode, message: &str, nonce: Option<Nonce>) -> Result<(), axum::Error> {
        let frame = ServerFrame::Error { code, message: message.to_owned(), nonce };
        within(self.write_timeout, self.socket.send(text_frame(&frame))).await
    }

    async fn close(&mut self, code: u16, reason: &'static str) -> Result<(), axum::Error> {
        within(self.write_timeout, close_with(&mut self.socket, code, reason)).await
    }
}

/// What the connection acts on next.
enum Event {
    /// A frame from the client, or the end of its stream.
    Received(Option<Result<WsMessage, axum::Error>>),
    /// A frame from the room, or the hub closing the connection.
    Delivered(Delivery),
    /// The ping timer.
    Tick,
}

/// Waits for the next event: the ping timer first (it is rarely due), then
/// the client's frames and the room's in the order `read_first` says, which
/// the caller alternates so that neither a busy room nor a fast-sending
/// client starves the other direction. Borrows the socket only while
/// waiting, so acting on the event has it whole.
async fn next_event(socket: &mut WebSocket, membership: &Membership, ping: &mut Interval, read_first: bool) -> Event {
    poll_fn(|cx| {
        if ping.poll_tick(cx).is_ready() {
            return Poll::Ready(Event::Tick);
        }
        for read in [read_first, !read_first] {
            if read {
                if let Poll::Ready(incoming) = socket.poll_next_unpin(cx) {
                    return Poll::Ready(Event::Received(incoming));
                }
            } else if let Poll::Ready(delivery) = membership.poll_next(cx) {
                return Poll::Ready(Event::Delivered(delivery));
            }
        }
        Poll::Pending
    })
    .await
}

/// How reading the client's frames stopped.
enum ReadEnd {
    /// The client closed the connection.
    Ended,
    /// A read failed.
    Failed(axum::Error),
}

/// `first` and the frames already received after it, without waiting (at
/// most [`READ_BATCH`] in all): what the client sent back to back. Reading
/// stops once the frames hold `budget` bytes, so a client sending large
/// frames makes the connection hold little more than one at a time, as
/// before; and at the end of the stream or a failed read, returned with
/// them, to be handled after them.
fn received_with(first: WsMessage, socket: &mut WebSocket, budget: usize) -> (Vec<WsMessage>, Option<ReadEnd>) {
    let mut held = frame_bytes(&first);
    let mut frames = vec![first];
    while frames.len() < READ_BATCH && held < budget {
        match socket.next().now_or_never() {
            Some(Some(Ok(frame))) => {
                held += frame_bytes(&frame);
                frames.push(frame);
            }
            Some(Some(Err(err))) => return (frames, Some(ReadEnd::Failed(err))),
            Some(None) => return (frames, Some(ReadEnd::Ended)),
            None => break,
        }
    }
    (frames, None)
}

/// The bytes a received frame holds.
fn frame_bytes(frame: &WsMessage) -> usize {
    match frame {
        WsMessage::Text(text) => text.len(),
        WsMessage::Binary(bytes) | WsMessage::Ping(bytes) | WsMessage::Pong(bytes) => bytes.len(),
        WsMessage::Close(_) => 0,
    }
}

/// The close code and reason for a connection that could not join.
fn join_refusal(refused: JoinError) -> (u16, &'static str) {
    match refused {
        JoinError::Refused(reason) => (reason.code(), reason.text()),
        JoinError::OverQuota(full) => (close::QUOTA_EXCEEDED, full.quota.close_reason()),
        JoinError::EndpointFull(_) => (close::QUOTA_EXCEEDED, "max_connections reached"),
        JoinError::Failed(ServiceError::Unavailable(reason)) => {
            tracing::warn!(%reason, "joining a room failed: a backing service is down");
            (close::TRY_AGAIN_LATER, "service unavailable, reconnect later")
        }
        JoinError::Failed(err) => {
            tracing::error!(error = ?err, "joining a room failed");
            (close::INTERNAL_ERROR, "internal error")
        }
    }
}

/// Runs one socket write, failing it if it takes longer than `limit`.
async fn within(limit: Duration, write: impl Future<Output = Result<(), axum::Error>>) -> Result<(), axum::Error> {
    tokio::time::timeout(limit, write).await.map_err(|_| axum::Error::new("socket write timed out"))?
}

/// Whether a read failed because the frame was over the library's hard
/// size limit, which is still worth a `too_large` answer.
fn is_over_capacity(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

fn text_frame(frame: &ServerFrame) -> WsMessage {
    WsMessage::Text(serde_json::to_string(frame).expect("server frames always serialize").into())
}

/// Wraps the shared, already-serialized bytes of a message frame.
fn shared_frame(frame: bytes::Bytes) -> WsMessage {
    WsMessage::Text(Utf8Bytes::try_from(frame).expect("frames are serialized from JSON text"))
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) -> Result<(), axum::Error> {
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    socket.send(WsMessage::Close(Some(frame))).await?;
    socket.close().await
}
