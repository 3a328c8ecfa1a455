//! The SDK against the real server, started in this process on a free
//! port with its own data folder: every REST call, error codes, fan-out,
//! read-only refusal, and reconnects that resume without losing or
//! repeating a message (after a dropped socket and across a restart).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use comms_core::config::Config;
use comms_core::hub::CloseReason;
use comms_core::store::AppStatus;
use comms_sdk::{
    Client, CreateEndpointRequest, CreateRoomRequest, EndpointConnection, Error, ErrorCode, Event, Permission,
    PublishMessageRequest, Reconnect,
};
use comms_server::startup::Application;
use comms_server::state::AppState;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

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

fn meta(value: serde_json::Value) -> Option<serde_json::Map<String, serde_json::Value>> {
    value.as_object().cloned()
}

#[tokio::test]
async fn every_rest_call_works_and_errors_carry_their_codes() {
    let (_dir, server) = server().await;
    let client = server.client("acme").await;

    let room = client.create_room(&CreateRoomRequest { name: "lobby".into(), presence: None }).await.unwrap();
    assert_eq!((room.name.as_str(), room.endpoint_count, room.online), ("lobby", 0, 0));
    assert_eq!(client.get_room("lobby").await.unwrap().name, "lobby");
    assert_eq!(client.list_rooms().await.unwrap().rooms.len(), 1);

    let request = CreateEndpointRequest { permission: Permission::ReadAndWrite, meta: meta(json!({"name": "Ann"})) };
    let endpoint = client.create_endpoint("lobby", &request).await.unwrap();
    assert_eq!(endpoint.permission, Permission::ReadAndWrite);
    assert_eq!(endpoint.meta["name"], "Ann");
    assert!(endpoint.ws_url.starts_with("ws://"));
    assert_eq!(client.list_endpoints("lobby").await.unwrap().endpoints[0].code, endpoint.code);

    for n in 1..=3 {
        let message = PublishMessageRequest { message: json!({"n": n}), meta: meta(json!({"bot": true})) };
        assert_eq!(client.publish_message("lobby", &message).await.unwrap().seq, n);
    }
    let page = client.list_messages("lobby", Some(1), Some(1)).await.unwrap().messages;
    assert_eq!((page.len(), page[0].seq, page[0].sender.id.as_str()), (1, 2, "app"));
    assert_eq!(client.list_messages("lobby", None, None).await.unwrap().messages.len(), 3);

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
    let writer = CreateEndpointRequest { permission: Permission::ReadAndWrite, meta: meta(json!({"name": "Ann"})) };
    let writer = client.create_endpoint("lobby", &writer).await.unwrap();
    let reader = client.create_endpoint("lobby", &CreateEndpointRequest { permission: Permission::Read, meta: None });
    let reader = reader.await.unwrap();

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
    watcher.send(&"may I?").await.unwrap();
    let Event::Error(refused) = next(&mut watcher).await else { panic!("an error frame") };
    assert_eq!(refused.code, ErrorCode::ReadOnly);

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
    let endpoint = client.create_endpoint("lobby", &CreateEndpointRequest { permission: Permission::Read, meta: None });
    let endpoint = endpoint.await.unwrap();
    let fast = Reconnect { initial_delay: Duration::from_millis(20), ..Reconnect::default() };
    let mut connection = EndpointConnection::connect_with(&endpoint.ws_url, None, fast).await.unwrap();
    assert!(matches!(next(&mut connection).await, Event::Welcome(_)));

    let publish = |n: u64| {
        let client = client.clone();
        async move {
            let message = PublishMessageRequest { message: json!(n), meta: None };
            client.publish_message("lobby", &message).await.unwrap();
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
    let endpoint = client.create_endpoint("lobby", &CreateEndpointRequest { permission: Permission::Read, meta: None });
    let endpoint = endpoint.await.unwrap();
    let fast = Reconnect {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..Reconnect::default()
    };
    let mut connection = EndpointConnection::connect_with(&endpoint.ws_url, None, fast).await.unwrap();
    for n in 1..=10 {
        client.publish_message("lobby", &PublishMessageRequest { message: json!(n), meta: None }).await.unwrap();
    }
    for seq in 1..=3 {
        assert_eq!(next_message(&mut connection).await.seq, seq);
    }

    let (data_dir, addr) = server.stop().await;
    // Same address and data folder: the old client and its key still work.
    let server = Server::start(data_dir, addr).await;
    for n in 11..=15 {
        client.publish_message("lobby", &PublishMessageRequest { message: json!(n), meta: None }).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 12 {
        seen.push(next_message(&mut connection).await.seq);
    }
    assert_eq!(seen, (4..=15).collect::<Vec<_>>(), "nothing lost or repeated across the restart");
    server.stop().await;
}
