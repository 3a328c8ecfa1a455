//! `/demo/chat/{code}`: chat through one endpoint, in the browser. The page
//! names the room and who you are (from the welcome frame, and again when
//! the app changes the endpoint), shows the room's last messages on
//! arrival, each message with its author (the sender's meta), time and
//! seq, your own marked, redacted ones as removed; in presence rooms who
//! is online; and who is typing, from other members' signals. It says why
//! it cannot send when the endpoint is read-only, has sent all the
//! messages it may, or the connection ended. With a `moderate` endpoint,
//! every message has a button that redacts it.
//!
//! The server renders the empty page; the wasm opens the WebSocket
//! ([`socket`], `ws` or `wss` from the page's protocol) and fills in the
//! signals of [`ChatState`].

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[cfg(feature = "hydrate")]
mod socket;

/// On the server there is no connection: the page renders as
/// "Connecting…" and the browser opens it.
#[cfg(not(feature = "hydrate"))]
mod socket {
    use super::ChatState;

    /// Nothing to send to.
    #[derive(Clone, Copy)]
    pub(super) struct Outbox;

    impl Outbox {
        pub(super) fn send(self, _text: String) {}

        pub(super) fn typing(self) {}

        pub(super) fn redact(self, _seq: u64) {}
    }

    pub(super) fn connect(_code: String, _chat: ChatState) -> Outbox {
        Outbox
    }
}

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Unique on the page, the key for rendering.
    pub key: u64,
    /// The message's seq; `None` for an error the server sent.
    pub seq: Option<u64>,
    /// The `name` in the sender's meta, or the sender's id.
    pub author: String,
    /// Whether the message came through this page's endpoint.
    pub own: bool,
    /// `HH:MM:SS` of the server's timestamp (UTC).
    pub time: String,
    /// The payload: its text if it is a string or has a `text`, else its
    /// JSON; empty once removed.
    pub text: String,
    /// Whether a moderator or the app redacted the message.
    pub removed: bool,
}

/// What this page's endpoint may do, from its permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `read`: receive only.
    Read,
    /// `read_and_write`: send too.
    Write,
    /// `moderate`: send, and redact any message.
    Moderate,
}

impl Access {
    /// The access a permission as the server names it gives.
    pub fn of(permission: &str) -> Self {
        match permission {
            "moderate" => Self::Moderate,
            "read_and_write" => Self::Write,
            _ => Self::Read,
        }
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Opening the WebSocket.
    Connecting,
    /// Joined.
    Open {
        /// What the endpoint may do.
        access: Access,
        /// Whether it sent all the messages its budget (`max_messages`)
        /// allows: it reads on, but cannot send.
        spent: bool,
    },
    /// The connection was lost and is being opened again.
    Reconnecting,
    /// The connection ended, with the server's reason when it gave one.
    Closed(String),
}

/// The room and the endpoint this page chats through, from the welcome
/// (and the endpoint frames that follow when the app changes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The room's name.
    pub room: String,
    /// The `name` in the endpoint's meta, or its id.
    pub name: String,
    /// When the endpoint's code stops working (RFC 3339), if it does.
    pub expires_at: Option<String>,
}

/// A member of a presence room: an endpoint with a live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The endpoint's public id.
    pub id: String,
    /// The `name` in its meta, or its id.
    pub name: String,
    /// Whether it is this page's endpoint.
    pub you: bool,
}

/// Another member who signalled that they are typing, until the signal
/// is older than a few seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typer {
    /// The endpoint's public id.
    pub id: String,
    /// The `name` in its meta, or its id.
    pub name: String,
    /// Which of its signals this entry is for: only the newest one's timer
    /// removes it.
    pub signal: u64,
}

/// What the page shows, written by the connection and read by the view.
#[derive(Clone, Copy)]
pub struct ChatState {
    /// Where the connection stands.
    pub status: RwSignal<Status>,
    /// The room and who you are, once welcomed.
    pub identity: RwSignal<Option<Identity>>,
    /// The conversation, in seq order.
    pub lines: RwSignal<Vec<Line>>,
    /// Who is online; `None` in a room without presence.
    pub members: RwSignal<Option<Vec<Member>>>,
    /// Who else is typing.
    pub typing: RwSignal<Vec<Typer>>,
}

impl ChatState {
    fn new() -> Self {
        Self {
            status: RwSignal::new(Status::Connecting),
            identity: RwSignal::new(None),
            lines: RwSignal::new(Vec::new()),
            members: RwSignal::new(None),
            typing: RwSignal::new(Vec::new()),
        }
    }
}

/// The chat page.
#[component]
pub fn Chat() -> impl IntoView {
    let params = use_params_map();
    // Read once: the page chats through one endpoint, and no link leads
    // from one chat to another.
    let code = params.read_untracked().get("code").unwrap_or_default();
    let chat = ChatState::new();
    let outbox = socket::connect(code, chat);
    let moderating = Signal::derive(move || matches!(chat.status.get(), Status::Open { access: Access::Moderate, .. }));
    let room = move || chat.identity.with(|identity| identity.as_ref().map(|identity| identity.room.clone()));
    view! {
        <Title text=move || match room() {
            Some(room) => format!("{room} — comms chat"),
            None => "Chat — comms demo".to_owned(),
        } />
        <h1>{move || room().map_or_else(|| "Chat".to_owned(), |room| format!("Chat in {room}"))}</h1>
        <Who chat />
        <p role="status" class="chat-status">
            {move || match chat.status.get() {
                Status::Connecting => "Connecting…".to_owned(),
                Status::Open { access: Access::Read, .. } => {
                    "Connected with a read-only endpoint: you see the room live but cannot send.".to_owned()
                }
                Status::Open { spent: true, .. } => {
                    "Connected, but this endpoint has sent all the messages it may: you see the room live but cannot send."
                        .to_owned()
                }
                Status::Open { access: Access::Write, .. } => {
                    "Connected. Messages you send appear for everyone in the room.".to_owned()
                }
                Status::Open { access: Access::Moderate, .. } => {
                    "Connected. As a moderator you may also redact any message.".to_owned()
                }
                Status::Reconnecting => "The connection was lost: reconnecting…".to_owned(),
                Status::Closed(reason) => format!("The connection ended: {reason}"),
            }}
        </p>
        <div class="chat">
            <div class="chat-main">
                <Conversation lines=chat.lines moderating outbox />
                <Typing typing=chat.typing />
                <Composer status=chat.status outbox />
            </div>
            <Online members=chat.members />
        </div>
        <p>
            <a href="/demo">"Back to the demo"</a>
        </p>
    }
}

/// Which name your messages carry, and until when the code works.
#[component]
fn Who(chat: ChatState) -> impl IntoView {
    move || {
        chat.identity.get().map(|Identity { name, expires_at, .. }| {
            // `2026-12-31T12:00:00.000Z` → `2026-12-31 12:00`.
            let until = expires_at
                .map(|at| format!(" Your code works until {} UTC.", at.get(..16).unwrap_or(&at).replacen('T', " ", 1)));
            view! {
                <p class="chat-who">"You are " <strong>{name}</strong> "." {until}</p>
            }
        })
    }
}

/// The messages, oldest first; yours marked, redacted ones as removed.
/// A moderator gets a button on each message that redacts it.
#[component]
fn Conversation(lines: RwSignal<Vec<Line>>, moderating: Signal<bool>, outbox: socket::Outbox) -> impl IntoView {
    view! {
        <ol class="chat-lines" aria-label="Conversation" aria-live="polite">
            <For
                each=move || lines.get()
                key=|line| line.key
                children=move |line| {
                    let redact = line.seq.filter(|_| !line.removed).map(|seq| {
                        move || {
                            moderating
                                .get()
                                .then(|| {
                                    view! {
                                        " "
                                        <button type="button" class="redact" on:click=move |_| outbox.redact(seq)>
                                            "Redact"
                                        </button>
                                    }
                                })
                        }
                    });
                    let text = if line.removed {
                        view! { <em class="text">"message removed"</em> }.into_any()
                    } else {
                        view! { <span class="text">{line.text}</span> }.into_any()
                    };
                    view! {
                        <li class:own=line.own class:removed=line.removed>
                            <span class="seq">{line.seq.map(|seq| format!("#{seq}")).unwrap_or_default()}</span>
                            " "
                            <time>{line.time}</time>
                            " "
                            <strong class="author">{line.author}</strong>
                            {line.own.then_some(" (you)")}
                            ": "
                            {text}
                            {redact}
                        </li>
                    }
                        .into_any()
                }
            />
        </ol>
    }
    .into_any()
}

/// "Ann is typing…", for the members whose typing signal is recent.
#[component]
fn Typing(typing: RwSignal<Vec<Typer>>) -> impl IntoView {
    let text = move || {
        typing.with(|typers| {
            let names: Vec<&str> = typers.iter().map(|typer| typer.name.as_str()).collect();
            match names.as_slice() {
                [] => String::new(),
                [one] => format!("{one} is typing…"),
                [rest @ .., last] => format!("{} and {last} are typing…", rest.join(", ")),
            }
        })
    };
    view! { <p class="chat-typing" aria-live="polite">{text}</p> }
}

/// The message field and its button, usable while a writable connection
/// is open.
#[component]
fn Composer(status: RwSignal<Status>, outbox: socket::Outbox) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let writable =
        move || matches!(status.get(), Status::Open { access: Access::Write | Access::Moderate, spent: false });
    let send = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            outbox.send(text);
            draft.set(String::new());
        }
    };
    let input = move |event| {
        let text = event_target_value(&event);
        if !text.is_empty() {
            outbox.typing();
        }
        draft.set(text);
    };
    view! {
        <form on:submit=send class="chat-form">
            <label for="chat-input">"Message"</label>
            <input
                id="chat-input"
                type="text"
                autocomplete="off"
                prop:value=move || draft.get()
                on:input=input
                disabled=move || !writable()
            />
            <button type="submit" disabled=move || !writable()>
                "Send"
            </button>
        </form>
    }
}

/// Who is online, in a presence room (nothing in other rooms).
#[component]
fn Online(members: RwSignal<Option<Vec<Member>>>) -> impl IntoView {
    move || {
        members.get().map(|members| {
            view! {
                <section class="chat-online" aria-labelledby="online-heading">
                    <h2 id="online-heading">{format!("Online ({})", members.len())}</h2>
                    <ul aria-label="Online">
                        {members
                            .into_iter()
                            .map(|member| view! { <li>{member.name} {member.you.then_some(" (you)")}</li> })
                            .collect_view()}
                    </ul>
                </section>
            }
        })
    }
}
