//! The SDK against the real server, started in this process on a free
//! port with its own data folder: every REST call, error codes, fan-out,
//! read-only refusal, reconnects that resume without losing or repeating a
//! message (after a dropped socket and across a restart), presence (the
//! member list, joins, leaves, and the list after a reconnect), signals,
//! and endpoints as living capabilities: changes reaching open
//! connections, moderation, delegation, budgets, and the final closes of an
//! expired endpoint (4004) and of a socket over `max_connections` (4029);
//! and webhook deliveries as the server really sends them, verified by
//! [`comms_sdk::verify_webhook`] at a receiver on a loopback port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use comms_core::config::Config;
use comms_core::hub::CloseReason;
use comms_core::store::AppStatus;
use comms_sdk::{
    verify_webhook, Client, ConnectOptions, CreateEndpointRequest, CreateRoomRequest, CreateWebhookRequest, Endpoint,
    EndpointConnection, Error, ErrorCode, Event, EventType, Granularity, Member, Permission, PublishMessageRequest,
    Reconnect, RedactSenderRequest, Redaction, UpdateEndpointRequest, WebhookData, WebhookError, WebhookEvent, Welcome,
    DEFAULT_WEBHOOK_TOLERANCE,
};
use comms_server::startup::Application;
use comms_server::state::AppState;
use comms_testkit::webhook::{Received, WebhookReceiver};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

/// The servers' leave grace period: short, so the tests wait little for
/// leaves.
const GRACE: Duration = Duration::from_millis(300);

struct Server {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    data_dir: PathBuf,
}

impl Server {
    async fn start(data_dir: PathBuf, addr: SocketAddr) -> Self {
        let mut config = Config { data_dir: data_dir.clone(), ..Config::default() };
        config.demo.enabled = false;
        config.presence.leave_grace = GRACE;
        let application = Application::build(config, addr).await.expect("the server starts");
        let addr = application.local_addr();
        let state = application.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        Self { addr, state, stop: Some(stop), task, data_dir }
    }

    async fn stop(mut self) -> (PathBuf, SocketAddr) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task).await.expect("shutdown in time").unwrap();
        (self.data_dir, self.addr)
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn client(&self, app: &str) -> Client {
        let key = self.state.apps.create(app, AppStatus::Approved).await.expect("create app").api_key;
        Client::new(&self.base(), &key).unwrap()
    }
}

async fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path().to_path_buf(), "127.0.0.1:0".parse().unwrap()).await;
    (dir, server)
}

async fn next(connection: &mut EndpointConnection) -> Event {
    tokio::time::timeout(WAIT, connection.next_event()).await.expect("an event in time").expect("still open")
}

/// The next message, skipping welcomes and reconnect notices.
async fn next_message(connection: &mut EndpointConnection) -> comms_sdk::Message {
    loop {
        match next(connection).await {
            Event::Message(message) => return message,
            Event::Welcome(_) | Event::Reconnecting { .. } => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The next welcome, skipping reconnect notices.
async fn next_welcome(connection: &mut EndpointConnection) -> Welcome {
    loop {
        match next(connection).await {
            Event::Welcome(welcome) => return welcome,
            Event::Reconnecting { .. } => {}
            other => panic!("expected a welcome, got {other:?}"),
        }
    }
}

fn meta(value: serde_json::Value) -> Option<serde_json::Map<String, serde_json::Value>> {
    value.as_object().cloned()
}

/// A `read_and_write` endpoint of `room` named `name` in its meta.
async fn named(client: &Client, room: &str, name: &str) -> Endpoint {
    let request = CreateEndpointRequest {
        meta: meta(json!({"name": name})),
        ..CreateEndpointRequest::new(Permission::ReadAndWrite)
    };
    client.create_endpoint(room, &request).await.unwrap()
}

/// An `expires_at` `after` from now.
fn in_future(after: Duration) -> String {
    let at = chrono::Utc::now() + after;
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reconnects after 20 ms: a test that expects no reconnect would see one
/// at once.
fn fast() -> Reconnect {
    Reconnect { initial_delay: Duration::from_millis(20), ..Reconnect::default() }
}

/// The default options with `reconnect`.
fn reconnecting(reconnect: Reconnect) -> ConnectOptions {
    ConnectOptions { reconnect, ..ConnectOptions::default() }
}

/// Reads until the connection ends for good, failing on a reconnect, and
/// returns its close code; no event follows.
async fn closed_without_reconnecting(connection: &mut EndpointConnection) -> Option<u16> {
    loop {
        match next(connection).await {
            Event::Closed(closed) => {
                assert!(connection.next_event().await.is_none(), "nothing after the end");
                return closed.code;
            }
            Event::Reconnecting { reason, .. } => panic!("reconnected after {reason}"),
            Event::Welcome(_) => {}
            other => panic!("expected the end, got {other:?}"),
        }
    }
}

fn ids(members: Option<&[Member]>) -> Vec<&str> {
    members.expect("a member list").iter().map(|member| member.id.as_str()).collect()
}

/// Waits until the presence API lists exactly `expected` (public ids, in
/// order): the server has counted the joins and leaves out.
async fn until_members(client: &Client, room: &str, expected: &[&str]) {
    let listed = async {
        loop {
            let members = client.get_presence(room).await.unwrap().members.unwrap_or_default();
            if members.iter().map(|member| member.id.as_str()).eq(expected.iter().copied()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, listed).await.expect("the presence API lists them in time");
}

/// A TCP relay in front of the server whose line a test can cut: while cut
/// it drops the connections it carries and refuses new ones, so one client
/// loses its socket and cannot come back while the others stay connected.
struct Relay {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, line) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut line = line.clone();
                // Dropping `inbound` refuses the connection.
                if !*line.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = line.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn ws_url(&self, endpoint: &Endpoint) -> String {
        format!("ws://{}/ws/endpoint/{}/", self.addr, endpoint.code)
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

#[tokio::test]
async fn every_rest_call_works_and_errors_carry_their_codes() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;

    let room = client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    assert_eq!((room.name.as_str(), room.endpoint_count, room.online), ("lobby", 0, 0));
    assert_eq!(client.get_room("lobby").await.unwrap().name, "lobby");
    assert_eq!(client.list_rooms().await.unwrap().rooms.len(), 1);

    let request = CreateEndpointRequest {
        meta: meta(json!({"name": "Ann"})),
        ..CreateEndpointRequest::new(Permission::ReadAndWrite)
    };
    let endpoint = client.create_endpoint("lobby", &request).await.unwrap();
    assert_eq!(endpoint.permission, Permission::ReadAndWrite);
    assert_eq!(endpoint.meta["name"], "Ann");
    assert!(endpoint.ws_url.starts_with("ws://"));
    assert_eq!(client.list_endpoints("lobby").await.unwrap().endpoints[0].code, endpoint.code);

    for n in 1..=3 {
        let message = PublishMessageRequest { message: json!({"n": n}), meta: meta(json!({"bot": true})) };
        assert_eq!(client.publish_message("lobby", None, &message).await.unwrap().seq, n);
    }
    let page = client.list_messages("lobby", Some(1), Some(1), None).await.unwrap().messages;
    assert_eq!((page.len(), page[0].seq, page[0].sender.id.as_str()), (1, 2, "app"));
    assert_eq!(client.list_messages("lobby", None, None, None).await.unwrap().messages.len(), 3);
    let usage = client.get_usage(None, None, Some("minute".into())).await.unwrap();
    assert_eq!(usage.granularity, Granularity::Minute);
    assert_eq!(usage.points.iter().map(|point| point.messages_in).sum::<u64>(), 3);
    let bad_granularity = client.get_usage(None, None, Some("week".into())).await.unwrap_err();
    assert_eq!(bad_granularity.code(), Some(ErrorCode::Invalid));
    let retried = PublishMessageRequest::new(json!("once"));
    let first = client.publish_message("lobby", Some("retry-1"), &retried).await.unwrap();
    let again = client.publish_message("lobby", Some("retry-1"), &retried).await.unwrap();
    assert_eq!((again.id, again.seq), (first.id, first.seq), "a retry with the key publishes nothing new");

    client.delete_endpoint("lobby", &endpoint.code).await.unwrap();
    assert_eq!(client.delete_endpoint("lobby", &endpoint.code).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    let conflict = client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap_err();
    assert!(matches!(conflict, Error::Api { status: 409, code: ErrorCode::Conflict, .. }), "{conflict:?}");
    let invalid =
        client.create_room(&CreateRoomRequest { name: "no spaces".into(), presence: None }).await.unwrap_err();
    assert_eq!(invalid.code(), Some(ErrorCode::Invalid));
    let odd_name = client.get_room("a b/c").await.unwrap_err();
    assert_eq!(odd_name.code(), Some(ErrorCode::Invalid), "path segments are encoded: {odd_name:?}");
    client.delete_room("lobby").await.unwrap();
    assert_eq!(client.get_room("lobby").await.unwrap_err().code(), Some(ErrorCode::NotFound));

    let stranger = Client::new(&server.base(), "ck_not_a_key").unwrap();
    let forbidden = stranger.list_rooms().await.unwrap_err();
    assert!(matches!(forbidden, Error::Api { status: 403, code: ErrorCode::Forbidden, .. }));
}

#[tokio::test]
async fn connections_fan_out_and_a_reader_cannot_send() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let writer = CreateEndpointRequest {
        meta: meta(json!({"name": "Ann"})),
        ..CreateEndpointRequest::new(Permission::ReadAndWrite)
    };
    let writer = client.create_endpoint("lobby", &writer).await.unwrap();
    let reader = client.create_endpoint("lobby", &CreateEndpointRequest::new(Permission::Read)).await.unwrap();

    let mut ann = EndpointConnection::connect(&writer.ws_url).await.unwrap();
    let mut watcher = EndpointConnection::connect_code(&server.base(), &reader.code).await.unwrap();
    let Event::Welcome(welcome) = next(&mut ann).await else { panic!("a welcome first") };
    assert_eq!((welcome.room.as_str(), welcome.endpoint.permission), ("lobby", Permission::ReadAndWrite));
    assert!(matches!(next(&mut watcher).await, Event::Welcome(_)));

    ann.send(&json!({"text": "hi"})).await.unwrap();
    for connection in [&mut ann, &mut watcher] {
        let message = next_message(connection).await;
        assert_eq!((message.seq, message.message.clone()), (1, json!({"text": "hi"})));
        assert_eq!(message.sender.id, writer.id);
        assert_eq!(message.sender.meta["name"], "Ann");
    }
    let refused = watcher.send(&"may I?").await;
    assert!(matches!(refused, Err(Error::Refused { code: ErrorCode::ReadOnly, .. })), "{refused:?}");

    client.delete_endpoint("lobby", &reader.code).await.unwrap();
    let Event::Closed(closed) = next(&mut watcher).await else { panic!("closed for good") };
    assert_eq!(closed.code, Some(4001));
    assert!(watcher.next_event().await.is_none());
    assert!(matches!(EndpointConnection::connect(&reader.ws_url).await, Err(Error::EndpointGone)));

    ann.close().await;
    loop {
        if let Event::Closed(closed) = next(&mut ann).await {
            assert_eq!(closed.code, None);
            break;
        }
    }
}

#[tokio::test]
async fn a_dropped_socket_resumes_without_losing_or_repeating_messages() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let endpoint = client.create_endpoint("lobby", &CreateEndpointRequest::new(Permission::Read)).await.unwrap();
    let fast = Reconnect { initial_delay: Duration::from_millis(20), ..Reconnect::default() };
    let mut connection = EndpointConnection::connect_with(&endpoint.ws_url, reconnecting(fast)).await.unwrap();
    assert!(matches!(next(&mut connection).await, Event::Welcome(_)));

    let publish = |n: u64| {
        let client = client.clone();
        async move {
            let message = PublishMessageRequest { message: json!(n), meta: None };
            client.publish_message("lobby", None, &message).await.unwrap();
        }
    };
    for n in 1..=20 {
        publish(n).await;
    }
    // Read a few, then the server drops every socket as if they were too
    // slow; messages keep coming while the client is away.
    for seq in 1..=5 {
        assert_eq!(next_message(&mut connection).await.seq, seq);
    }
    server.state.hub.close_all(CloseReason::SlowConsumer);
    for n in 21..=40 {
        publish(n).await;
    }
    let mut seen = Vec::new();
    let mut reconnected = false;
    while seen.len() < 35 {
        match next(&mut connection).await {
            Event::Message(message) => seen.push(message.seq),
            Event::Reconnecting { .. } => reconnected = true,
            Event::Welcome(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(reconnected, "the socket was dropped and reopened");
    assert_eq!(seen, (6..=40).collect::<Vec<_>>(), "every seq once, in order");
}

#[tokio::test]
async fn a_server_restart_is_survived_by_resuming_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path().to_path_buf(), "127.0.0.1:0".parse().unwrap()).await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let endpoint = client.create_endpoint("lobby", &CreateEndpointRequest::new(Permission::Read)).await.unwrap();
    let fast = Reconnect {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..Reconnect::default()
    };
    let mut connection = EndpointConnection::connect_with(&endpoint.ws_url, reconnecting(fast)).await.unwrap();
    // Without `after_seq`, what follows the welcome is delivered: a message
    // published before the server has joined the socket to the room (it does
    // so after the handshake, which is all `connect` waits for) is not.
    next_welcome(&mut connection).await;
    for n in 1..=10 {
        client.publish_message("lobby", None, &PublishMessageRequest { message: json!(n), meta: None }).await.unwrap();
    }
    for seq in 1..=3 {
        assert_eq!(next_message(&mut connection).await.seq, seq);
    }

    let (data_dir, addr) = server.stop().await;
    // Same address and data folder: the old client and its key still work.
    let server = Server::start(data_dir, addr).await;
    for n in 11..=15 {
        client.publish_message("lobby", None, &PublishMessageRequest { message: json!(n), meta: None }).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 12 {
        seen.push(next_message(&mut connection).await.seq);
    }
    assert_eq!(seen, (4..=15).collect::<Vec<_>>(), "nothing lost or repeated across the restart");
    server.stop().await;
}

#[tokio::test]
async fn a_presence_room_lists_its_members_and_tells_of_joins_and_leaves() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    let room = client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: Some(true) }).await.unwrap();
    assert!(room.presence);
    let (ann, bob) = (named(&client, "lobby", "Ann").await, named(&client, "lobby", "Bob").await);

    let mut ann_chat = EndpointConnection::connect(&ann.ws_url).await.unwrap();
    assert_eq!(ann_chat.members(), None, "no list before the welcome is read");
    let welcome = next_welcome(&mut ann_chat).await;
    assert_eq!(ids(welcome.members.as_deref()), [ann.id.as_str()]);
    assert_eq!(ids(ann_chat.members()), [ann.id.as_str()]);

    let mut bob_chat = EndpointConnection::connect(&bob.ws_url).await.unwrap();
    next_welcome(&mut bob_chat).await;
    assert_eq!(ids(bob_chat.members()), [ann.id.as_str(), bob.id.as_str()], "in the order they joined");
    let Event::Join(joined) = next(&mut ann_chat).await else { panic!("a join") };
    assert_eq!(
        (joined.id.as_str(), joined.meta["name"].as_str(), joined.connections),
        (bob.id.as_str(), Some("Bob"), 1)
    );
    assert_eq!(ids(ann_chat.members()), [ann.id.as_str(), bob.id.as_str()]);

    bob_chat.close().await;
    let Event::Leave(left) = next(&mut ann_chat).await else { panic!("a leave") };
    assert_eq!((left.id.as_str(), left.connections), (bob.id.as_str(), 0));
    assert_eq!(ids(ann_chat.members()), [ann.id.as_str()]);
}

#[tokio::test]
async fn members_are_right_again_after_a_reconnect() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: Some(true) }).await.unwrap();
    let (ann, bob) = (named(&client, "lobby", "Ann").await, named(&client, "lobby", "Bob").await);
    let carol = named(&client, "lobby", "Carol").await;
    let relay = Relay::start(server.addr).await;
    let fast = Reconnect {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        ..Reconnect::default()
    };
    let mut ann_chat = EndpointConnection::connect_with(&relay.ws_url(&ann), reconnecting(fast)).await.unwrap();
    next_welcome(&mut ann_chat).await;
    let bob_chat = EndpointConnection::connect(&bob.ws_url).await.unwrap();
    assert!(matches!(next(&mut ann_chat).await, Event::Join(member) if member.id == bob.id));

    // Ann is away long enough for the server to count her out; meanwhile
    // Bob leaves and Carol comes, and Ann hears of neither.
    relay.cut();
    assert!(matches!(next(&mut ann_chat).await, Event::Reconnecting { .. }));
    bob_chat.close().await;
    let mut carol_chat = EndpointConnection::connect(&carol.ws_url).await.unwrap();
    next_welcome(&mut carol_chat).await;
    until_members(&client, "lobby", &[carol.id.as_str()]).await;
    assert_eq!(ids(ann_chat.members()), [ann.id.as_str(), bob.id.as_str()], "the last list known while away");

    relay.restore();
    let welcome = next_welcome(&mut ann_chat).await;
    assert_eq!(ids(welcome.members.as_deref()), [carol.id.as_str(), ann.id.as_str()]);
    assert_eq!(ids(ann_chat.members()), [carol.id.as_str(), ann.id.as_str()], "Bob gone, Carol there");
}

#[tokio::test]
async fn signals_reach_every_other_connection_and_never_come_back() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let (ann, bob) = (named(&client, "lobby", "Ann").await, named(&client, "lobby", "Bob").await);
    let reader = client.create_endpoint("lobby", &CreateEndpointRequest::new(Permission::Read)).await.unwrap();
    let mut ann_chat = EndpointConnection::connect(&ann.ws_url).await.unwrap();
    let mut bob_chat = EndpointConnection::connect(&bob.ws_url).await.unwrap();
    let mut watcher = EndpointConnection::connect(&reader.ws_url).await.unwrap();
    for connection in [&mut ann_chat, &mut bob_chat, &mut watcher] {
        assert_eq!(next_welcome(connection).await.members, None, "no presence in this room");
        assert_eq!(connection.members(), None);
    }

    ann_chat.send_signal(&json!({"typing": true})).await.unwrap();
    for connection in [&mut bob_chat, &mut watcher] {
        let Event::Signal(signal) = next(connection).await else { panic!("a signal") };
        assert_eq!((signal.sender.id.as_str(), signal.signal), (ann.id.as_str(), json!({"typing": true})));
        assert_eq!(signal.sender.meta["name"], "Ann");
    }
    // The message Ann sends next is the first thing she gets back: her
    // signal did not come before it.
    ann_chat.send(&"done typing").await.unwrap();
    for connection in [&mut ann_chat, &mut bob_chat, &mut watcher] {
        let Event::Message(message) = next(connection).await else { panic!("the message, and nothing before it") };
        assert_eq!(message.message, json!("done typing"));
    }

    watcher.send_signal(&json!({"typing": true})).await.unwrap();
    let Event::Error(refused) = next(&mut watcher).await else { panic!("an error frame") };
    assert_eq!(refused.code, ErrorCode::ReadOnly);

    ann_chat.close().await;
    while !matches!(next(&mut ann_chat).await, Event::Closed(_)) {}
    assert!(matches!(ann_chat.send_signal(&json!({"typing": false})).await, Err(Error::NotConnected)));
}

#[tokio::test]
async fn an_endpoint_change_reaches_its_own_connections_and_applies_at_once() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let (ann, bob) = (named(&client, "lobby", "Ann").await, named(&client, "lobby", "Bob").await);
    let mut ann_chat = EndpointConnection::connect(&ann.ws_url).await.unwrap();
    let mut bob_chat = EndpointConnection::connect(&bob.ws_url).await.unwrap();
    assert_eq!(ann_chat.endpoint(), None, "nothing known before the welcome is read");
    let welcome = next_welcome(&mut ann_chat).await;
    assert_eq!((welcome.endpoint.permission, welcome.endpoint.expires_at.as_deref()), (Permission::ReadAndWrite, None));
    assert_eq!(ann_chat.endpoint(), Some(&welcome.endpoint));
    next_welcome(&mut bob_chat).await;

    let change = UpdateEndpointRequest {
        permission: Some(Permission::Read),
        meta: meta(json!({"name": "Ann (muted)"})),
        expires_at: Some(Some(in_future(Duration::from_secs(3600)))),
        ..UpdateEndpointRequest::default()
    };
    let changed = client.update_endpoint("lobby", &ann.code, &change).await.unwrap();
    assert_eq!(changed.permission, Permission::Read);
    let Event::Endpoint(endpoint) = next(&mut ann_chat).await else { panic!("an endpoint change") };
    assert_eq!((endpoint.id.as_str(), endpoint.permission), (ann.id.as_str(), Permission::Read));
    assert_eq!((endpoint.meta["name"].as_str(), endpoint.expires_at.is_some()), (Some("Ann (muted)"), true));
    assert_eq!(ann_chat.endpoint().map(|endpoint| endpoint.permission), Some(Permission::Read));
    let refused = ann_chat.send(&"still here?").await;
    assert!(
        matches!(refused, Err(Error::Refused { code: ErrorCode::ReadOnly, .. })),
        "the downgrade applies to the open connection: {refused:?}"
    );

    // `Some(None)` sends `null`, which clears the expiry.
    let never = UpdateEndpointRequest { expires_at: Some(None), ..UpdateEndpointRequest::default() };
    assert_eq!(client.update_endpoint("lobby", &ann.code, &never).await.unwrap().expires_at, None);
    let Event::Endpoint(endpoint) = next(&mut ann_chat).await else { panic!("an endpoint change") };
    assert_eq!((endpoint.permission, endpoint.expires_at), (Permission::Read, None));

    // Only Ann's connections heard of it: the first thing Bob reads is his
    // own message.
    bob_chat.send(&"hi").await.unwrap();
    let Event::Message(message) = next(&mut bob_chat).await else { panic!("the message, and nothing before it") };
    assert_eq!(message.message, json!("hi"));
}

#[tokio::test]
async fn a_moderator_redacts_and_every_connection_hears_of_it() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let ann = named(&client, "lobby", "Ann").await;
    let moderator = client.create_endpoint("lobby", &CreateEndpointRequest::new(Permission::Moderate)).await.unwrap();
    let mut ann_chat = EndpointConnection::connect(&ann.ws_url).await.unwrap();
    let mut mod_chat = EndpointConnection::connect(&moderator.ws_url).await.unwrap();
    assert_eq!(next_welcome(&mut mod_chat).await.endpoint.permission, Permission::Moderate);
    next_welcome(&mut ann_chat).await;

    ann_chat.send(&"oops").await.unwrap();
    let sent = next_message(&mut ann_chat).await;
    assert_eq!(next_message(&mut mod_chat).await.id, sent.id);
    ann_chat.redact(sent.seq).await.unwrap();
    let Event::Error(refused) = next(&mut ann_chat).await else { panic!("an error frame") };
    assert_eq!(refused.code, ErrorCode::Forbidden, "only a moderator redacts");

    mod_chat.redact(sent.seq).await.unwrap();
    let redaction = Redaction { seq: sent.seq, id: sent.id.clone() };
    for connection in [&mut ann_chat, &mut mod_chat] {
        assert_eq!(next(connection).await, Event::Redaction(redaction.clone()));
    }
    mod_chat.redact(sent.seq + 100).await.unwrap();
    let Event::Error(unknown) = next(&mut mod_chat).await else { panic!("an error frame") };
    assert_eq!(unknown.code, ErrorCode::NotFound);

    let history = client.list_messages("lobby", None, None, None).await.unwrap().messages;
    assert_eq!((history[0].message.clone(), history[0].redacted_at.is_some()), (json!(null), true));
    // Resuming serves it redacted too, with its sender.
    let mut late = EndpointConnection::connect_with(
        &ann.ws_url,
        ConnectOptions { after_seq: Some(0), ..ConnectOptions::default() },
    )
    .await
    .unwrap();
    let resumed = next_message(&mut late).await;
    assert_eq!((resumed.seq, resumed.message, resumed.sender.id), (sent.seq, json!(null), ann.id));
    assert!(resumed.redacted_at.is_some());
}

#[tokio::test]
async fn children_speak_for_their_parent_and_the_app_redacts_by_seq_and_by_sender() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let parent =
        CreateEndpointRequest { can_delegate: Some(true), ..CreateEndpointRequest::new(Permission::ReadAndWrite) };
    let parent = client.create_endpoint("lobby", &parent).await.unwrap();
    assert!(parent.can_delegate);
    let kid = CreateEndpointRequest {
        meta: meta(json!({"name": "Kid"})),
        ..CreateEndpointRequest::new(Permission::ReadAndWrite)
    };
    // The parent's holder needs no API key.
    let holder = Client::new(&server.base(), "").unwrap();
    let child = holder.create_child(&parent.code, &kid).await.unwrap();
    assert_eq!((child.parent.as_deref(), child.room.as_str()), (Some(parent.id.as_str()), "lobby"));
    let reader = client.create_endpoint("lobby", &CreateEndpointRequest::new(Permission::Read)).await.unwrap();

    let mut watcher = EndpointConnection::connect(&reader.ws_url).await.unwrap();
    let mut kid_chat = EndpointConnection::connect(&child.ws_url).await.unwrap();
    next_welcome(&mut watcher).await;
    next_welcome(&mut kid_chat).await;
    client.publish_message("lobby", None, &PublishMessageRequest::new(json!("welcome"))).await.unwrap();
    assert_eq!(next_message(&mut watcher).await.sender.parent, None);
    for text in ["one", "two"] {
        kid_chat.send(&text).await.unwrap();
        let message = next_message(&mut watcher).await;
        assert_eq!(
            (message.sender.id.as_str(), message.sender.meta["name"].as_str()),
            (child.id.as_str(), Some("Kid"))
        );
        assert_eq!(message.sender.parent.as_deref(), Some(parent.id.as_str()));
    }
    let from_kid = client.list_messages("lobby", None, None, Some(child.id.clone())).await.unwrap().messages;
    assert_eq!(from_kid.iter().map(|message| message.seq).collect::<Vec<_>>(), [2, 3]);
    let listed = client.list_endpoints("lobby").await.unwrap().endpoints;
    let listed_child = listed.iter().find(|endpoint| endpoint.id == child.id).expect("the child is listed");
    assert_eq!((listed_child.messages_sent, listed_child.online), (2, 1));

    client.redact_message("lobby", 1).await.unwrap();
    assert!(matches!(next(&mut watcher).await, Event::Redaction(Redaction { seq: 1, .. })));
    let redacted = client.redact_sender("lobby", &RedactSenderRequest::new(child.id.clone())).await.unwrap();
    assert_eq!(redacted.redacted, 2);
    for seq in [2, 3] {
        assert!(matches!(next(&mut watcher).await, Event::Redaction(redaction) if redaction.seq == seq));
    }
    let history = client.list_messages("lobby", None, None, None).await.unwrap().messages;
    assert!(history.iter().all(|message| message.redacted_at.is_some() && message.message.is_null()));
}

#[tokio::test]
async fn a_spent_budget_refuses_sends_and_keeps_the_connection() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let once = CreateEndpointRequest { max_messages: Some(1), ..CreateEndpointRequest::new(Permission::ReadAndWrite) };
    let once = client.create_endpoint("lobby", &once).await.unwrap();
    let mut chat = EndpointConnection::connect(&once.ws_url).await.unwrap();
    next_welcome(&mut chat).await;
    chat.send(&"one").await.unwrap();
    assert_eq!(next_message(&mut chat).await.message, json!("one"));
    let refused = chat.send(&"two").await;
    assert!(matches!(refused, Err(Error::Refused { code: ErrorCode::BudgetExhausted, .. })), "{refused:?}");
    client.publish_message("lobby", None, &PublishMessageRequest::new(json!("still reading"))).await.unwrap();
    assert_eq!(next_message(&mut chat).await.message, json!("still reading"));
}

#[tokio::test]
async fn an_expired_endpoint_is_closed_with_4004_and_not_reconnected() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    // Long enough to connect on a busy machine before it passes.
    let expires_at = in_future(Duration::from_secs(3));
    let brief =
        CreateEndpointRequest { expires_at: Some(expires_at.clone()), ..CreateEndpointRequest::new(Permission::Read) };
    let brief = client.create_endpoint("lobby", &brief).await.unwrap();
    let mut chat = EndpointConnection::connect_with(&brief.ws_url, reconnecting(fast())).await.unwrap();
    let welcome = next_welcome(&mut chat).await;
    assert!(welcome.endpoint.expires_at.is_some());
    assert_eq!(closed_without_reconnecting(&mut chat).await, Some(4004));
    assert!(matches!(EndpointConnection::connect(&brief.ws_url).await, Err(Error::EndpointGone)));
}

#[tokio::test]
async fn a_socket_over_max_connections_is_closed_with_4029_and_not_reconnected() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    let single = CreateEndpointRequest { max_connections: Some(1), ..CreateEndpointRequest::new(Permission::Read) };
    let single = client.create_endpoint("lobby", &single).await.unwrap();
    let mut first = EndpointConnection::connect(&single.ws_url).await.unwrap();
    next_welcome(&mut first).await;
    let mut second = EndpointConnection::connect_with(&single.ws_url, reconnecting(fast())).await.unwrap();
    assert_eq!(closed_without_reconnecting(&mut second).await, Some(4029));
    client.publish_message("lobby", None, &PublishMessageRequest::new(json!("first stays"))).await.unwrap();
    assert_eq!(next_message(&mut first).await.message, json!("first stays"));
}

/// `delivery` verified with `secret` now, with the SDK's default tolerance.
fn verify(secret: &str, delivery: &Received) -> Result<WebhookEvent, WebhookError> {
    let Received { id, timestamp, signature, body, .. } = delivery;
    verify_webhook(secret, id, timestamp, signature, body.as_bytes(), SystemTime::now(), DEFAULT_WEBHOOK_TOLERANCE)
}

#[tokio::test]
async fn real_webhook_deliveries_verify_and_a_changed_body_or_another_secret_is_refused() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;
    let receiver = WebhookReceiver::start().await;
    let events = ["room.created", "endpoint.created", "message.created"].map(String::from).to_vec();
    let hook = client.create_webhook(&CreateWebhookRequest::new(events, receiver.url())).await.unwrap();

    client.create_room(&CreateRoomRequest::new("lobby".into())).await.unwrap();
    let endpoint = named(&client, "lobby", "Ann").await;
    let published =
        client.publish_message("lobby", None, &PublishMessageRequest::new(json!({"text": "hi"}))).await.unwrap();
    // `wait_for` fails the test after 20 s.
    let received = receiver.wait_for("three deliveries", |received| received.len() >= 3).await;

    let mut seen = Vec::new();
    for delivery in &received {
        let event = verify(&hook.secret, delivery).unwrap_or_else(|err| panic!("{err}: {delivery:?}"));
        assert!(event.timestamp.ends_with('Z'), "RFC 3339 UTC: {}", event.timestamp);
        match (event.event_type, event.data) {
            (EventType::RoomCreated, WebhookData::Room(room)) => assert_eq!(room.name, "lobby"),
            (EventType::EndpointCreated, WebhookData::Endpoint { room, endpoint: created }) => {
                assert_eq!((room.as_str(), created.id.as_str()), ("lobby", endpoint.id.as_str()));
                assert_eq!(created.meta["name"], "Ann");
            }
            (EventType::MessageCreated, WebhookData::Message(message)) => {
                assert_eq!((message.id.as_str(), message.seq), (published.id.as_str(), published.seq));
                assert_eq!(message.message, json!({"text": "hi"}));
            }
            other => panic!("unexpected event {other:?}"),
        }
        seen.push(event.event_type);
    }
    seen.sort_by_key(|event_type| event_type.as_str());
    assert_eq!(seen, [EventType::EndpointCreated, EventType::MessageCreated, EventType::RoomCreated], "each once");
    let mut ids: Vec<&str> = received.iter().map(|delivery| delivery.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "an id per event");

    let delivery = &received[0];
    let tampered = Received { body: delivery.body.replacen("lobby", "lobbx", 1), ..delivery.clone() };
    assert_ne!(tampered.body, delivery.body);
    assert!(matches!(verify(&hook.secret, &tampered), Err(WebhookError::InvalidSignature)));
    let restamped = Received { timestamp: format!("{}1", delivery.timestamp), ..delivery.clone() };
    assert!(matches!(verify(&hook.secret, &restamped), Err(WebhookError::InvalidSignature)));
    let another = client.create_webhook(&CreateWebhookRequest::new(vec!["room.deleted".into()], receiver.url())).await;
    let another = another.unwrap();
    assert_ne!(another.secret, hook.secret);
    assert!(matches!(verify(&another.secret, delivery), Err(WebhookError::InvalidSignature)));
    // The same delivery an hour later: a replay.
    let Received { id, timestamp, signature, body, .. } = delivery;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let replayed =
        verify_webhook(&hook.secret, id, timestamp, signature, body.as_bytes(), later, DEFAULT_WEBHOOK_TOLERANCE);
    assert!(matches!(replayed, Err(WebhookError::StaleTimestamp { .. })), "{replayed:?}");
}
