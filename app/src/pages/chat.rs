//! `/demo/chat/{code}`: chat through one endpoint, in the browser. The wasm
//! opens the WebSocket itself (`ws` or `wss` from the page's protocol), shows
//! each message with its author (the sender's meta), time and seq, and says
//! why it cannot send when the endpoint is read-only or the connection ended.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Position in the list, the key for rendering.
    pub id: usize,
    /// The message's seq; `None` for an error the server sent.
    pub seq: Option<u64>,
    /// The `name` in the sender's meta, or the sender's id.
    pub author: String,
    /// `HH:MM:SS` of the server's timestamp (UTC).
    pub time: String,
    /// The payload: its text if it is a string or has a `text`, else its JSON.
    pub text: String,
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Opening the WebSocket.
    Connecting,
    /// Joined; `writable` is false for a `read` endpoint.
    Open {
        /// Whether this endpoint may send.
        writable: bool,
    },
    /// The connection ended, with the server's reason when it gave one.
    Closed(String),
}

/// The chat page.
#[component]
pub fn Chat() -> impl IntoView {
    let params = use_params_map();
    let code = move || params.read().get("code").unwrap_or_default();
    let lines = RwSignal::new(Vec::<Line>::new());
    let status = RwSignal::new(Status::Connecting);
    let draft = RwSignal::new(String::new());
    let outbox = connect(code(), lines, status);

    let send = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            outbox.send(text);
            draft.set(String::new());
        }
    };
    let writable = move || matches!(status.get(), Status::Open { writable: true });
    view! {
        <Title text="Chat — comms demo" />
        <h1>"Chat"</h1>
        <p>
            <a href="/demo">"Back to the demo"</a>
        </p>
        <p role="status" class="chat-status">
            {move || match status.get() {
                Status::Connecting => "Connecting…".to_owned(),
                Status::Open { writable: true } => "Connected. Messages you send appear for everyone in the room.".to_owned(),
                Status::Open { writable: false } => {
                    "Connected with a read-only endpoint: you see the room live but cannot send.".to_owned()
                }
                Status::Closed(reason) => format!("The connection ended: {reason}"),
            }}
        </p>
        <ol class="chat-lines" aria-label="Conversation" aria-live="polite">
            <For
                each=move || lines.get()
                key=|line| line.id
                children=move |line| {
                    view! {
                        <li>
                            <span class="seq">{line.seq.map(|seq| format!("#{seq}")).unwrap_or_default()}</span>
                            " "
                            <time>{line.time}</time>
                            " "
                            <strong class="author">{line.author}</strong>
                            ": "
                            <span class="text">{line.text}</span>
                        </li>
                    }
                }
            />
        </ol>
        <form on:submit=send class="chat-form">
            <label for="chat-input">"Message"</label>
            <input
                id="chat-input"
                type="text"
                autocomplete="off"
                prop:value=move || draft.get()
                on:input=move |event| draft.set(event_target_value(&event))
                disabled=move || !writable()
            />
            <button type="submit" disabled=move || !writable()>
                "Send"
            </button>
        </form>
    }
}

/// Sends texts typed on the page into the open connection.
#[derive(Clone, Copy)]
struct Outbox {
    queue: StoredValue<Option<Sender>, LocalStorage>,
}

/// The sending half of the connection's outgoing queue.
#[cfg(feature = "hydrate")]
type Sender = futures_channel::mpsc::UnboundedSender<String>;

/// On the server there is no connection: rendering never sends.
#[cfg(not(feature = "hydrate"))]
#[derive(Debug)]
struct Sender;

#[cfg(not(feature = "hydrate"))]
impl Sender {
    fn unbounded_send(&self, _text: String) -> Result<(), ()> {
        Ok(())
    }
}

impl Outbox {
    fn send(&self, text: String) {
        self.queue.with_value(|queue| {
            if let Some(queue) = queue {
                let _ = queue.unbounded_send(text);
            }
        });
    }
}

/// Opens the WebSocket in the browser (nothing happens on the server).
fn connect(code: String, lines: RwSignal<Vec<Line>>, status: RwSignal<Status>) -> Outbox {
    let outbox = Outbox { queue: StoredValue::new_local(None) };
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        browser::open(&code, lines, status, outbox.queue);
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (code, lines, status);
    outbox
}

#[cfg(feature = "hydrate")]
mod browser {
    use futures_util::{SinkExt, StreamExt};
    use gloo_net::websocket::futures::WebSocket;
    use gloo_net::websocket::{Message, WebSocketError};
    use leptos::prelude::*;
    use serde_json::Value;

    use super::{Line, Sender, Status};

    pub(super) fn open(
        code: &str,
        lines: RwSignal<Vec<Line>>,
        status: RwSignal<Status>,
        queue: StoredValue<Option<Sender>, LocalStorage>,
    ) {
        let location = window().location();
        let scheme = if location.protocol().as_deref() == Ok("https:") { "wss" } else { "ws" };
        let host = location.host().unwrap_or_default();
        let url = format!("{scheme}://{host}/ws/endpoint/{code}/");
        let socket = match WebSocket::open(&url) {
            Ok(socket) => socket,
            Err(err) => {
                status.set(Status::Closed(err.to_string()));
                return;
            }
        };
        let (mut write, mut read) = socket.split();
        let (sender, mut outgoing) = futures_channel::mpsc::unbounded::<String>();
        queue.set_value(Some(sender));
        leptos::task::spawn_local(async move {
            while let Some(text) = outgoing.next().await {
                let frame = serde_json::json!({ "message": text }).to_string();
                if write.send(Message::Text(frame)).await.is_err() {
                    break;
                }
            }
        });
        leptos::task::spawn_local(async move {
            while let Some(frame) = read.next().await {
                match frame {
                    Ok(Message::Text(text)) => on_frame(&text, lines, status),
                    Ok(Message::Bytes(_)) => {}
                    Err(WebSocketError::ConnectionClose(event)) => {
                        let reason = if event.reason.is_empty() { "closed".to_owned() } else { event.reason };
                        status.set(Status::Closed(format!("{reason} (code {})", event.code)));
                        return;
                    }
                    Err(err) => {
                        status.set(Status::Closed(err.to_string()));
                        return;
                    }
                }
            }
            status.set(Status::Closed("closed".to_owned()));
        });
    }

    fn on_frame(text: &str, lines: RwSignal<Vec<Line>>, status: RwSignal<Status>) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else { return };
        match frame["type"].as_str() {
            Some("welcome") => {
                status.set(Status::Open { writable: frame["endpoint"]["permission"] == "read_and_write" })
            }
            Some("message") => {
                let sender = &frame["sender"];
                let author = sender["meta"]["name"].as_str().or(sender["id"].as_str()).unwrap_or("?").to_owned();
                let time = frame["timestamp"].as_str().and_then(|t| t.get(11..19)).unwrap_or_default().to_owned();
                let payload = &frame["message"];
                let text =
                    payload.as_str().or(payload["text"].as_str()).map_or_else(|| payload.to_string(), str::to_owned);
                let seq = frame["seq"].as_u64();
                lines.update(|lines| lines.push(Line { id: lines.len(), seq, author, time, text }));
            }
            Some("error") => {
                let message = frame["message"].as_str().unwrap_or_default().to_owned();
                lines.update(|lines| {
                    lines.push(Line {
                        id: lines.len(),
                        seq: None,
                        author: "server".into(),
                        time: String::new(),
                        text: message,
                    })
                });
            }
            _ => {}
        }
    }
}
