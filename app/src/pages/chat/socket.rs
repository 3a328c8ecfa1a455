//! The chat's connection, in the browser. One task, the [`Supervisor`],
//! owns every decision: which WebSocket is current, what it has seen, when
//! to reconnect. Each WebSocket has a task of its own that only carries
//! frames between the socket and the supervisor; the page reaches the
//! supervisor through the [`Outbox`]. Nothing is shared but channels and
//! the page's signals.
//!
//! **History on arrival.** Without `after_seq` a connection gets only live
//! messages, and the page does not know the room's last seq before the
//! welcome tells it. So the first socket is opened plain; when its welcome
//! shows retained messages, a second socket of the same endpoint is opened
//! with `after_seq` a few messages before the welcome's `last_seq`, and
//! replaces the first once it is welcomed. Messages both deliver are kept
//! once (by seq). This needs nothing the WebSocket does not already offer
//! (no server function that would look up codes outside the WebSocket's
//! own checks), and it degrades to no history, never to no chat: when the
//! second socket is refused (a single-use code, a full connection quota),
//! the first simply stays. Presence sees one member throughout: the
//! endpoint keeps a live connection while the sockets change hands.
//!
//! **Reconnecting.** When a socket that had been welcomed is lost for a
//! reason the protocol says to resume after (a restart, a full queue, a
//! network failure: every close code but the 4xxx ones that end an
//! endpoint, room or app), the supervisor reconnects with `after_seq` set
//! to the last seq it saw, with growing pauses, a few times; the new
//! welcome replaces the list of who is online wholesale. An expired code
//! (4004) ends the chat like a deleted one.
//!
//! **The endpoint changes.** When the app changes this page's endpoint,
//! an `endpoint` frame carries its new permission, meta and expiry: the
//! page shows them from then on (a raised budget shows with the next
//! send). A `redaction` frame turns the message it names into "message
//! removed", as history and resumes already deliver it (`"message": null`).

use std::time::Duration;

use comms_protocol::ws::close;
use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_util::{stream, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use leptos::prelude::*;
use serde_json::{json, Value};

use super::{Access, ChatState, Identity, Line, Member, Status, Typer};

/// Messages before the welcome's `last_seq` shown on arrival.
const HISTORY: u64 = 30;
/// Lines kept on the page; older ones are dropped.
const MAX_LINES: usize = 500;
/// A typing signal is sent at most this often.
const TYPING_EVERY_MS: f64 = 2_000.0;
/// How long "… is typing" stays after a member's last signal.
const TYPING_SHOWN: Duration = Duration::from_secs(3);
/// Reconnection attempts after a loss, each pause twice the previous.
const RECONNECTS: u32 = 5;
/// The pause before the first reconnection attempt.
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// What the supervisor hears from the page, the sockets and its timers.
pub(super) enum Event {
    /// A text frame from socket `socket`.
    Frame { socket: u64, text: String },
    /// Socket `socket` closed.
    Closed { socket: u64, code: u16, reason: String },
    /// The user sends this text.
    Send(String),
    /// The user typed in the message field.
    Typing,
    /// A moderator redacts the message with this seq.
    Redact(u64),
    /// Time to reconnect.
    Retry,
    /// The page is gone: close everything.
    Stop,
}

/// The page's way to its connection. Cheap to copy into event handlers.
#[derive(Clone, Copy)]
pub(super) struct Outbox {
    events: StoredValue<UnboundedSender<Event>>,
}

impl Outbox {
    /// Sends `text` as a message.
    pub(super) fn send(self, text: String) {
        self.post(Event::Send(text));
    }

    /// Tells the others the user is typing (at most every two seconds).
    pub(super) fn typing(self) {
        self.post(Event::Typing);
    }

    /// Redacts the message `seq` (the server refuses unless the endpoint
    /// may moderate).
    pub(super) fn redact(self, seq: u64) {
        self.post(Event::Redact(seq));
    }

    fn post(self, event: Event) {
        // The supervisor only stops with the page.
        let _ = self.events.with_value(|events| events.unbounded_send(event));
    }
}

/// Starts the supervisor once the page is hydrated; it stops when the page
/// is left.
pub(super) fn connect(code: String, chat: ChatState) -> Outbox {
    let (events, receiver) = unbounded();
    let stopper = events.clone();
    on_cleanup(move || {
        let _ = stopper.unbounded_send(Event::Stop);
    });
    let supervisor = Supervisor::new(code, chat, events.clone());
    let mut start = Some((supervisor, receiver));
    Effect::new(move |_| {
        if let Some((supervisor, receiver)) = start.take() {
            leptos::task::spawn_local(supervisor.run(receiver));
        }
    });
    Outbox { events: StoredValue::new(events) }
}

/// One open WebSocket, as the supervisor holds it.
struct Socket {
    id: u64,
    /// The `after_seq` it was opened with.
    after_seq: Option<u64>,
    /// Frames to send. Dropping it ends the socket's task, which closes
    /// the socket.
    outgoing: UnboundedSender<String>,
}

/// Owns the connection: see the module's header.
struct Supervisor {
    code: String,
    chat: ChatState,
    /// Handed to the sockets' tasks and timers.
    events: UnboundedSender<Event>,
    /// The socket whose frames the page shows and through which it sends.
    active: Option<Socket>,
    /// A socket opened to load history, until its welcome makes it active.
    pending: Option<Socket>,
    next_socket: u64,
    next_line: u64,
    /// This page's endpoint id, from the welcome.
    me: String,
    /// What it may do, from the welcome and later endpoint frames.
    access: Access,
    /// Whether the server said its budget is spent, since the last welcome
    /// or endpoint frame.
    spent: bool,
    /// The newest seq seen (or known from a welcome): where to resume.
    resume_after: Option<u64>,
    /// Whether the history socket was opened: once per page.
    history_asked: bool,
    /// Whether any socket was welcomed: only then is a loss worth
    /// reconnecting after (a code refused from the start stays refused).
    welcomed: bool,
    /// Reconnection attempts since the last welcome.
    failures: u32,
    /// When the last typing signal went out (`Date.now()`).
    typing_sent_at: Option<f64>,
    next_signal: u64,
}

impl Supervisor {
    fn new(code: String, chat: ChatState, events: UnboundedSender<Event>) -> Self {
        Self {
            code,
            chat,
            events,
            active: None,
            pending: None,
            next_socket: 0,
            next_line: 0,
            me: String::new(),
            access: Access::Read,
            spent: false,
            resume_after: None,
            history_asked: false,
            welcomed: false,
            failures: 0,
            typing_sent_at: None,
            next_signal: 0,
        }
    }

    async fn run(mut self, mut events: UnboundedReceiver<Event>) {
        self.active = self.open(None);
        while let Some(event) = events.next().await {
            match event {
                Event::Frame { socket, text } => self.on_frame(socket, &text),
                Event::Closed { socket, code, reason } => self.on_closed(socket, code, reason),
                Event::Send(text) => {
                    // The next keystroke starts another message: others
                    // should hear of it at once.
                    self.typing_sent_at = None;
                    self.send(json!({ "message": text }));
                }
                Event::Typing => self.send_typing(),
                Event::Redact(seq) => self.send(json!({ "redact": seq })),
                Event::Retry => {
                    if self.active.is_none() && self.pending.is_none() {
                        self.active = self.open(self.resume_after);
                    }
                }
                // Dropping the sockets' senders closes them.
                Event::Stop => return,
            }
        }
    }

    /// Opens a socket; `None` (and the page says why) when the browser
    /// refuses to.
    fn open(&mut self, after_seq: Option<u64>) -> Option<Socket> {
        let location = window().location();
        let scheme = if location.protocol().as_deref() == Ok("https:") { "wss" } else { "ws" };
        let host = location.host().unwrap_or_default();
        let query = after_seq.map(|seq| format!("?after_seq={seq}")).unwrap_or_default();
        let url = format!("{scheme}://{host}/ws/endpoint/{}/{query}", self.code);
        let id = self.next_socket;
        self.next_socket += 1;
        match WebSocket::open(&url) {
            Ok(socket) => {
                let (outgoing, frames) = unbounded();
                leptos::task::spawn_local(carry(socket, id, frames, self.events.clone()));
                Some(Socket { id, after_seq, outgoing })
            }
            Err(err) => {
                self.chat.status.set(Status::Closed(err.to_string()));
                None
            }
        }
    }

    fn is(socket: &Option<Socket>, id: u64) -> bool {
        socket.as_ref().is_some_and(|socket| socket.id == id)
    }

    fn on_frame(&mut self, socket: u64, text: &str) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else { return };
        if frame["type"] == "welcome" && Self::is(&self.pending, socket) {
            // The history socket takes over; the old one closes as it drops.
            self.active = self.pending.take();
        }
        if !Self::is(&self.active, socket) {
            return;
        }
        match frame["type"].as_str() {
            Some("welcome") => self.on_welcome(&frame),
            Some("message") => self.on_message(&frame),
            Some("join") => self.on_join(&frame["member"]),
            Some("leave") => {
                let id = frame["member"]["id"].as_str().unwrap_or_default();
                self.chat.members.update(|members| {
                    if let Some(members) = members {
                        members.retain(|member| member.id != id);
                    }
                });
            }
            Some("signal") => self.on_signal(&frame),
            Some("endpoint") => self.on_endpoint(&frame["endpoint"]),
            Some("redaction") => {
                if let Some(seq) = frame["seq"].as_u64() {
                    self.on_redaction(seq);
                }
            }
            Some("error") => {
                if frame["code"] == "budget_exhausted" {
                    self.spent = true;
                    self.show_status();
                }
                let text = frame["message"].as_str().unwrap_or_default().to_owned();
                self.add_line(Line {
                    key: 0,
                    seq: None,
                    author: "server".into(),
                    own: false,
                    time: String::new(),
                    text,
                    removed: false,
                });
            }
            _ => {}
        }
    }

    fn show_status(&self) {
        self.chat.status.set(Status::Open { access: self.access, spent: self.spent });
    }

    /// Takes on the endpoint as the welcome or an `endpoint` frame shows it.
    fn take_endpoint(&mut self, endpoint: &Value) {
        self.access = Access::of(endpoint["permission"].as_str().unwrap_or_default());
        self.spent = false;
        let name = name_of(endpoint);
        let expires_at = endpoint["expires_at"].as_str().map(str::to_owned);
        self.chat.identity.update(|identity| {
            if let Some(identity) = identity {
                identity.name = name;
                identity.expires_at = expires_at;
            }
        });
        self.show_status();
    }

    /// The app changed this page's endpoint: show what it is now, here and
    /// in the list of who is online.
    fn on_endpoint(&mut self, endpoint: &Value) {
        self.take_endpoint(endpoint);
        let name = name_of(endpoint);
        let me = self.me.clone();
        self.chat.members.update(|members| {
            if let Some(members) = members {
                if let Some(member) = members.iter_mut().find(|member| member.id == me) {
                    member.name = name;
                }
                sort_members(members);
            }
        });
    }

    /// Shows the message `seq` as removed, under a new key so the page
    /// renders it again.
    fn on_redaction(&mut self, seq: u64) {
        let key = self.next_line;
        self.next_line += 1;
        self.chat.lines.update(|lines| {
            if let Some(line) = lines.iter_mut().find(|line| line.seq == Some(seq) && !line.removed) {
                *line = Line { key, removed: true, text: String::new(), ..line.clone() };
            }
        });
    }

    fn on_welcome(&mut self, frame: &Value) {
        let endpoint = &frame["endpoint"];
        self.me = endpoint["id"].as_str().unwrap_or_default().to_owned();
        self.welcomed = true;
        self.failures = 0;
        let room = frame["room"].as_str().unwrap_or_default().to_owned();
        self.chat.identity.set(Some(Identity { room, name: String::new(), expires_at: None }));
        self.take_endpoint(endpoint);
        let members = frame["members"].as_array().map(|members| {
            let mut members: Vec<Member> = members.iter().map(|member| self.member(member)).collect();
            sort_members(&mut members);
            members
        });
        self.chat.members.set(members);

        let (last, first) = (frame["last_seq"].as_u64().unwrap_or(0), frame["first_seq"].as_u64().unwrap_or(1));
        let plain = self.active.as_ref().is_some_and(|socket| socket.after_seq.is_none());
        if plain {
            // Everything up to `last` is behind this socket already.
            self.resume_after = Some(self.resume_after.map_or(last, |seen| seen.max(last)));
            if !self.history_asked && last >= first {
                self.history_asked = true;
                self.pending = self.open(Some(last.saturating_sub(HISTORY).max(first.saturating_sub(1))));
            }
        }
    }

    fn on_message(&mut self, frame: &Value) {
        let Some(seq) = frame["seq"].as_u64() else { return };
        self.resume_after = Some(self.resume_after.map_or(seq, |seen| seen.max(seq)));
        let sender = &frame["sender"];
        let sender_id = sender["id"].as_str().unwrap_or_default();
        // Someone who just sent is done typing that message.
        self.chat.typing.update(|typers| typers.retain(|typer| typer.id != sender_id));
        let removed = frame.get("redacted_at").is_some_and(|at| !at.is_null());
        let payload = &frame["message"];
        let text = if removed {
            String::new()
        } else {
            payload.as_str().or(payload["text"].as_str()).map_or_else(|| payload.to_string(), str::to_owned)
        };
        self.add_line(Line {
            key: 0,
            seq: Some(seq),
            author: name_of(sender),
            own: sender_id == self.me,
            time: frame["timestamp"].as_str().and_then(|t| t.get(11..19)).unwrap_or_default().to_owned(),
            text,
            removed,
        });
    }

    /// Adds `line` in seq order (a message already shown is skipped) with
    /// a key of its own, dropping the oldest lines past [`MAX_LINES`].
    fn add_line(&mut self, mut line: Line) {
        line.key = self.next_line;
        self.next_line += 1;
        self.chat.lines.update(|lines| {
            if let Some(seq) = line.seq {
                if lines.iter().any(|shown| shown.seq == Some(seq)) {
                    return;
                }
                match lines.iter().position(|shown| shown.seq.is_some_and(|shown| shown > seq)) {
                    Some(later) => lines.insert(later, line),
                    None => lines.push(line),
                }
            } else {
                lines.push(line);
            }
            let excess = lines.len().saturating_sub(MAX_LINES);
            lines.drain(..excess);
        });
    }

    fn member(&self, member: &Value) -> Member {
        let id = member["id"].as_str().unwrap_or_default().to_owned();
        Member { you: id == self.me, name: name_of(member), id }
    }

    fn on_join(&mut self, member: &Value) {
        let member = self.member(member);
        self.chat.members.update(|members| {
            if let Some(members) = members {
                if !members.iter().any(|shown| shown.id == member.id) {
                    members.push(member);
                    sort_members(members);
                }
            }
        });
    }

    /// Shows "… is typing" for a while after another member's typing
    /// signal (another tab of this endpoint is not someone else).
    fn on_signal(&mut self, frame: &Value) {
        let sender = &frame["sender"];
        let id = sender["id"].as_str().unwrap_or_default().to_owned();
        if frame["signal"]["typing"] != true || id == self.me {
            return;
        }
        let signal = self.next_signal;
        self.next_signal += 1;
        let typer = Typer { id: id.clone(), name: name_of(sender), signal };
        self.chat.typing.update(|typers| match typers.iter_mut().find(|typer| typer.id == id) {
            Some(shown) => *shown = typer,
            None => typers.push(typer),
        });
        let typing = self.chat.typing;
        set_timeout(
            move || {
                let _ = typing.try_update(|typers| typers.retain(|typer| typer.signal != signal));
            },
            TYPING_SHOWN,
        );
    }

    fn send_typing(&mut self) {
        let now = web_sys::js_sys::Date::now();
        if self.access == Access::Read
            || self.spent
            || self.typing_sent_at.is_some_and(|sent| now - sent < TYPING_EVERY_MS)
        {
            return;
        }
        self.typing_sent_at = Some(now);
        self.send(json!({ "signal": { "typing": true } }));
    }

    fn send(&self, frame: Value) {
        if let Some(socket) = &self.active {
            let _ = socket.outgoing.unbounded_send(frame.to_string());
        }
    }

    fn on_closed(&mut self, socket: u64, code: u16, reason: String) {
        if Self::is(&self.pending, socket) {
            // No history then; the active socket carries on.
            self.pending = None;
        } else if Self::is(&self.active, socket) {
            self.active = None;
        } else {
            return;
        }
        if self.active.is_some() || self.pending.is_some() {
            return;
        }
        let resumable = !(4000..5000).contains(&code) || code == close::PING_TIMEOUT || code == close::QUOTA_EXCEEDED;
        if self.welcomed && resumable && self.failures < RECONNECTS {
            let pause = FIRST_PAUSE * 2u32.pow(self.failures);
            self.failures += 1;
            self.chat.status.set(Status::Reconnecting);
            let events = self.events.clone();
            set_timeout(
                move || {
                    let _ = events.unbounded_send(Event::Retry);
                },
                pause,
            );
        } else {
            let reason = if reason.is_empty() { "closed".to_owned() } else { reason };
            self.chat.status.set(Status::Closed(format!("{reason} (code {code})")));
        }
    }
}

/// Orders who is online by name, so the list does not shuffle as people
/// come and go.
fn sort_members(members: &mut [Member]) {
    members.sort_by_cached_key(|member| (member.name.to_lowercase(), member.id.clone()));
}

/// The `name` in the meta of a sender, member or endpoint object, or its id.
fn name_of(who: &Value) -> String {
    let name = who["meta"]["name"].as_str().filter(|name| !name.trim().is_empty());
    name.or(who["id"].as_str()).unwrap_or("?").to_owned()
}

/// What one socket's task waits for.
enum Step {
    Received(Result<Message, WebSocketError>),
    /// The socket's stream ended without a close event.
    Ended,
    Send(String),
    /// The supervisor dropped this socket.
    Retired,
}

/// Carries frames between one socket and the supervisor until either
/// side ends; the socket closes when this returns.
async fn carry(socket: WebSocket, id: u64, outgoing: UnboundedReceiver<String>, events: UnboundedSender<Event>) {
    let (mut write, read) = socket.split();
    let incoming = read.map(Step::Received).chain(stream::iter([Step::Ended]));
    let outgoing = outgoing.map(Step::Send).chain(stream::iter([Step::Retired]));
    let mut steps = stream::select(incoming, outgoing);
    let (code, reason) = loop {
        match steps.next().await {
            Some(Step::Send(text)) => {
                // A failed send shows as the socket's close event.
                let _ = write.send(Message::Text(text)).await;
            }
            Some(Step::Received(Ok(Message::Text(text)))) => {
                let _ = events.unbounded_send(Event::Frame { socket: id, text });
            }
            Some(Step::Received(Ok(Message::Bytes(_)))) => {}
            Some(Step::Received(Err(WebSocketError::ConnectionClose(event)))) => break (event.code, event.reason),
            // An error event: the close event with its code follows.
            Some(Step::Received(Err(_))) => {}
            Some(Step::Ended) | None => break (1006, String::new()),
            Some(Step::Retired) => return,
        }
    };
    let _ = events.unbounded_send(Event::Closed { socket: id, code, reason });
}
