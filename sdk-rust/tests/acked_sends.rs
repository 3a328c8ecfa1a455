//! Acknowledged sends, states and stop rules against real `comms serve`
//! processes (the workspace's `comms` binary, or `COMMS_BIN`), which the
//! tests stop with SIGTERM or kill with SIGKILL:
//!
//! - 100 sends across a stop and a restart each resolve with their receipt
//!   and are published exactly once, as history shows;
//! - a connection reconnecting (through a relay pointed nowhere) when its
//!   endpoint is deleted ends within two seconds, without joining;
//! - the state goes connecting, open, reconnecting, closed; over the
//!   queue's bound a send fails at once; waiting sends fail when the
//!   connection is closed; a dropped connection closes its socket and its
//!   senders fail;
//! - the REST publish retries a restarting server with its key and
//!   publishes once;
//! - on two nodes sharing PostgreSQL and Redis (on 127.0.0.1; under
//!   `CI=true` their absence fails the test), sends published on one node
//!   whose acks were lost, resent to the other, publish nothing new.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use comms_sdk::{
    Client, ConnectOptions, CreateEndpointRequest, CreateRoomRequest, EndpointConnection, Error, Event, Message,
    Permission, PublishMessageRequest, Reconnect, SendReceipt, State,
};
use comms_testkit::postgres::TestDatabase;
use comms_testkit::redis::TestRedis;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

const WAIT: Duration = Duration::from_secs(15);

/// The `comms` binary: `COMMS_BIN`, or the one built beside this test
/// (test executables live in `target/<profile>/deps`).
fn comms_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("COMMS_BIN") {
        return path.into();
    }
    let test = std::env::current_exe().expect("the test's own path");
    let path = test.parent().and_then(Path::parent).expect("target/<profile>/deps").join("comms");
    assert!(path.exists(), "no comms binary at {}: `cargo build -p comms-server`, or set COMMS_BIN", path.display());
    path
}

/// How a test stops a node.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// SIGTERM: a clean shutdown, history flushed.
    Term,
    /// SIGKILL: a crash.
    Kill,
}

/// One `comms serve` process, restartable on the same address and data.
struct Node {
    data_dir: tempfile::TempDir,
    addr: SocketAddr,
    env: Vec<(&'static str, String)>,
    process: Option<Child>,
}

impl Node {
    async fn start(env: Vec<(&'static str, String)>) -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut node = Self { data_dir: tempfile::tempdir().unwrap(), addr, env, process: None };
        node.restart().await;
        node
    }

    fn comms(&self) -> Command {
        let mut command = Command::new(comms_binary());
        command
            .env("COMMS_DATA_DIR", self.data_dir.path())
            .env("COMMS_DEMO__ENABLED", "false")
            .envs(self.env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Starts the process and waits until it is ready.
    async fn restart(&mut self) {
        let process = self.comms().args(["serve", "--addr", &self.addr.to_string()]).spawn().expect("start comms");
        self.process = Some(process);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let ready = http.get(format!("{}/readyz", self.base())).send().await;
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the node at {} did not become ready", self.addr);
    }

    async fn stop(&mut self, how: Stop) {
        let mut process = self.process.take().expect("a running node");
        match how {
            Stop::Term => {
                let pid = process.id().expect("a running process").to_string();
                let sent = Command::new("kill").args(["-TERM", &pid]).status().await.expect("run kill");
                assert!(sent.success());
            }
            Stop::Kill => process.start_kill().expect("SIGKILL"),
        }
        tokio::time::timeout(WAIT, process.wait()).await.expect("stopped in time").expect("exit status");
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API key of an approved app made with the command line.
    async fn app_key(&self, name: &str) -> String {
        let output = self.comms().args(["app", "create", name]).output().await.expect("run comms app create");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        created["api_key"].as_str().unwrap().to_owned()
    }

    /// A client of this node for a new approved app.
    async fn client(&self, name: &str) -> Client {
        Client::new(&self.base(), &self.app_key(name).await).unwrap()
    }
}

/// Reconnects quickly, so the tests wait little for it.
fn quickly() -> ConnectOptions {
    let reconnect = Reconnect {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
        max_attempts: None,
    };
    ConnectOptions { reconnect, ..ConnectOptions::default() }
}

/// A room `lobby` with a `read_and_write` endpoint; its `ws_url`.
async fn lobby(client: &Client) -> (String, String) {
    client.create_room(&CreateRoomRequest::new("lobby".into())).await.unwrap();
    let endpoint =
        client.create_endpoint("lobby", &CreateEndpointRequest::new(Permission::ReadAndWrite)).await.unwrap();
    (endpoint.ws_url, endpoint.code)
}

async fn history(client: &Client) -> Vec<Message> {
    client.list_messages("lobby", None, Some(1000), None).await.unwrap().messages
}

/// Every payload `0..count` once in `history`, with the id and seq its
/// send resolved with.
fn assert_each_published_once(history: &[Message], receipts: &HashMap<u64, SendReceipt>, count: u64) {
    let mut seen: HashMap<u64, &Message> = HashMap::new();
    for message in history {
        let n = message.message.as_u64().expect("a number");
        assert!(seen.insert(n, message).is_none(), "{n} published twice");
    }
    for n in 0..count {
        let message = seen.get(&n).unwrap_or_else(|| panic!("{n} was not published"));
        let receipt = &receipts[&n];
        assert_eq!((&message.id, message.seq), (&receipt.id, receipt.seq), "the receipt of {n} is its message");
    }
    assert_eq!(history.len() as u64, count, "nothing else was published");
}

/// Sends `0..100` from several tasks; the node is stopped `how` after the
/// first half and started again after 70, so sends are acknowledged, in
/// flight, and queued when it goes.
async fn hundred_sends_across_a_restart(how: Stop) {
    let mut node = Node::start(Vec::new()).await;
    let client = node.client("acme").await;
    let (ws_url, _) = lobby(&client).await;
    let chat = EndpointConnection::connect_with(&ws_url, quickly()).await.unwrap();
    chat.ready().await.unwrap();
    let sender = chat.sender();
    let mut sends = JoinSet::new();
    for n in 0..100_u64 {
        match n {
            50 => node.stop(how).await,
            70 => node.restart().await,
            _ => {}
        }
        let sender = sender.clone();
        sends.spawn(async move { (n, sender.send(&json!(n)).await) });
        if n % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut receipts = HashMap::new();
    while let Some(sent) = tokio::time::timeout(WAIT, sends.join_next()).await.expect("every send resolves in time") {
        let (n, receipt) = sent.unwrap();
        receipts.insert(n, receipt.unwrap_or_else(|err| panic!("send {n} failed: {err}")));
    }
    assert_each_published_once(&history(&client).await, &receipts, 100);
    assert_eq!(chat.state(), State::Open);
}

#[tokio::test]
async fn a_hundred_sends_across_a_clean_restart_are_each_published_once() {
    hundred_sends_across_a_restart(Stop::Term).await;
}

#[tokio::test]
async fn a_hundred_sends_across_a_crash_are_each_published_once() {
    hundred_sends_across_a_restart(Stop::Kill).await;
}

#[tokio::test]
async fn an_endpoint_deleted_while_reconnecting_ends_the_connection_within_two_seconds() {
    let node = Node::start(Vec::new()).await;
    let client = node.client("acme").await;
    let (_, code) = lobby(&client).await;
    // The connection goes through a relay the test points nowhere, so it is
    // away, retrying, when the endpoint is deleted.
    let switch = Switch::start(node.addr).await;
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let reconnect = Reconnect {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
        max_attempts: None,
    };
    let options = ConnectOptions { reconnect, ..ConnectOptions::default() };
    let mut chat = EndpointConnection::connect_with(&switch.ws_url(&code), options).await.unwrap();
    let mut states = chat.sender().state_changes();
    chat.ready().await.unwrap();
    switch.switch_to(nowhere);
    tokio::time::timeout(WAIT, states.wait_for(|state| *state == State::Reconnecting)).await.unwrap().unwrap();
    client.delete_endpoint("lobby", &code).await.unwrap();
    let deleted = Instant::now();
    switch.switch_to(node.addr);
    let closed = loop {
        match tokio::time::timeout(WAIT, chat.next_event()).await.expect("an event in time") {
            Some(Event::Closed(closed)) => break closed,
            Some(_) => {}
            None => panic!("ended without a closed event"),
        }
    };
    assert!(deleted.elapsed() < Duration::from_secs(2), "closed {:?} after the delete", deleted.elapsed());
    assert_eq!(closed.code, None, "a refused upgrade has no close code: {}", closed.reason);
    assert_eq!(chat.state(), State::Closed);
    assert!(chat.next_event().await.is_none());
}

#[tokio::test]
async fn states_follow_the_socket_and_the_queue_is_bounded() {
    let mut node = Node::start(Vec::new()).await;
    let client = node.client("acme").await;
    let (ws_url, _) = lobby(&client).await;
    let options = ConnectOptions { max_pending_sends: 3, ..quickly() };
    let mut chat = EndpointConnection::connect_with(&ws_url, options).await.unwrap();
    let mut states = chat.sender().state_changes();
    chat.ready().await.unwrap();
    assert_eq!(chat.state(), State::Open);
    let first = chat.send(&"before").await.unwrap();
    assert_eq!(first.seq, 1);

    node.stop(Stop::Term).await;
    tokio::time::timeout(WAIT, states.wait_for(|state| *state == State::Reconnecting)).await.unwrap().unwrap();
    assert!(matches!(chat.send_signal(&"typing").await, Err(Error::NotConnected)), "signals are not kept");
    let mut waiting = JoinSet::new();
    for n in 0..3 {
        let sender = chat.sender();
        waiting.spawn(async move { sender.send(&n).await });
    }
    // On this single-threaded runtime the three run now, up to waiting for
    // their acks: their sends are ahead of the next one in the queue.
    tokio::task::yield_now().await;
    assert!(matches!(chat.send(&"one too many").await, Err(Error::QueueFull)), "over the bound, refused at once");
    chat.close().await;
    while let Some(sent) = waiting.join_next().await {
        assert!(matches!(sent.unwrap(), Err(Error::Closed)), "a waiting send fails when the connection closes");
    }
    assert_eq!(chat.state(), State::Closed);
    assert!(matches!(chat.ready().await, Err(Error::Closed)));
    let mut last = None;
    while let Some(event) = chat.next_event().await {
        last = Some(event);
    }
    assert!(matches!(&last, Some(Event::Closed(closed)) if closed.code.is_none()), "closed by the client: {last:?}");
    node.restart().await;
    let stored = history(&client).await;
    assert_eq!(stored.len(), 1, "only the acknowledged send was published: {stored:?}");
}

#[tokio::test]
async fn a_sender_stops_when_its_connection_is_dropped() {
    let node = Node::start(Vec::new()).await;
    let client = node.client("acme").await;
    let (ws_url, _) = lobby(&client).await;
    let chat = EndpointConnection::connect_with(&ws_url, quickly()).await.unwrap();
    chat.ready().await.unwrap();
    let sender = chat.sender();
    let mut states = sender.state_changes();
    drop(chat);
    tokio::time::timeout(WAIT, states.wait_for(|state| *state == State::Closed)).await.unwrap().unwrap();
    assert!(matches!(sender.send(&"after").await, Err(Error::Closed)));
    let deadline = Instant::now() + WAIT;
    while client.get_room("lobby").await.unwrap().online > 0 {
        assert!(Instant::now() < deadline, "the socket stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(history(&client).await.is_empty());
}

#[tokio::test]
async fn the_rest_publish_retries_a_restarting_server_with_its_key_and_publishes_once() {
    let mut node = Node::start(Vec::new()).await;
    let client = node.client("acme").await;
    lobby(&client).await;
    node.stop(Stop::Term).await;
    // Nothing listens while the node starts again: the first attempt is
    // refused, and the call retries until the node is back.
    let publish = tokio::spawn(async move {
        let published = client.publish_message("lobby", None, &PublishMessageRequest::new(json!("once"))).await;
        (client, published)
    });
    node.restart().await;
    let (client, published) = publish.await.unwrap();
    let published = published.expect("published after retrying");
    let stored = history(&client).await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].id.as_str(), stored[0].seq), (published.id.as_str(), published.seq));
}

/// A TCP relay whose target can be switched, cutting every connection, and
/// whose server-to-client direction can be muted: what the client sent
/// still arrives, what the server answers is lost.
struct Switch {
    addr: SocketAddr,
    target: watch::Sender<SocketAddr>,
    muted: Arc<AtomicBool>,
}

impl Switch {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (target, targets) = watch::channel(target);
        let muted = Arc::new(AtomicBool::new(false));
        let relay_muted = Arc::clone(&muted);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut targets = targets.clone();
                let to = *targets.borrow_and_update();
                let muted = Arc::clone(&relay_muted);
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(to).await else { return };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    let upstream = tokio::io::copy(&mut client_read, &mut server_write);
                    let downstream = async {
                        let mut buffer = vec![0; 16 * 1024];
                        while let Ok(read @ 1..) = server_read.read(&mut buffer).await {
                            if !muted.load(Ordering::SeqCst) && client_write.write_all(&buffer[..read]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = upstream => {}
                        () = downstream => {}
                        _ = targets.changed() => {}
                    }
                });
            }
        });
        Self { addr, target, muted }
    }

    fn ws_url(&self, code: &str) -> String {
        format!("ws://{}/ws/endpoint/{code}/", self.addr)
    }

    fn mute(&self, muted: bool) {
        self.muted.store(muted, Ordering::SeqCst);
    }

    /// Cuts every connection; new ones go to `target`.
    fn switch_to(&self, target: SocketAddr) {
        self.target.send_replace(target);
    }
}

#[tokio::test]
async fn sends_resent_to_another_node_after_their_acks_were_lost_publish_nothing_new() {
    let Some(database) = TestDatabase::create().await else { return };
    let Some(redis) = TestRedis::connect().await else { return };
    let env = vec![
        ("DATABASE_URL", database.url().to_owned()),
        ("REDIS_URL", redis.url().to_owned()),
        ("COMMS_BROKER__KEY_PREFIX", redis.prefix().to_owned()),
    ];
    let a = Node::start(env.clone()).await;
    let b = Node::start(env).await;
    let key = a.app_key("acme").await;
    let client = Client::new(&a.base(), &key).unwrap();
    let (_, code) = lobby(&client).await;
    let switch = Switch::start(a.addr).await;
    let chat = EndpointConnection::connect_with(&switch.ws_url(&code), quickly()).await.unwrap();
    chat.ready().await.unwrap();

    switch.mute(true);
    let mut sends = JoinSet::new();
    for n in 0..20_u64 {
        let sender = chat.sender();
        sends.spawn(async move { (n, sender.send(&json!(n)).await) });
    }
    // Node A publishes all twenty; none of their acks gets through.
    let deadline = Instant::now() + WAIT;
    while history(&client).await.len() < 20 {
        assert!(Instant::now() < deadline, "node A did not publish the sends");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sends.len(), 20, "no send was acknowledged");

    switch.switch_to(b.addr);
    switch.mute(false);
    let mut receipts = HashMap::new();
    while let Some(sent) = tokio::time::timeout(WAIT, sends.join_next()).await.expect("every send resolves in time") {
        let (n, receipt) = sent.unwrap();
        receipts.insert(n, receipt.unwrap_or_else(|err| panic!("send {n} failed: {err}")));
    }
    let on_b = Client::new(&b.base(), &key).unwrap();
    assert_each_published_once(&history(&on_b).await, &receipts, 20);
}
