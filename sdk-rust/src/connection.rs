//! [`EndpointConnection`]: a WebSocket joined through one endpoint, as a
//! stream of typed [`Event`]s, that reconnects by itself and resumes where
//! it stopped.
//!
//! One task owns the socket. It delivers events into a bounded channel (a
//! consumer that stops reading slows the socket down, the server may then
//! close it with 1013, and the task resumes), and takes `send` and `close`
//! commands from another. After a drop it reconnects with exponential
//! backoff and jitter, asking for `?after_seq=` the last seq it delivered
//! and skipping anything at or below it, so across reconnects every message
//! is delivered exactly once, in order. It stops for good when the endpoint,
//! its room or its app is gone (close codes 4001–4003, or a refused
//! upgrade), when [`EndpointConnection::close`] is called, or after
//! [`Reconnect::max_attempts`] failed attempts.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use comms_protocol::ws::close;
use futures_util::{SinkExt, Stream, StreamExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;
use crate::generated::{ErrorCode, Message, Permission};

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

/// The first frame of every connection (again after each reconnect).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Welcome {
    /// The room joined.
    pub room: String,
    /// The endpoint joined with.
    pub endpoint: WelcomeEndpoint,
    /// The newest seq in the room.
    pub last_seq: u64,
    /// The oldest seq still retained; resuming from below `first_seq - 1`
    /// means some messages are no longer available.
    pub first_seq: u64,
}

/// The endpoint a connection joined with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WelcomeEndpoint {
    /// Public id: the `sender.id` of what this connection sends.
    pub id: String,
    /// Whether this connection may send.
    pub permission: Permission,
    /// Stamped on every message this connection sends.
    pub meta: serde_json::Map<String, serde_json::Value>,
}

/// An error frame: the server refused something this connection sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorFrame {
    /// E.g. [`ErrorCode::ReadOnly`] or [`ErrorCode::Invalid`].
    pub code: ErrorCode,
    /// The server's explanation.
    pub message: String,
}

/// Why a connection ended for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The server's close code (4001 endpoint deleted, 4002 room deleted,
    /// 4003 app no longer approved), or `None` when the client closed or
    /// gave up.
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
    /// The server refused a frame this connection sent.
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
    Error(ErrorFrame),
}

#[derive(Serialize)]
struct ClientFrame<'a, T: Serialize> {
    message: &'a T,
}

enum Command {
    Send(String, oneshot::Sender<Result<(), Error>>),
    Close,
}

/// A live connection through one endpoint. Read it as a
/// [`Stream`] of [`Event`]s (or with [`EndpointConnection::next_event`]);
/// dropping it closes the socket.
pub struct EndpointConnection {
    events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<Command>,
}

impl EndpointConnection {
    /// Connects to an endpoint's `ws_url` (`ws://…/ws/endpoint/{code}/`,
    /// as the REST API returns it) with the default [`Reconnect`].
    ///
    /// # Errors
    ///
    /// [`Error::EndpointGone`] when the code is unknown or deleted,
    /// [`Error::InvalidUrl`] for a URL that is not `ws://` or `wss://`,
    /// [`Error::WebSocket`] when the server cannot be reached.
    pub async fn connect(ws_url: &str) -> Result<Self, Error> {
        Self::connect_with(ws_url, None, Reconnect::default()).await
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

    /// Connects to `ws_url`, starting after `after_seq` when given (the
    /// retained messages after it come first), reconnecting as `reconnect`
    /// says.
    ///
    /// # Errors
    ///
    /// As [`EndpointConnection::connect`].
    pub async fn connect_with(ws_url: &str, after_seq: Option<u64>, reconnect: Reconnect) -> Result<Self, Error> {
        let base = ws_url.split('?').next().unwrap_or(ws_url).to_owned();
        if !(base.starts_with("ws://") || base.starts_with("wss://")) {
            return Err(Error::InvalidUrl(format!("{ws_url:?} is not a ws:// or wss:// address")));
        }
        let socket = open(&base, after_seq).await?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (commands, commands_rx) = mpsc::channel(16);
        let worker = Worker { base, last_seq: after_seq, reconnect, events: events_tx, commands: commands_rx };
        tokio::spawn(worker.run(socket));
        Ok(Self { events, commands })
    }

    /// Sends `payload` as a message (the server stamps id, seq, time and
    /// this endpoint's meta; it comes back as an [`Event::Message`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotConnected`] while reconnecting or after the end (nothing
    /// was sent), [`Error::Payload`] if `payload` cannot be serialized,
    /// [`Error::WebSocket`] if the write failed. A read-only endpoint's
    /// send is refused by the server with an [`Event::Error`].
    pub async fn send(&self, payload: &impl Serialize) -> Result<(), Error> {
        let text = serde_json::to_string(&ClientFrame { message: payload })?;
        let (done, result) = oneshot::channel();
        self.commands.send(Command::Send(text, done)).await.map_err(|_| Error::NotConnected)?;
        result.await.map_err(|_| Error::NotConnected)?
    }

    /// The next event; `None` after [`Event::Closed`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Closes the socket (code 1000) and stops reconnecting. The stream
    /// still yields what was received before, then [`Event::Closed`].
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }
}

impl Stream for EndpointConnection {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_recv(cx)
    }
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

/// The task owning the socket.
struct Worker {
    base: String,
    /// The last seq delivered, where a reconnect resumes.
    last_seq: Option<u64>,
    reconnect: Reconnect,
    events: mpsc::Sender<Event>,
    commands: mpsc::Receiver<Command>,
}

impl Worker {
    async fn run(mut self, first: Socket) {
        let mut socket = Some(first);
        let mut attempt = 0;
        loop {
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
                        reason: "the endpoint no longer exists or cannot be joined".into(),
                    }),
                    Err(err) => Ending::Dropped(err.to_string()),
                },
            };
            let reason = match ending {
                Ending::Final(closed) => {
                    let _ = self.events.send(Event::Closed(closed)).await;
                    return;
                }
                Ending::Abandoned => return,
                Ending::Dropped(reason) => reason,
            };
            attempt += 1;
            if self.reconnect.max_attempts.is_some_and(|max| attempt > max) {
                let reason = format!("gave up after {} attempts: {reason}", attempt - 1);
                let _ = self.events.send(Event::Closed(Closed { code: None, reason })).await;
                return;
            }
            let delay = self.reconnect.delay(attempt);
            if self.events.send(Event::Reconnecting { attempt, delay, reason }).await.is_err() {
                return;
            }
            if let Some(ending) = self.wait(delay).await {
                if let Ending::Final(closed) = ending {
                    let _ = self.events.send(Event::Closed(closed)).await;
                }
                return;
            }
        }
    }

    /// Waits before reconnecting, answering commands meanwhile; `Some`
    /// when told to stop.
    async fn wait(&mut self, delay: Duration) -> Option<Ending> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return None,
                command = self.commands.recv() => match command {
                    Some(Command::Send(_, done)) => {
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
            tokio::select! {
                frame = socket.next() => {
                    let event = match frame {
                        Some(Ok(Frame::Text(text))) => self.event(&text),
                        Some(Ok(Frame::Close(frame))) => return ending_of(frame),
                        Some(Ok(_)) => None,
                        Some(Err(err)) => return Ending::Dropped(err.to_string()),
                        None => return Ending::Dropped("the connection ended".into()),
                    };
                    if let Some(event) = event {
                        if self.events.send(event).await.is_err() {
                            let _ = socket.close(None).await;
                            return Ending::Abandoned;
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Send(text, done)) => {
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

    /// The event of a text frame; `None` for a message already delivered
    /// (a resume overlaps what was seen) or a frame this SDK cannot read.
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
            ServerFrame::Error(error) => Some(Event::Error(error)),
        }
    }
}

fn closed_by_client() -> Closed {
    Closed { code: None, reason: "closed by the client".into() }
}

/// Whether a close from the server is final: the endpoint, room or app is
/// gone, or the server closed normally. Anything else is worth a retry.
fn ending_of(frame: Option<tungstenite::protocol::CloseFrame>) -> Ending {
    let Some(frame) = frame else { return Ending::Dropped("closed without a code".into()) };
    let code = u16::from(frame.code);
    let reason = frame.reason.to_string();
    if matches!(code, 1000 | close::ENDPOINT_DELETED | close::ROOM_DELETED | close::APP_STOPPED) {
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
}
