//! [`EndpointConnection`]: a WebSocket joined through one endpoint, as a
//! stream of typed [`Event`]s, that reconnects by itself and resumes where
//! it stopped, and whose sends are acknowledged and never lost or doubled.
//!
//! One task owns the socket. It delivers events into a bounded channel (a
//! consumer that stops reading slows the socket down, the server may then
//! close it with 1013, and the task resumes), and takes sends and `close`
//! from any number of [`EndpointSender`]s. After a drop it reconnects with
//! exponential backoff and jitter, asking for `?after_seq=` the last seq it
//! delivered and skipping anything at or below it, so across reconnects
//! every message is delivered once, in order.
//!
//! Each [`EndpointSender::send`] carries a fresh nonce and resolves on the server's
//! `ack`. Sends not acknowledged when the socket drops, and those made
//! while it is away, wait in a bounded queue and are written again after
//! the next welcome with the same nonce: the server answers a repeat with
//! the first publish's ack and publishes nothing new, so each is published
//! exactly once (see `docs/protocol.md#acknowledged-sends`).
//!
//! It stops for good ([`State::Closed`]) when the endpoint, its room or its
//! app is gone or the endpoint expired (close codes 4001–4004, or an
//! upgrade refused with 404), when a quota or the endpoint's
//! `max_connections` refused the socket (4029: retrying at once would be
//! refused again), when the server closes normally (1000), when
//! [`EndpointSender::close`] is called, or after [`Reconnect::max_attempts`]
//! failed attempts.
//!
//! The member list of a presence room ([`EndpointConnection::members`]) and
//! the endpoint as it is now ([`EndpointConnection::endpoint`]) are kept on
//! the consumer's side, from the events as they are read, so they are
//! always in step with what the consumer has seen: after reading a
//! [`Event::Join`], the member is listed; after an [`Event::Endpoint`], the
//! new permission shows. Each welcome replaces both whole, which is what
//! makes them right again after a reconnect.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use comms_protocol::ws::close;
use futures_util::{SinkExt, Stream, StreamExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;
use crate::generated::{ErrorCode, Member, Message, Permission, Sender};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Events buffered for a consumer before the socket waits for it.
const EVENT_BUFFER: usize = 1024;

/// How reconnecting waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Wait before the first retry; doubled after each failed attempt.
    pub initial_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` never does.
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self { initial_delay: Duration::from_millis(250), max_delay: Duration::from_secs(10), max_attempts: None }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (1, 2, …): the doubled delay,
    /// capped, of which a random half is taken off so clients dropped
    /// together do not come back together.
    fn delay(&self, attempt: u32) -> Duration {
        let doubled = self.initial_delay.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let full = doubled.min(self.max_delay);
        full / 2 + full.mul_f64(rand::rng().random::<f64>() / 2.0)
    }
}

/// How [`EndpointConnection::connect_with`] connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Start after this seq: the retained messages after it come first.
    pub after_seq: Option<u64>,
    /// How reconnecting waits.
    pub reconnect: Reconnect,
    /// Sends waiting for their ack at most, those queued while the socket
    /// is away included; past it [`EndpointSender::send`] fails with
    /// [`Error::QueueFull`] (default 1000).
    pub max_pending_sends: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { after_seq: None, reconnect: Reconnect::default(), max_pending_sends: 1000 }
    }
}

/// Where a connection stands. It starts [`State::Connecting`], is
/// [`State::Open`] from each welcome, [`State::Reconnecting`] from a drop
/// until the next welcome, and ends [`State::Closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The first socket is open or opening; no welcome yet.
    Connecting,
    /// Joined: sends are written at once.
    Open,
    /// The socket dropped; sends wait in the queue for the next welcome.
    Reconnecting,
    /// Ended for good; no events follow [`Event::Closed`].
    Closed,
}

/// What the server gave a message sent with [`EndpointSender::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The message's id.
    pub id: String,
    /// Its seq in the room.
    pub seq: u64,
}

/// The first frame of every connection (again after each reconnect).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Welcome {
    /// The room joined.
    pub room: String,
    /// The endpoint joined with.
    pub endpoint: WelcomeEndpoint,
    /// The newest seq in the room.
    pub last_seq: u64,
    /// The oldest seq still retained: messages were missed only when it is
    /// greater than the `after_seq` resumed from plus one.
    pub first_seq: u64,
    /// In a presence room: its members, this endpoint included, in the
    /// order they joined. `None` in a room without presence.
    #[serde(default)]
    pub members: Option<Vec<Member>>,
}

/// The endpoint a connection joined with, as the welcome shows it and as
/// an [`Event::Endpoint`] shows it again after the app changed it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WelcomeEndpoint {
    /// Public id: the `sender.id` of what this connection sends.
    pub id: String,
    /// Whether this connection may send ([`Permission::ReadAndWrite`]),
    /// and redact too ([`Permission::Moderate`]).
    pub permission: Permission,
    /// Stamped on every message this connection sends.
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// When the code stops working (RFC 3339 UTC with milliseconds; then
    /// the connection closes with 4004); `None` when it never does.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// An error frame: the server refused a signal or a redaction this
/// connection sent. (A refused [`EndpointSender::send`] fails with
/// [`Error::Refused`] instead.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorFrame {
    /// E.g. [`ErrorCode::ReadOnly`] or [`ErrorCode::Invalid`].
    pub code: ErrorCode,
    /// The server's explanation.
    pub message: String,
    /// The nonce of the refused send, when it carried one.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// An ephemeral signal from another connection of the room ("typing…", a
/// cursor): no seq, never stored or replayed, never sent back to the
/// connection that sent it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Signal {
    /// The sending endpoint, stamped by the server (its meta cannot be
    /// forged).
    pub sender: Sender,
    /// The payload exactly as the sender gave it.
    pub signal: serde_json::Value,
}

/// A message of the room was redacted by a moderator or the app: its
/// payload is gone from history (where it now has `redacted_at` and a
/// `null` payload); hide it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Redaction {
    /// The redacted message's seq.
    pub seq: u64,
    /// The redacted message's id.
    pub id: String,
}

/// Why a connection ended for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The server's close code (1000 a normal close, 4001 endpoint
    /// deleted, 4002 room deleted, 4003 app no longer approved, 4004
    /// endpoint expired, 4029 a socket quota or the endpoint's
    /// `max_connections` was full), or `None` when the client closed or
    /// gave up, or a reconnect was refused with 404 because the code no
    /// longer works.
    pub code: Option<u16>,
    /// A human explanation.
    pub reason: String,
}

/// What a connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Joined (first, and after every reconnect).
    Welcome(Welcome),
    /// A message of the room; each seq once, in order.
    Message(Message),
    /// In a presence room: an endpoint's first connection opened (sent for
    /// other endpoints only; this one is in the welcome's `members`).
    Join(Member),
    /// In a presence room: an endpoint's last connection closed and none
    /// came back within the server's grace period (`connections` is 0).
    Leave(Member),
    /// A signal from another connection of the room.
    Signal(Signal),
    /// The app changed this connection's endpoint (its permission, meta or
    /// expiry); it applies from now on, to this connection's next sends.
    Endpoint(WelcomeEndpoint),
    /// A message of the room was redacted; hide it.
    Redaction(Redaction),
    /// The server refused a signal or a redaction this connection sent.
    Error(ErrorFrame),
    /// The socket dropped; the next attempt follows after `delay`.
    Reconnecting {
        /// Failed attempts so far in a row (1 for the first retry).
        attempt: u32,
        /// Wait before it.
        delay: Duration,
        /// Why the socket dropped.
        reason: String,
    },
    /// The connection ended for good; no events follow.
    Closed(Closed),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame {
    Welcome(Welcome),
    Message(Message),
    Ack { nonce: String, id: String, seq: u64 },
    Join { member: Member },
    Leave { member: Member },
    Signal(Signal),
    Endpoint { endpoint: WelcomeEndpoint },
    Redaction(Redaction),
    Error(ErrorFrame),
}

/// `{"message": payload, "nonce": …}`, `{"signal": payload}` or
/// `{"redact": seq}`.
#[derive(Serialize)]
#[serde(untagged)]
enum ClientFrame<'a, T: Serialize> {
    Message { message: &'a T, nonce: &'a str },
    Signal { signal: &'a T },
    Redact { redact: u64 },
}

/// The member list of a presence room as the events read so far give it:
/// replaced by each welcome, then changed by each join and leave.
#[derive(Debug, Default)]
struct Members(Option<Vec<Member>>);

impl Members {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Welcome(welcome) => self.0.clone_from(&welcome.members),
            Event::Join(member) => {
                // The server sends one join per endpoint; should one come
                // twice, the newer entry replaces the older in its place.
                if let Some(members) = &mut self.0 {
                    match members.iter_mut().find(|known| known.id == member.id) {
                        Some(known) => known.clone_from(member),
                        None => members.push(member.clone()),
                    }
                }
            }
            Event::Leave(member) => {
                if let Some(members) = &mut self.0 {
                    members.retain(|known| known.id != member.id);
                }
            }
            Event::Message(_)
            | Event::Signal(_)
            | Event::Endpoint(_)
            | Event::Redaction(_)
            | Event::Error(_)
            | Event::Reconnecting { .. }
            | Event::Closed(_) => {}
        }
    }
}

enum Command {
    /// A message frame (its nonce inside), answered on its ack.
    Send {
        nonce: String,
        frame: String,
        done: oneshot::Sender<Result<SendReceipt, Error>>,
    },
    /// A signal or a redaction: written now or not at all.
    Write(String, oneshot::Sender<Result<(), Error>>),
    Close,
}

/// The sending half of a connection: cheap to clone, for as many tasks as
/// need to send while one reads the events. It stops working when the
/// [`EndpointConnection`] it came from is dropped.
#[derive(Clone)]
pub struct EndpointSender {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<State>,
}

impl EndpointSender {
    /// Sends `payload` as a message and resolves once the server published
    /// it, with its id and seq. It also comes back as an
    /// [`Event::Message`] with the server's time and this endpoint's meta.
    ///
    /// While the connection is away the send waits in a queue, and a send
    /// whose ack was lost in a drop is written again after the next
    /// welcome, with the same nonce: the server publishes each once. A
    /// send still waiting when the server's nonce window (120 s by
    /// default) has passed may be published twice when written again.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] with the server's code ([`ErrorCode::ReadOnly`],
    /// [`ErrorCode::BudgetExhausted`], [`ErrorCode::TooLarge`], …);
    /// [`Error::QueueFull`] when [`ConnectOptions::max_pending_sends`] are
    /// already waiting (nothing was sent); [`Error::Closed`] when the
    /// connection ended before the ack (the message may or may not have
    /// been published); [`Error::Payload`] if `payload` cannot be
    /// serialized.
    pub async fn send(&self, payload: &impl Serialize) -> Result<SendReceipt, Error> {
        let nonce = new_nonce();
        let frame = serde_json::to_string(&ClientFrame::Message { message: payload, nonce: &nonce })?;
        let (done, receipt) = oneshot::channel();
        self.commands.send(Command::Send { nonce, frame, done }).await.map_err(|_| Error::Closed)?;
        receipt.await.map_err(|_| Error::Closed)?
    }

    /// Sends `payload` as a signal: every other connection of the room gets
    /// it as an [`Event::Signal`] (this one does not); it is never stored
    /// or replayed. Unlike [`EndpointSender::send`] it is sent at most once and not
    /// acknowledged: while the connection is away it is not sent and not
    /// kept for later, as a signal only matters now.
    ///
    /// # Errors
    ///
    /// [`Error::NotConnected`] unless the connection is [`State::Open`]
    /// (nothing was sent), [`Error::Payload`] if `payload` cannot be
    /// serialized, [`Error::WebSocket`] if the write failed. The server
    /// refuses a read-only endpoint's signal, one over 1 KiB or too many
    /// in a second with an [`Event::Error`].
    pub async fn send_signal(&self, payload: &impl Serialize) -> Result<(), Error> {
        self.write(&ClientFrame::Signal { signal: payload }).await
    }

    /// Redacts the message with seq `seq`, as a moderator: every connection
    /// of the room gets an [`Event::Redaction`], and history keeps the
    /// message without its payload. Sent at most once, like
    /// [`EndpointSender::send_signal`].
    ///
    /// # Errors
    ///
    /// As [`EndpointSender::send_signal`]. The server refuses it with an
    /// [`Event::Error`]: [`ErrorCode::Forbidden`] unless this endpoint's
    /// permission is [`Permission::Moderate`], [`ErrorCode::NotFound`] for a
    /// seq that is not retained.
    pub async fn redact(&self, seq: u64) -> Result<(), Error> {
        let frame: ClientFrame<'_, ()> = ClientFrame::Redact { redact: seq };
        self.write(&frame).await
    }

    async fn write<T: Serialize>(&self, frame: &ClientFrame<'_, T>) -> Result<(), Error> {
        let text = serde_json::to_string(frame)?;
        let (done, result) = oneshot::channel();
        self.commands.send(Command::Write(text, done)).await.map_err(|_| Error::NotConnected)?;
        result.await.map_err(|_| Error::NotConnected)?
    }

    /// Closes the socket (code 1000) and stops reconnecting; sends still
    /// waiting fail with [`Error::Closed`]. The events still yield what was
    /// received before, then [`Event::Closed`].
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }

    /// The connection's state now.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// A receiver of the state: `changed().await` wakes on each change.
    pub fn state_changes(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Resolves once the connection is [`State::Open`] (at once if it is).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if it ends first.
    pub async fn ready(&self) -> Result<(), Error> {
        let mut state = self.state.clone();
        match state.wait_for(|state| matches!(state, State::Open | State::Closed)).await.map(|state| *state) {
            Ok(State::Open) => Ok(()),
            _ => Err(Error::Closed),
        }
    }
}

/// A live connection through one endpoint. Read it as a [`Stream`] of
/// [`Event`]s (or with [`EndpointConnection::next_event`]); send through
/// it, or through the [`EndpointSender`]s of [`EndpointConnection::sender`] from
/// other tasks. Dropping it closes the socket.
pub struct EndpointConnection {
    events: mpsc::Receiver<Event>,
    sender: EndpointSender,
    /// Updated by `poll_next` from each event it hands out.
    members: Members,
    /// Set by `poll_next` from each welcome and endpoint event.
    endpoint: Option<WelcomeEndpoint>,
}

impl EndpointConnection {
    /// Connects to an endpoint's `ws_url` (`ws://…/ws/endpoint/{code}/`,
    /// as the REST API returns it) with the default [`ConnectOptions`].
    ///
    /// # Errors
    ///
    /// [`Error::EndpointGone`] when the code is unknown or deleted,
    /// [`Error::InvalidUrl`] for a URL that is not `ws://` or `wss://`,
    /// [`Error::WebSocket`] when the server cannot be reached.
    pub async fn connect(ws_url: &str) -> Result<Self, Error> {
        Self::connect_with(ws_url, ConnectOptions::default()).await
    }

    /// Connects by endpoint code to the server at `base_url` (`http(s)://…`,
    /// turned into `ws(s)://…`).
    ///
    /// # Errors
    ///
    /// As [`EndpointConnection::connect`].
    pub async fn connect_code(base_url: &str, code: &str) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/');
        let ws_base = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            return Err(Error::InvalidUrl(format!("{base_url:?} is not an http:// or https:// address")));
        };
        Self::connect(&format!("{ws_base}/ws/endpoint/{}/", crate::client::segment(code))).await
    }

    /// Connects to `ws_url` as `options` say. Resolves once the socket is
    /// open; the welcome is the first event ([`EndpointSender::ready`] waits for
    /// it).
    ///
    /// # Errors
    ///
    /// As [`EndpointConnection::connect`].
    pub async fn connect_with(ws_url: &str, options: ConnectOptions) -> Result<Self, Error> {
        let base = ws_url.split('?').next().unwrap_or(ws_url).to_owned();
        if !(base.starts_with("ws://") || base.starts_with("wss://")) {
            return Err(Error::InvalidUrl(format!("{ws_url:?} is not a ws:// or wss:// address")));
        }
        let socket = open(&base, options.after_seq).await?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (commands, commands_rx) = mpsc::channel(16);
        let (state_tx, state) = watch::channel(State::Connecting);
        let worker = Worker {
            base,
            last_seq: options.after_seq,
            reconnect: options.reconnect,
            max_pending: options.max_pending_sends,
            pending: VecDeque::new(),
            state: state_tx,
            events: events_tx,
            commands: commands_rx,
        };
        tokio::spawn(worker.run(socket));
        Ok(Self { events, sender: EndpointSender { commands, state }, members: Members::default(), endpoint: None })
    }

    /// A sender for other tasks: the same connection, cloneable.
    pub fn sender(&self) -> EndpointSender {
        self.sender.clone()
    }

    /// [`EndpointSender::send`]: resolves with the message's id and seq once the
    /// server published it.
    ///
    /// # Errors
    ///
    /// As [`EndpointSender::send`].
    pub async fn send(&self, payload: &impl Serialize) -> Result<SendReceipt, Error> {
        self.sender.send(payload).await
    }

    /// [`EndpointSender::send_signal`].
    ///
    /// # Errors
    ///
    /// As [`EndpointSender::send_signal`].
    pub async fn send_signal(&self, payload: &impl Serialize) -> Result<(), Error> {
        self.sender.send_signal(payload).await
    }

    /// [`EndpointSender::redact`].
    ///
    /// # Errors
    ///
    /// As [`EndpointSender::redact`].
    pub async fn redact(&self, seq: u64) -> Result<(), Error> {
        self.sender.redact(seq).await
    }

    /// [`EndpointSender::close`].
    pub async fn close(&self) {
        self.sender.close().await;
    }

    /// [`EndpointSender::state`].
    pub fn state(&self) -> State {
        self.sender.state()
    }

    /// [`EndpointSender::ready`].
    ///
    /// # Errors
    ///
    /// As [`EndpointSender::ready`].
    pub async fn ready(&self) -> Result<(), Error> {
        self.sender.ready().await
    }

    /// The next event; `None` after [`Event::Closed`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.next().await
    }

    /// The members of a presence room, in the order they joined, this
    /// endpoint included, as of the events read so far; `None` before the
    /// first welcome is read and in a room without presence.
    ///
    /// While the connection is away (after [`Event::Reconnecting`]) this is
    /// the last list known; the next welcome replaces it whole, so members
    /// who left or joined meanwhile are right again, though no
    /// [`Event::Join`] or [`Event::Leave`] is made up for them. A member's
    /// `connections` is as of its welcome or join: the server announces
    /// only an endpoint's first connection and its leaving.
    pub fn members(&self) -> Option<&[Member]> {
        self.members.0.as_deref()
    }

    /// This connection's endpoint as of the events read so far: from the
    /// last welcome, or the last [`Event::Endpoint`] after it; `None` before
    /// the first welcome is read.
    pub fn endpoint(&self) -> Option<&WelcomeEndpoint> {
        self.endpoint.as_ref()
    }
}

impl Stream for EndpointConnection {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let polled = self.events.poll_recv(cx);
        if let Poll::Ready(Some(event)) = &polled {
            self.members.apply(event);
            match event {
                Event::Welcome(welcome) => self.endpoint = Some(welcome.endpoint.clone()),
                Event::Endpoint(endpoint) => self.endpoint = Some(endpoint.clone()),
                _ => {}
            }
        }
        polled
    }
}

/// A fresh nonce: 128 random bits as 32 hex digits.
fn new_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

async fn open(base: &str, after_seq: Option<u64>) -> Result<Socket, Error> {
    let url = match after_seq {
        Some(seq) => format!("{base}?after_seq={seq}"),
        None => base.to_owned(),
    };
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) if response.status() == StatusCode::NOT_FOUND => {
            Err(Error::EndpointGone)
        }
        Err(err) => Err(err.into()),
    }
}

/// How one socket ended.
enum Ending {
    /// For good: tell the consumer and stop.
    Final(Closed),
    /// Try again.
    Dropped(String),
    /// The consumer is gone: stop quietly.
    Abandoned,
}

/// A send waiting for its ack, written or not yet.
struct Pending {
    nonce: String,
    frame: String,
    done: oneshot::Sender<Result<SendReceipt, Error>>,
}

/// The task owning the socket.
struct Worker {
    base: String,
    /// The last seq delivered, where a reconnect resumes.
    last_seq: Option<u64>,
    reconnect: Reconnect,
    max_pending: usize,
    /// Sends not acknowledged yet, in the order they were made.
    pending: VecDeque<Pending>,
    state: watch::Sender<State>,
    events: mpsc::Sender<Event>,
    commands: mpsc::Receiver<Command>,
}

impl Worker {
    async fn run(mut self, first: Socket) {
        let mut socket = Some(first);
        let mut attempt = 0;
        let closed = loop {
            let ending = match socket.take() {
                Some(socket) => self.serve(socket).await,
                None => match open(&self.base, self.last_seq).await {
                    Ok(opened) => {
                        attempt = 0;
                        socket = Some(opened);
                        continue;
                    }
                    Err(Error::EndpointGone) => Ending::Final(Closed {
                        code: None,
                        reason: "the endpoint no longer exists, has expired or cannot be joined".into(),
                    }),
                    Err(err) => Ending::Dropped(err.to_string()),
                },
            };
            let reason = match ending {
                Ending::Final(closed) => break Some(closed),
                Ending::Abandoned => break None,
                Ending::Dropped(reason) => reason,
            };
            self.state.send_replace(State::Reconnecting);
            attempt += 1;
            if self.reconnect.max_attempts.is_some_and(|max| attempt > max) {
                let reason = format!("gave up after {} attempts: {reason}", attempt - 1);
                break Some(Closed { code: None, reason });
            }
            let delay = self.reconnect.delay(attempt);
            if self.events.send(Event::Reconnecting { attempt, delay, reason }).await.is_err() {
                break None;
            }
            if let Some(ending) = self.wait(delay).await {
                match ending {
                    Ending::Final(closed) => break Some(closed),
                    Ending::Abandoned | Ending::Dropped(_) => break None,
                }
            }
        };
        self.state.send_replace(State::Closed);
        for pending in self.pending.drain(..) {
            let _ = pending.done.send(Err(Error::Closed));
        }
        if let Some(closed) = closed {
            let _ = self.events.send(Event::Closed(closed)).await;
        }
    }

    /// Takes a send: queued, and written at once when the socket is open
    /// and joined.
    async fn take(
        &mut self,
        nonce: String,
        frame: String,
        done: oneshot::Sender<Result<SendReceipt, Error>>,
        socket: Option<&mut Socket>,
    ) -> Result<(), Ending> {
        if self.pending.len() >= self.max_pending {
            let _ = done.send(Err(Error::QueueFull));
            return Ok(());
        }
        let written = match socket {
            Some(socket) => {
                socket.send(Frame::text(frame.clone())).await.map_err(|_| Ending::Dropped("a write failed".into()))
            }
            None => Ok(()),
        };
        self.pending.push_back(Pending { nonce, frame, done });
        written
    }

    /// Waits before reconnecting, queueing sends meanwhile; `Some` when
    /// told to stop.
    async fn wait(&mut self, delay: Duration) -> Option<Ending> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return None,
                () = self.events.closed() => return Some(Ending::Abandoned),
                command = self.commands.recv() => match command {
                    Some(Command::Send { nonce, frame, done }) => {
                        let _ = self.take(nonce, frame, done, None).await;
                    }
                    Some(Command::Write(_, done)) => {
                        let _ = done.send(Err(Error::NotConnected));
                    }
                    Some(Command::Close) => return Some(Ending::Final(closed_by_client())),
                    None => return Some(Ending::Abandoned),
                },
            }
        }
    }

    /// Reads frames and runs commands until the socket ends.
    async fn serve(&mut self, mut socket: Socket) -> Ending {
        loop {
            let joined = *self.state.borrow() == State::Open;
            tokio::select! {
                // The connection was dropped: its senders stop too.
                () = self.events.closed() => {
                    let _ = socket.close(None).await;
                    return Ending::Abandoned;
                }
                frame = socket.next() => {
                    let event = match frame {
                        Some(Ok(Frame::Text(text))) => self.event(&text),
                        Some(Ok(Frame::Close(frame))) => return ending_of(frame),
                        Some(Ok(_)) => None,
                        Some(Err(err)) => return Ending::Dropped(err.to_string()),
                        None => return Ending::Dropped("the connection ended".into()),
                    };
                    if matches!(event, Some(Event::Welcome(_))) {
                        if let Err(ending) = self.joined(&mut socket).await {
                            return ending;
                        }
                    }
                    if let Some(event) = event {
                        if self.events.send(event).await.is_err() {
                            let _ = socket.close(None).await;
                            return Ending::Abandoned;
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Send { nonce, frame, done }) => {
                        if let Err(ending) = self.take(nonce, frame, done, joined.then_some(&mut socket)).await {
                            return ending;
                        }
                    }
                    Some(Command::Write(text, done)) => {
                        if !joined {
                            let _ = done.send(Err(Error::NotConnected));
                            continue;
                        }
                        let sent = socket.send(Frame::text(text)).await.map_err(Error::from);
                        let failed = sent.is_err();
                        let _ = done.send(sent);
                        if failed {
                            return Ending::Dropped("a write failed".into());
                        }
                    }
                    Some(Command::Close) => {
                        let _ = socket.close(None).await;
                        return Ending::Final(closed_by_client());
                    }
                    None => {
                        let _ = socket.close(None).await;
                        return Ending::Abandoned;
                    }
                },
            }
        }
    }

    /// After a welcome: open, and every send still waiting for its ack is
    /// written again, in order, with its nonce.
    async fn joined(&mut self, socket: &mut Socket) -> Result<(), Ending> {
        self.state.send_replace(State::Open);
        for pending in &self.pending {
            socket
                .feed(Frame::text(pending.frame.clone()))
                .await
                .map_err(|_| Ending::Dropped("a write failed".into()))?;
        }
        socket.flush().await.map_err(|_| Ending::Dropped("a write failed".into()))
    }

    /// The send waiting under `nonce`, taken out of the queue.
    fn settle(&mut self, nonce: &str) -> Option<Pending> {
        let at = self.pending.iter().position(|pending| pending.nonce == nonce)?;
        self.pending.remove(at)
    }

    /// The send an error frame refuses: the one its nonce names. A frame
    /// past the server's hard size cap is refused unread, without a nonce:
    /// that is the oldest waiting send, as the server answers every frame
    /// before it first and closes the socket after it.
    fn refused(&mut self, error: &ErrorFrame) -> Option<Pending> {
        match error.nonce.as_deref() {
            Some(nonce) => self.settle(nonce),
            None if error.code == ErrorCode::TooLarge => self.pending.pop_front(),
            None => None,
        }
    }

    /// The event of a text frame; `None` for a message already delivered
    /// (a resume overlaps what was seen), an ack or refusal of a send
    /// (answered to the send itself), or a frame this SDK cannot read.
    fn event(&mut self, text: &str) -> Option<Event> {
        match serde_json::from_str::<ServerFrame>(text).ok()? {
            ServerFrame::Welcome(welcome) => Some(Event::Welcome(welcome)),
            ServerFrame::Message(message) => {
                if self.last_seq.is_some_and(|last| message.seq <= last) {
                    return None;
                }
                self.last_seq = Some(message.seq);
                Some(Event::Message(message))
            }
            ServerFrame::Ack { nonce, id, seq } => {
                let _ = self.settle(&nonce)?.done.send(Ok(SendReceipt { id, seq }));
                None
            }
            ServerFrame::Join { member } => Some(Event::Join(member)),
            ServerFrame::Leave { member } => Some(Event::Leave(member)),
            ServerFrame::Signal(signal) => Some(Event::Signal(signal)),
            ServerFrame::Endpoint { endpoint } => Some(Event::Endpoint(endpoint)),
            ServerFrame::Redaction(redaction) => Some(Event::Redaction(redaction)),
            ServerFrame::Error(error) => match self.refused(&error) {
                Some(pending) => {
                    let _ = pending.done.send(Err(Error::Refused { code: error.code, message: error.message }));
                    None
                }
                None => Some(Event::Error(error)),
            },
        }
    }
}

fn closed_by_client() -> Closed {
    Closed { code: None, reason: "closed by the client".into() }
}

/// Whether a close from the server is final: the endpoint, room or app is
/// gone, the endpoint expired, a quota refused the socket, or the server
/// closed normally. Anything else is worth a retry.
fn ending_of(frame: Option<tungstenite::protocol::CloseFrame>) -> Ending {
    let Some(frame) = frame else { return Ending::Dropped("closed without a code".into()) };
    let code = u16::from(frame.code);
    let reason = frame.reason.to_string();
    let last = matches!(
        code,
        1000 | close::ENDPOINT_DELETED
            | close::ROOM_DELETED
            | close::APP_STOPPED
            | close::ENDPOINT_EXPIRED
            | close::QUOTA_EXCEEDED
    );
    if last {
        Ending::Final(Closed { code: Some(code), reason })
    } else {
        Ending::Dropped(format!("closed with {code}: {reason}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let reconnect = Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_attempts: None,
        };
        for attempt in 1..=10 {
            let full = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_millis(1000));
            let delay = reconnect.delay(attempt);
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay:?}");
        }
    }

    fn member(id: &str, connections: u64) -> Member {
        Member { id: id.into(), meta: serde_json::Map::new(), connections }
    }

    fn welcome(members: Option<Vec<Member>>) -> Event {
        let endpoint = WelcomeEndpoint {
            id: "ep_a".into(),
            permission: Permission::Read,
            meta: serde_json::Map::new(),
            expires_at: None,
        };
        Event::Welcome(Welcome { room: "lobby".into(), endpoint, last_seq: 0, first_seq: 1, members })
    }

    fn ids(members: &Members) -> Option<Vec<&str>> {
        members.0.as_ref().map(|list| list.iter().map(|member| member.id.as_str()).collect())
    }

    #[test]
    fn members_follow_joins_and_leaves_and_each_welcome_replaces_them() {
        let mut members = Members::default();
        members.apply(&welcome(Some(vec![member("ep_a", 1), member("ep_b", 2)])));
        members.apply(&Event::Join(member("ep_c", 1)));
        members.apply(&Event::Join(member("ep_c", 1)));
        assert_eq!(ids(&members), Some(vec!["ep_a", "ep_b", "ep_c"]), "a repeated join is not listed twice");
        members.apply(&Event::Leave(member("ep_b", 0)));
        members.apply(&Event::Leave(member("ep_x", 0)));
        assert_eq!(ids(&members), Some(vec!["ep_a", "ep_c"]));

        members.apply(&welcome(Some(vec![member("ep_d", 1), member("ep_a", 1)])));
        assert_eq!(ids(&members), Some(vec!["ep_d", "ep_a"]), "the welcome after a reconnect is the whole truth");
        members.apply(&welcome(None));
        members.apply(&Event::Join(member("ep_e", 1)));
        assert_eq!(ids(&members), None, "a room without presence has no member list");
    }

    #[test]
    fn client_frames_carry_a_message_with_its_nonce_a_signal_or_a_redaction() {
        let payload = serde_json::json!({"typing": true});
        let message = serde_json::to_value(ClientFrame::Message { message: &payload, nonce: "n1" }).unwrap();
        let signal = serde_json::to_value(ClientFrame::Signal { signal: &payload }).unwrap();
        let redact: ClientFrame<'_, ()> = ClientFrame::Redact { redact: 12 };
        let redact = serde_json::to_value(redact).unwrap();
        assert_eq!(message, serde_json::json!({"message": {"typing": true}, "nonce": "n1"}));
        assert_eq!(signal, serde_json::json!({"signal": {"typing": true}}));
        assert_eq!(redact, serde_json::json!({"redact": 12}));
    }

    fn worker() -> Worker {
        Worker {
            base: "ws://x/".into(),
            last_seq: None,
            reconnect: Reconnect::default(),
            max_pending: 10,
            pending: VecDeque::new(),
            state: watch::channel(State::Connecting).0,
            events: mpsc::channel(1).0,
            commands: mpsc::channel(1).1,
        }
    }

    #[test]
    fn acks_and_refusals_answer_their_own_send_and_others_stay_events() {
        let mut worker = worker();
        let (first, mut first_done) = oneshot::channel();
        let (second, mut second_done) = oneshot::channel();
        for (nonce, done) in [("n1", first), ("n2", second)] {
            worker.pending.push_back(Pending { nonce: nonce.into(), frame: String::new(), done });
        }
        let ack = r#"{"type":"ack","nonce":"n2","id":"msg_9","seq":9}"#;
        assert_eq!(worker.event(ack), None, "an ack is no event");
        assert_eq!(second_done.try_recv().unwrap().unwrap(), SendReceipt { id: "msg_9".into(), seq: 9 });
        assert_eq!(worker.event(ack), None, "a repeated ack finds nothing to answer");
        let refused = r#"{"type":"error","code":"read_only","message":"no","nonce":"n1"}"#;
        assert_eq!(worker.event(refused), None);
        assert!(matches!(first_done.try_recv().unwrap(), Err(Error::Refused { code: ErrorCode::ReadOnly, .. })));
        assert!(worker.pending.is_empty());
        let (huge, mut huge_done) = oneshot::channel();
        worker.pending.push_back(Pending { nonce: "n3".into(), frame: String::new(), done: huge });
        assert_eq!(worker.event(r#"{"type":"error","code":"too_large","message":"cut off"}"#), None);
        assert!(matches!(huge_done.try_recv().unwrap(), Err(Error::Refused { code: ErrorCode::TooLarge, .. })));
        let signal_refused = r#"{"type":"error","code":"rate_limited","message":"slow down"}"#;
        assert!(
            matches!(worker.event(signal_refused), Some(Event::Error(error)) if error.code == ErrorCode::RateLimited)
        );
    }

    #[test]
    fn server_frames_of_presence_and_signals_become_events() {
        let mut worker = worker();
        let join = r#"{"type":"join","room":"lobby","member":{"id":"ep_b","meta":{"name":"Bob"},"connections":1}}"#;
        let Some(Event::Join(joined)) = worker.event(join) else { panic!("a join") };
        assert_eq!((joined.id.as_str(), joined.meta["name"].as_str(), joined.connections), ("ep_b", Some("Bob"), 1));
        let leave = r#"{"type":"leave","room":"lobby","member":{"id":"ep_b","meta":{},"connections":0}}"#;
        assert!(matches!(worker.event(leave), Some(Event::Leave(member)) if member.connections == 0));
        let signal = r#"{"type":"signal","room":"lobby","sender":{"id":"ep_b","meta":{}},"signal":[1,{"x":null}]}"#;
        let Some(Event::Signal(signal)) = worker.event(signal) else { panic!("a signal") };
        assert_eq!((signal.sender.id.as_str(), signal.signal), ("ep_b", serde_json::json!([1, {"x": null}])));
        assert_eq!(worker.event(r#"{"type":"signal","room":"lobby"}"#), None, "a malformed frame is skipped");
    }

    #[test]
    fn endpoint_changes_and_redactions_become_events() {
        let mut worker = worker();
        let endpoint = r#"{"type":"endpoint","endpoint":{"id":"ep_a","permission":"moderate","meta":{"name":"Ann"},"expires_at":"2030-01-01T00:00:00.000Z"}}"#;
        let Some(Event::Endpoint(endpoint)) = worker.event(endpoint) else { panic!("an endpoint change") };
        assert_eq!((endpoint.permission, endpoint.meta["name"].as_str()), (Permission::Moderate, Some("Ann")));
        assert_eq!(endpoint.expires_at.as_deref(), Some("2030-01-01T00:00:00.000Z"));
        let never = r#"{"type":"endpoint","endpoint":{"id":"ep_a","permission":"read","meta":{},"expires_at":null}}"#;
        assert!(matches!(worker.event(never), Some(Event::Endpoint(endpoint)) if endpoint.expires_at.is_none()));
        let redaction = r#"{"type":"redaction","room":"lobby","seq":7,"id":"msg_1"}"#;
        assert_eq!(worker.event(redaction), Some(Event::Redaction(Redaction { seq: 7, id: "msg_1".into() })));
        let budget = r#"{"type":"error","code":"budget_exhausted","message":"spent"}"#;
        assert!(matches!(worker.event(budget), Some(Event::Error(error)) if error.code == ErrorCode::BudgetExhausted));
    }

    #[test]
    fn gone_expired_and_refused_endpoints_end_for_good_and_other_closes_retry() {
        let ending =
            |code: u16| ending_of(Some(tungstenite::protocol::CloseFrame { code: code.into(), reason: "why".into() }));
        for code in [1000, 4001, 4002, 4003, 4004, 4029] {
            assert!(matches!(ending(code), Ending::Final(Closed { code: Some(got), .. }) if got == code), "{code}");
        }
        for code in [1001, 1011, 1013, 4008] {
            assert!(matches!(ending(code), Ending::Dropped(_)), "{code}");
        }
        assert!(matches!(ending_of(None), Ending::Dropped(_)));
    }
}
