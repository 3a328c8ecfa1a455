//! Several nodes sharing PostgreSQL and Redis act as one server: the same
//! messages with the same seqs in the same order on every node, resume on
//! another node, deletions and online counts across nodes, presence and
//! signals across nodes (a killed node's members leave, a Redis that lost
//! its data gets them back without a word to clients), and a Redis restart
//! survived; webhook events are delivered once by the two nodes together;
//! usage adds up over the nodes, asked of either; a message's nonce is
//! recognised on either node.
//!
//! Each node is a real `comms serve` process with a port and a data folder
//! of its own; the nodes share only the database and Redis, as separate
//! machines would.

use std::process::Stdio;
use std::time::{Duration, Instant};

use comms_testkit::postgres::TestDatabase;
use comms_testkit::redis::{PrivateRedis, TestRedis};
use comms_testkit::webhook::WebhookReceiver;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::capabilities::{budget_refusals, endpoint_with, in_ms, patch_endpoint};
use crate::helpers::{assert_error, body, member_roll, public_id, wait_ready, Remote, WsClient};
use crate::usage::{totals, usage};

/// The nodes' leave grace period, short so tests wait little.
const GRACE: Duration = Duration::from_millis(500);

/// How often the nodes write their usage counts, short for the same reason.
const USAGE_FLUSH: Duration = Duration::from_millis(200);

/// Where the nodes of one test keep their shared state.
#[derive(Clone)]
struct Shared {
    database: String,
    redis: String,
    prefix: String,
}

impl Shared {
    /// `comms` with this cluster's environment, in `data_dir`.
    fn comms(&self, data_dir: &std::path::Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_comms"));
        command
            .current_dir(data_dir)
            .env("DATABASE_URL", &self.database)
            .env("REDIS_URL", &self.redis)
            .env("COMMS_BROKER__KEY_PREFIX", &self.prefix)
            .env("COMMS_DATA_DIR", data_dir)
            .env("COMMS_DEMO__ENABLED", "false")
            .env("COMMS_PRESENCE__LEAVE_GRACE_MS", GRACE.as_millis().to_string())
            .env("COMMS_USAGE__FLUSH_MS", USAGE_FLUSH.as_millis().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Creates an approved app with the command line; its API key.
    async fn create_app(&self, name: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let output = self.comms(dir.path()).args(["app", "create", name]).output().await.expect("run comms");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).unwrap()["api_key"].as_str().unwrap().to_owned()
    }
}

/// A `comms serve` process of this cluster.
struct Node {
    remote: Remote,
    process: Child,
    _data_dir: TempDir,
}

impl Node {
    async fn start(shared: &Shared) -> Node {
        let data_dir = tempfile::tempdir().unwrap();
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let process =
            shared.comms(data_dir.path()).args(["serve", "--addr", &addr.to_string()]).spawn().expect("start a node");
        wait_ready(&addr.to_string()).await;
        Node { remote: Remote::new(addr), process, _data_dir: data_dir }
    }

    /// A client of this node's HTTP and WebSocket API.
    fn api(&self) -> &Remote {
        &self.remote
    }

    /// Whether the process is still running (it never panics out).
    fn running(&mut self) -> bool {
        self.process.try_wait().expect("process status").is_none()
    }
}

/// Two nodes on one fresh database and one Redis prefix, with an app.
struct Cluster {
    a: Node,
    b: Node,
    key: String,
    shared: Shared,
    _redis: TestRedis,
    _database: TestDatabase,
}

/// `None` when PostgreSQL or Redis is missing outside CI (the helpers print
/// why; under `CI=true` they fail instead).
async fn cluster() -> Option<Cluster> {
    let database = TestDatabase::create().await?;
    let redis = TestRedis::connect().await?;
    let shared = Shared {
        database: database.url().to_owned(),
        redis: redis.url().to_owned(),
        prefix: redis.prefix().to_owned(),
    };
    let key = shared.create_app("acme").await;
    let a = Node::start(&shared).await;
    let b = Node::start(&shared).await;
    Some(Cluster { a, b, key, shared, _redis: redis, _database: database })
}

fn code(endpoint: &Value) -> &str {
    endpoint["code"].as_str().expect("endpoint code")
}

/// Opens a socket and checks the welcome frame.
async fn join(node: &Remote, endpoint: &Value, after_seq: Option<u64>) -> (WsClient, Value) {
    let mut ws = node.connect_ws(code(endpoint), after_seq).await;
    let welcome = ws.next_json().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

async fn publish(node: &Remote, key: &str, room: &str, payload: Value) -> Value {
    let response = node.post(&format!("/api/v1/rooms/{room}/messages"), key, json!({ "message": payload })).await;
    assert_eq!(response.status(), 201);
    body(response).await
}

/// Polls `check` until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn sockets_on_both_nodes_get_the_same_messages_in_the_same_order() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let ann = a.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "ann" }))).await;
    let bob = b.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "bob" }))).await;
    let (mut on_a, _) = join(a.api(), &ann, None).await;
    let (mut on_b, _) = join(b.api(), &bob, None).await;

    for i in 0..10 {
        if i % 2 == 0 {
            on_a.send_message(json!(i)).await;
        } else {
            on_b.send_message(json!(i)).await;
        }
    }
    publish(a.api(), &key, "lobby", json!("rest via a")).await;
    publish(b.api(), &key, "lobby", json!("rest via b")).await;

    let mut seen_on_a = Vec::new();
    let mut seen_on_b = Vec::new();
    for _ in 0..12 {
        seen_on_a.push(on_a.next_message().await);
        seen_on_b.push(on_b.next_message().await);
    }
    assert_eq!(seen_on_a, seen_on_b, "both nodes deliver identical frames in identical order");
    let seqs: Vec<u64> = seen_on_a.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>(), "one seq per message, no gaps, in order");
    let from_bob: Vec<&Value> = seen_on_a.iter().filter(|m| m["sender"]["meta"]["name"] == "bob").collect();
    assert_eq!(from_bob.len(), 5, "bob's messages sent to node B reach node A with his meta");
    assert_eq!(from_bob[0]["sender"]["id"], bob["id"]);

    let stored = body(b.api().get("/api/v1/rooms/lobby/messages?limit=100", &key).await).await;
    assert_eq!(stored["messages"].as_array().unwrap().len(), 12, "history is shared");
}

#[tokio::test]
async fn a_socket_resumes_with_after_seq_on_the_other_node() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let reader = a.api().create_endpoint(&key, "lobby", "read", None).await;
    for i in 1..=5 {
        publish(a.api(), &key, "lobby", json!(i)).await;
    }
    let (mut resumed, welcome) = join(b.api(), &reader, Some(2)).await;
    assert_eq!((welcome["first_seq"].as_u64(), welcome["last_seq"].as_u64()), (Some(1), Some(5)));
    for seq in 3..=5 {
        let message = resumed.next_message().await;
        assert_eq!((message["seq"].as_u64(), &message["message"]), (Some(seq), &json!(seq)));
    }
    publish(a.api(), &key, "lobby", json!("live")).await;
    assert_eq!(resumed.next_message().await["seq"], 6, "then live messages from the other node");
}

#[tokio::test]
async fn deleting_on_one_node_closes_sockets_on_the_other() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let doomed = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let other = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (mut doomed_on_b, _) = join(b.api(), &doomed, None).await;
    let (mut other_on_b, _) = join(b.api(), &other, None).await;

    let started = Instant::now();
    let response = a.api().delete(&format!("/api/v1/rooms/lobby/endpoints/{}", code(&doomed)), &key).await;
    assert_eq!(response.status(), 204);
    assert_eq!(doomed_on_b.closed().await.code, 4001);
    assert!(started.elapsed() < Duration::from_secs(1), "closed within a second: {:?}", started.elapsed());

    assert_eq!(a.api().delete("/api/v1/rooms/lobby", &key).await.status(), 204);
    assert_eq!(other_on_b.closed().await.code, 4002);
    assert_eq!(b.api().ws_refusal(code(&other)).await, 404);
}

#[tokio::test]
async fn online_counts_add_up_over_nodes() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let endpoint = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (_on_a, _) = join(a.api(), &endpoint, None).await;
    let (_on_b1, _) = join(b.api(), &endpoint, None).await;
    let (_on_b2, _) = join(b.api(), &endpoint, None).await;
    for node in [a.api(), b.api()] {
        let counted = eventually(Duration::from_secs(5), || async {
            body(node.get("/api/v1/rooms", &key).await).await["rooms"][0]["online"] == 3
        })
        .await;
        assert!(counted, "node {} counts the other node's sockets", node.addr);
    }
}

#[tokio::test]
async fn socket_quotas_count_the_connections_of_every_node() {
    let Some(Cluster { a, b, key, shared, _redis, _database }) = cluster().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let set = shared.comms(dir.path()).args(["app", "quota", "acme", "sockets_per_endpoint", "2"]).output().await;
    assert!(set.expect("run comms").status.success());
    a.api().create_room(&key, "lobby").await;
    let endpoint = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (_on_a, _) = join(a.api(), &endpoint, None).await;
    let (_on_b, _) = join(b.api(), &endpoint, None).await;
    // Each node learns the other's count within half a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for node in [a.api(), b.api()] {
        let closed = node.connect_ws(code(&endpoint), None).await.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4029, "quota exceeded: sockets_per_endpoint"));
    }
}

#[tokio::test]
async fn a_suspension_from_the_command_line_closes_sockets_on_every_node() {
    let Some(Cluster { a, b, key, shared, _redis, _database }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let endpoint = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (mut on_a, _) = join(a.api(), &endpoint, None).await;
    let (mut on_b, _) = join(b.api(), &endpoint, None).await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let suspend = shared.comms(dir.path()).args(["app", "suspend", "acme"]).output().await.expect("run comms");
    assert!(suspend.status.success());
    assert_eq!(on_a.closed().await.code, 4003);
    assert_eq!(on_b.closed().await.code, 4003);
    assert!(started.elapsed() < Duration::from_secs(2), "within a poll: {:?}", started.elapsed());
    for node in [a.api(), b.api()] {
        assert_eq!(node.ws_refusal(code(&endpoint)).await, 404);
        assert_error(node.get("/api/v1/rooms", &key).await, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn a_redis_restart_is_survived_without_losing_acknowledged_messages() {
    let Some(database) = TestDatabase::create().await else { return };
    let Some(mut redis) = PrivateRedis::start().await else { return };
    let shared = Shared { database: database.url().to_owned(), redis: redis.url(), prefix: "comms".into() };
    let key = shared.create_app("acme").await;
    let mut node = Node::start(&shared).await;
    node.api().create_room(&key, "lobby").await;
    let endpoint = node.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let (mut live, _) = join(node.api(), &endpoint, None).await;
    for i in 1..=3 {
        assert_eq!(publish(node.api(), &key, "lobby", json!(i)).await["seq"], i);
        assert_eq!(live.next_message().await["seq"], i);
    }

    redis.stop();
    assert_eq!(live.closed().await.code, 1013, "a node that lost Redis closes its sockets so clients resume");
    let ready = || async {
        node.api().client.get(format!("{}/readyz", node.api().base)).send().await.unwrap().status().as_u16()
    };
    assert!(eventually(Duration::from_secs(10), || async { ready().await == 503 }).await, "/readyz says not ready");
    assert_error(
        node.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "lost?" })).await,
        503,
        "unavailable",
    )
    .await;

    redis.restart().await;
    assert!(eventually(Duration::from_secs(15), || async { ready().await == 200 }).await, "/readyz recovers");
    let (mut resumed, welcome) = join(node.api(), &endpoint, Some(0)).await;
    for i in 1..=3 {
        assert_eq!(resumed.next_message().await["message"], i, "acknowledged messages survive Redis losing its data");
    }
    let last_seq = welcome["last_seq"].as_u64().unwrap();
    assert!(last_seq >= 3, "seq never goes back: {welcome}");
    let next = publish(node.api(), &key, "lobby", json!("after")).await;
    assert_eq!(next["seq"].as_u64(), Some(last_seq + 1));
    assert_eq!(resumed.next_message().await["message"], "after", "messages flow again");
    assert!(node.running(), "the node stayed up throughout");
}

#[tokio::test]
async fn every_node_sees_the_same_members_and_each_join_and_leave_once() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_presence_room(&key, "chat").await;
    let ann = a.api().create_endpoint(&key, "chat", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let bob = a.api().create_endpoint(&key, "chat", "read_and_write", Some(json!({ "name": "Bob" }))).await;
    let (mut ann_on_a, _) = join(a.api(), &ann, None).await;
    let (mut ann_on_b, _) = join(b.api(), &ann, None).await;

    let (bob_on_b, welcome) = join(b.api(), &bob, None).await;
    assert_eq!(
        member_roll(&welcome["members"]),
        [(public_id(&ann), 2), (public_id(&bob), 1)],
        "members over both nodes"
    );
    for ws in [&mut ann_on_a, &mut ann_on_b] {
        let joined = ws.next_json().await;
        assert_eq!(
            (joined["type"].as_str(), joined["member"]["id"].as_str()),
            (Some("join"), Some(public_id(&bob).as_str()))
        );
    }
    let (bob_on_a, _) = join(a.api(), &bob, None).await;
    for node in [&a, &b] {
        assert_eq!(node.api().members(&key, "chat").await, [(public_id(&ann), 2), (public_id(&bob), 2)]);
    }
    a.api().next_is_marker(&key, "chat", &mut [&mut ann_on_a, &mut ann_on_b], "one join only").await;

    drop(bob_on_b);
    tokio::time::sleep(GRACE * 3).await;
    a.api().next_is_marker(&key, "chat", &mut [&mut ann_on_a, &mut ann_on_b], "a connection left elsewhere").await;
    // Gone from one node and back on the other within the grace period.
    drop(bob_on_a);
    tokio::time::sleep(GRACE / 4).await;
    let (bob_on_b, _) = join(b.api(), &bob, None).await;
    tokio::time::sleep(GRACE * 3).await;
    a.api().next_is_marker(&key, "chat", &mut [&mut ann_on_a, &mut ann_on_b], "back on another node").await;
    drop(bob_on_b);
    for ws in [&mut ann_on_a, &mut ann_on_b] {
        let left = ws.next_json().await;
        assert_eq!(
            (left["type"].as_str(), left["member"]["id"].as_str()),
            (Some("leave"), Some(public_id(&bob).as_str()))
        );
    }
    b.api().next_is_marker(&key, "chat", &mut [&mut ann_on_a, &mut ann_on_b], "one leave only").await;
    assert_eq!(b.api().members(&key, "chat").await, [(public_id(&ann), 2)]);
}

#[tokio::test]
async fn signals_cross_nodes_and_never_come_back_to_their_sender() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "news").await;
    let ann = a.api().create_endpoint(&key, "news", "read_and_write", None).await;
    let bob = a.api().create_endpoint(&key, "news", "read", None).await;
    let (mut ann_on_a, _) = join(a.api(), &ann, None).await;
    let (mut ann_on_b, _) = join(b.api(), &ann, None).await;
    let (mut bob_on_b, _) = join(b.api(), &bob, None).await;
    ann_on_a.send_text(r#"{"signal": "typing"}"#).await;
    for ws in [&mut ann_on_b, &mut bob_on_b] {
        let signal = ws.next_json().await;
        assert_eq!((signal["type"].as_str(), signal["signal"].as_str()), (Some("signal"), Some("typing")), "{signal}");
        assert_eq!(signal["sender"]["id"], ann["id"]);
    }
    b.api().next_is_marker(&key, "news", &mut [&mut ann_on_a, &mut ann_on_b, &mut bob_on_b], "once each").await;
}

#[tokio::test]
async fn a_killed_nodes_members_leave_and_a_redis_that_lost_them_gets_them_back_silently() {
    let Some(Cluster { a, mut b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_presence_room(&key, "chat").await;
    let ann = a.api().create_endpoint(&key, "chat", "read_and_write", None).await;
    let bob = a.api().create_endpoint(&key, "chat", "read_and_write", None).await;
    let (mut ann_on_a, _) = join(a.api(), &ann, None).await;
    let (_bob_on_b, _) = join(b.api(), &bob, None).await;
    assert_eq!(ann_on_a.next_json().await["type"], "join");

    // Redis loses its data while every connection stays up: the nodes put
    // their members back, and clients hear nothing of it.
    _redis.forget_everything();
    let back = eventually(Duration::from_secs(5), || async {
        a.api().members(&key, "chat").await == [(public_id(&ann), 1), (public_id(&bob), 1)]
            || a.api().members(&key, "chat").await == [(public_id(&bob), 1), (public_id(&ann), 1)]
    })
    .await;
    assert!(back, "the members are back within a few seconds");
    a.api().next_is_marker(&key, "chat", &mut [&mut ann_on_a], "no leave or join for it").await;

    // Killed, not stopped: nothing withdraws its members but their expiry.
    let killed_at = Instant::now();
    b.process.kill().await.expect("kill node b");
    let left = ann_on_a.next_json_within(Duration::from_secs(15)).await;
    assert_eq!((left["type"].as_str(), left["member"]["id"].as_str()), (Some("leave"), Some(public_id(&bob).as_str())));
    let took = killed_at.elapsed();
    assert!(took <= Duration::from_secs(7), "a killed node's members leave within about 6 s, took {took:?}");
    assert_eq!(a.api().members(&key, "chat").await, [(public_id(&ann), 1)]);
}

#[tokio::test]
async fn a_paused_node_is_counted_out_and_announces_its_members_again_when_it_resumes() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_presence_room(&key, "chat").await;
    let ann = a.api().create_endpoint(&key, "chat", "read_and_write", None).await;
    let bob = a.api().create_endpoint(&key, "chat", "read_and_write", None).await;
    let (mut ann_on_a, _) = join(a.api(), &ann, None).await;
    let (_bob_on_b, _) = join(b.api(), &bob, None).await;
    assert_eq!(ann_on_a.next_json().await["type"], "join");

    // Stopped, its sockets still open: to the other nodes it looks dead.
    let pid = b.process.id().expect("node b runs").to_string();
    let signal = |name: &'static str| {
        let pid = pid.clone();
        async move { assert!(Command::new("kill").args([name, &pid]).status().await.unwrap().success()) }
    };
    signal("-STOP").await;
    let left = ann_on_a.next_json_within(Duration::from_secs(15)).await;
    signal("-CONT").await;
    assert_eq!((left["type"].as_str(), left["member"]["id"].as_str()), (Some("leave"), Some(public_id(&bob).as_str())));
    let back = ann_on_a.next_json_within(Duration::from_secs(10)).await;
    assert_eq!((back["type"].as_str(), back["member"]["id"].as_str()), (Some("join"), Some(public_id(&bob).as_str())));
    assert_eq!(a.api().members(&key, "chat").await, [(public_id(&ann), 1), (public_id(&bob), 1)]);
    b.api().next_is_marker(&key, "chat", &mut [&mut ann_on_a], "announced once").await;
}

#[tokio::test]
async fn a_downgrade_on_one_node_lands_on_an_open_socket_of_the_other_within_a_second() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_presence_room(&key, "lobby").await;
    let ann = a.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let (mut on_b, _) = join(b.api(), &ann, None).await;

    let started = Instant::now();
    let change = json!({ "permission": "read", "meta": { "name": "Ann (muted)" } });
    assert_eq!(patch_endpoint(a.api(), &key, "lobby", code(&ann), change).await.status(), 200);
    let frame = on_b.next_json().await;
    assert!(started.elapsed() < Duration::from_secs(1), "within a second: {:?}", started.elapsed());
    assert_eq!((frame["type"].as_str(), frame["endpoint"]["permission"].as_str()), (Some("endpoint"), Some("read")));
    on_b.send_message(json!("muted?")).await;
    assert_eq!(on_b.next_json().await["code"], "read_only");
    let members = body(b.api().get("/api/v1/rooms/lobby/presence", &key).await).await;
    assert_eq!(members["members"][0]["meta"], json!({ "name": "Ann (muted)" }), "{members}");
}

#[tokio::test]
async fn a_budget_of_ten_under_twenty_senders_on_two_nodes_publishes_exactly_ten() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let request = json!({ "permission": "read_and_write", "max_messages": 10 });
    let endpoint = endpoint_with(a.api(), &key, "lobby", request).await;
    let mut sockets = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { a.api() } else { b.api() };
        sockets.push(join(node, &endpoint, None).await.0);
    }
    for ws in &mut sockets {
        ws.send_message(json!("one")).await;
    }
    let refused = budget_refusals(&mut sockets, 10).await;
    assert_eq!(refused, 10);
    let history = body(b.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 10, "never one message over");
}

#[tokio::test]
async fn a_redaction_reaches_sockets_and_resumes_on_every_node() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let moderator = a.api().create_endpoint(&key, "lobby", "moderate", None).await;
    let reader = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (mut moderator_on_a, _) = join(a.api(), &moderator, None).await;
    let (mut reader_on_b, _) = join(b.api(), &reader, None).await;
    let first = publish(a.api(), &key, "lobby", json!("regrettable")).await;
    publish(a.api(), &key, "lobby", json!("fine")).await;
    for _ in 0..2 {
        moderator_on_a.next_message().await;
        reader_on_b.next_message().await;
    }

    moderator_on_a.send_text(r#"{"redact": 1}"#).await;
    let expected = json!({ "type": "redaction", "room": "lobby", "seq": 1, "id": first["id"] });
    assert_eq!(reader_on_b.next_json().await, expected);
    assert_eq!(moderator_on_a.next_json().await, expected, "once on the node it was made on");
    let (mut resumed_on_b, _) = join(b.api(), &reader, Some(0)).await;
    let replayed = resumed_on_b.next_message().await;
    assert_eq!((&replayed["message"], replayed["redacted_at"].is_string()), (&Value::Null, true), "{replayed}");
    assert_eq!(resumed_on_b.next_message().await["message"], "fine");
    publish(b.api(), &key, "lobby", json!("marker")).await;
    assert_eq!(moderator_on_a.next_message().await["message"], "marker", "no second redaction frame");
}

#[tokio::test]
async fn an_expiry_set_on_one_node_closes_sockets_on_the_other_with_4004() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let guest = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (mut on_b, _) = join(b.api(), &guest, None).await;
    let change = json!({ "expires_at": in_ms(500) });
    assert_eq!(patch_endpoint(a.api(), &key, "lobby", code(&guest), change).await.status(), 200);
    assert_eq!(on_b.next_json().await["type"], "endpoint");
    assert_eq!(on_b.closed().await.code, 4004);
    assert_eq!(b.api().ws_refusal(code(&guest)).await, 404);
}

#[tokio::test]
async fn two_nodes_deliver_each_webhook_event_once() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    let receiver = WebhookReceiver::start().await;
    let events = [
        "room.created",
        "endpoint.created",
        "member.joined",
        "member.left",
        "message.created",
        "room.occupied",
        "room.vacated",
    ];
    let response = a.api().post("/api/v1/webhooks", &key, json!({ "url": receiver.url(), "events": events })).await;
    assert_eq!(response.status(), 201);
    for n in 0..6 {
        let node = if n % 2 == 0 { &a } else { &b };
        node.api().create_room(&key, &format!("room{n}")).await;
        publish(node.api(), &key, &format!("room{n}"), json!(n)).await;
    }
    b.api().create_presence_room(&key, "lobby").await;
    let ann = a.api().create_endpoint(&key, "lobby", "read", Some(json!({ "name": "ann" }))).await;
    let bob = b.api().create_endpoint(&key, "lobby", "read", Some(json!({ "name": "bob" }))).await;
    let (on_a, _) = join(a.api(), &ann, None).await;
    let (on_b, _) = join(b.api(), &bob, None).await;
    drop((on_a, on_b));

    let wanted = 7 + 2 + 2 + 2 + 6 + 1 + 1;
    receiver.wait_for("every event", |received| received.len() >= wanted).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = receiver.received();
    let mut ids: Vec<&str> = received.iter().map(|delivery| delivery.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), received.len(), "no event delivered twice");
    let count = |event: &str| received.iter().filter(|delivery| delivery.event_type() == event).count();
    assert_eq!(
        events.map(count),
        [7, 2, 2, 2, 6, 1, 1],
        "each room, endpoint, join, leave and message once over both nodes, and the lobby occupied and vacated once"
    );
    let left: Vec<Value> = received.iter().filter(|d| d.event_type() == "member.left").map(|d| d.json()).collect();
    let mut names: Vec<&str> =
        left.iter().map(|event| event["data"]["member"]["meta"]["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["ann", "bob"]);
    assert!(left.iter().all(|event| event["data"]["room"] == "lobby" && event["data"]["member"]["connections"] == 0));
}

#[tokio::test]
async fn a_room_held_only_by_a_killed_node_is_vacated_once() {
    let Some(Cluster { a, mut b, key, _redis, _database, .. }) = cluster().await else { return };
    let receiver = WebhookReceiver::start().await;
    let events = ["room.occupied", "room.vacated"];
    let response = a.api().post("/api/v1/webhooks", &key, json!({ "url": receiver.url(), "events": events })).await;
    assert_eq!(response.status(), 201);
    a.api().create_room(&key, "lobby").await;
    let reader = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (_on_b, _) = join(b.api(), &reader, None).await;
    receiver.wait_for("room.occupied", |received| received.len() == 1).await;
    b.process.kill().await.expect("kill node b");
    let received = receiver.wait_for("room.vacated", |received| received.len() == 2).await;
    assert_eq!(received[1].event_type(), "room.vacated");
    assert_eq!(received[1].json()["data"]["room"]["name"], "lobby");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 2, "vacated once");
}

/// A node's `comms_redis_round_trips_total`.
async fn redis_round_trips(node: &Remote) -> u64 {
    let response = node.request(reqwest::Method::GET, "/metrics", None).send().await.unwrap();
    let text = response.text().await.unwrap();
    let line = text.lines().find(|line| line.starts_with("comms_redis_round_trips_total ")).expect("the metric");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn publishing_costs_one_redis_round_trip_per_message() {
    let Some(Cluster { a, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    // The first publish seeds the room's seq in Redis: not the steady cost.
    publish(a.api(), &key, "lobby", json!("seed")).await;
    let before = redis_round_trips(a.api()).await;
    for i in 0..50 {
        publish(a.api(), &key, "lobby", json!(i)).await;
    }
    let spent = redis_round_trips(a.api()).await - before;
    // The publish script, once per message. Meanwhile the node refreshes its
    // liveness key every second and its online counts every five seconds
    // (a few more round trips in a run that takes seconds), but a second
    // round trip per message would be 100.
    assert!((50..75).contains(&spent), "{spent} round trips for 50 messages");
}

#[tokio::test]
async fn messages_sent_back_to_back_are_published_in_order_sharing_round_trips() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let writer = a.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let reader = b.api().create_endpoint(&key, "lobby", "read", None).await;
    let (mut on_a, _) = join(a.api(), &writer, None).await;
    let (mut on_b, _) = join(b.api(), &reader, None).await;
    // Seeds the room's seq and reserves the first block of seqs.
    on_a.send_message(json!("first")).await;
    assert_eq!(on_b.next_message().await["seq"], 1);
    assert_eq!(on_a.next_message().await["seq"], 1);
    let before = redis_round_trips(a.api()).await;

    // 1100 messages in bursts written at once, crossing the end of the
    // first block (seq 1000) inside a burst; one burst holds an invalid
    // frame, which is answered in its place and publishes nothing.
    let sent = 1100;
    let read = tokio::spawn(async move {
        let mut received = Vec::new();
        while received.len() < sent {
            let message = on_b.next_message().await;
            received.push((message["seq"].as_u64().unwrap(), message["message"].as_u64().unwrap()));
        }
        received
    });
    for burst in 0..11 {
        for i in 0..100 {
            if burst == 5 && i == 50 {
                on_a.stream.feed(Message::text(r#"{"mesage": 1}"#)).await.unwrap();
            }
            let frame = json!({ "message": burst * 100 + i }).to_string();
            on_a.stream.feed(Message::text(frame)).await.unwrap();
        }
        on_a.stream.flush().await.unwrap();
        // Within the default rate (a burst of 1000, then 1000 a second).
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let received = read.await.unwrap();
    let expected: Vec<(u64, u64)> = (0..sent as u64).map(|n| (n + 2, n)).collect();
    assert_eq!(received, expected, "every message once, in the order sent, with consecutive seqs");
    let mut refused = 0;
    for _ in 0..=sent {
        let frame = on_a.next_json().await;
        if frame["type"] == "error" {
            assert_eq!(frame["code"], "invalid", "{frame}");
            refused += 1;
        }
    }
    assert_eq!(refused, 1, "the invalid frame is answered once");
    let spent = redis_round_trips(a.api()).await - before;
    assert!(spent <= sent as u64 / 4, "{spent} round trips for {sent} messages sent back to back");
}

#[tokio::test]
async fn usage_adds_up_over_nodes_asked_of_either() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let endpoint = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (mut on_a, _) = join(a.api(), &endpoint, None).await;
    let (mut on_b, _) = join(b.api(), &endpoint, None).await;
    for (node, n) in [(&a, 0), (&a, 1), (&a, 2), (&b, 3), (&b, 4)] {
        publish(node.api(), &key, "lobby", json!(n)).await;
    }
    for _ in 0..5 {
        on_a.next_message().await;
        on_b.next_message().await;
    }
    // A socket on each node: each node's peak of one, added up.
    let expected = [2, 5, 10, 0, 0, 0, 0, 0, 0];
    for node in [&a, &b] {
        let added_up = eventually(Duration::from_secs(5), || async {
            totals(&usage(node.api(), &key, "?granularity=minute").await) == expected
        })
        .await;
        assert!(added_up, "{}", usage(node.api(), &key, "?granularity=minute").await);
    }
}

#[tokio::test]
async fn a_nonce_repeated_on_the_other_node_publishes_nothing_new() {
    let Some(Cluster { a, b, key, _redis, _database, .. }) = cluster().await else { return };
    a.api().create_room(&key, "lobby").await;
    let writer = a.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let reader = a.api().create_endpoint(&key, "lobby", "read", None).await;
    let (mut on_a, _) = join(a.api(), &writer, None).await;
    let (mut on_b, _) = join(b.api(), &writer, None).await;
    let (mut listener, _) = join(b.api(), &reader, None).await;
    let with_nonce = |payload: &str| json!({ "message": payload, "nonce": "n-1" }).to_string();
    on_a.send_text(&with_nonce("once")).await;
    let ack = loop {
        let frame = on_a.next_json().await;
        if frame["type"] == "ack" {
            break frame;
        }
    };
    assert_eq!(listener.next_message().await["id"], ack["id"]);
    on_b.next_message().await;
    on_b.send_text(&with_nonce("once")).await;
    assert_eq!(on_b.next_json().await, ack, "the other node answers the first publish's ack");
    publish(b.api(), &key, "lobby", json!("marker")).await;
    assert_eq!(listener.next_message().await["message"], "marker", "the repeat was not published");
}
