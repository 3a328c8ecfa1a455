//! Webhooks as an app's backend receives them: every event type, signed and
//! verified by an independent Standard Webhooks implementation (the
//! `standardwebhooks` package from PyPI), retried with the same id, kept
//! across a SIGKILL, and never posted to private addresses in `prod`.

use std::process::Stdio;
use std::time::Duration;

use comms_core::config::Profile;
use comms_core::forwarded::Networks;
use comms_testkit::webhook::{Received, WebhookReceiver};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::capabilities::in_ms;
use crate::helpers::{assert_error, body, spawn_app_with, wait_ready, Remote, TestApp};

/// Every event type, as a webhook lists them.
const ALL_EVENTS: [&str; 10] = [
    "room.created",
    "room.deleted",
    "room.occupied",
    "room.vacated",
    "member.joined",
    "member.left",
    "endpoint.created",
    "endpoint.deleted",
    "endpoint.expired",
    "message.created",
];

/// A node whose retries come fast and whose members leave soon.
async fn quick_app() -> TestApp {
    spawn_app_with(|config| {
        config.webhooks.first_retry = Duration::from_millis(100);
        config.presence.leave_grace = Duration::from_millis(200);
    })
    .await
}

/// Registers a webhook for `events` posting to `receiver`; its secret.
async fn register(api: &Remote, key: &str, receiver: &WebhookReceiver, events: &[&str]) -> Value {
    let response = api.post("/api/v1/webhooks", key, json!({ "url": receiver.url(), "events": events })).await;
    assert_eq!(response.status(), 201);
    body(response).await
}

fn of_type<'a>(received: &'a [Received], event: &str) -> Vec<&'a Received> {
    received.iter().filter(|delivery| delivery.event_type() == event).collect()
}

/// Checks every delivery's signature with the `standardwebhooks` package
/// from PyPI (installed by `scripts/test.sh`): an implementation that
/// shares no code with ours.
async fn verify_independently(secret: &str, received: &[Received]) {
    let deliveries: Vec<Value> = received
        .iter()
        .map(|delivery| {
            json!({
                "body": delivery.body,
                "headers": {
                    "webhook-id": delivery.id,
                    "webhook-timestamp": delivery.timestamp,
                    "webhook-signature": delivery.signature,
                },
            })
        })
        .collect();
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        hook = Webhook(sys.argv[1])\n\
        deliveries = json.load(sys.stdin)\n\
        for delivery in deliveries:\n    hook.verify(delivery['body'], delivery['headers'])\n\
        print(len(deliveries))\n";
    let probe = Command::new("python3").args(["-c", "import standardwebhooks"]).output().await;
    if !probe.is_ok_and(|output| output.status.success()) {
        return comms_testkit::missing_service("the standardwebhooks Python package", "python3", "pip install it")
            .unwrap_or(());
    }
    let mut child = Command::new("python3")
        .args(["-c", script, secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let input = serde_json::to_vec(&deliveries).unwrap();
    tokio::io::AsyncWriteExt::write_all(child.stdin.as_mut().unwrap(), &input).await.unwrap();
    drop(child.stdin.take());
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "standardwebhooks refused a delivery: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), received.len().to_string());
}

#[tokio::test]
async fn every_event_type_arrives_signed_and_verifiable() {
    let app = quick_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    let receiver = WebhookReceiver::start().await;
    let webhook = register(api, &key, &receiver, &ALL_EVENTS).await;
    assert!(webhook["secret"].as_str().unwrap().starts_with("whsec_"));
    assert!(webhook["id"].as_str().unwrap().starts_with("wh_"));

    api.create_presence_room(&key, "lobby").await;
    let writer = api.create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ada" }))).await;
    let mut socket = api.connect_ws(writer["code"].as_str().unwrap(), None).await;
    socket.next_json().await;
    socket.send_message(json!("hello")).await;
    socket.next_message().await;
    drop(socket);
    let expiring = endpoint_expiring(api, &key, "lobby", 300).await;
    let deleted = api.create_endpoint(&key, "lobby", "read", None).await;
    let path = format!("/api/v1/rooms/lobby/endpoints/{}", deleted["code"].as_str().unwrap());
    assert_eq!(api.delete(&path, &key).await.status(), 204);
    receiver
        .wait_for("member.left, room.vacated and endpoint.expired", |received| {
            ["member.left", "room.vacated", "endpoint.expired", "endpoint.deleted"]
                .iter()
                .all(|event| !of_type(received, event).is_empty())
        })
        .await;
    assert_eq!(api.delete("/api/v1/rooms/lobby", &key).await.status(), 204);
    let received = receiver.wait_for("room.deleted", |received| !of_type(received, "room.deleted").is_empty()).await;

    for event in ALL_EVENTS {
        assert!(!of_type(&received, event).is_empty(), "no {event} in {:?}", types(&received));
    }
    assert_eq!(of_type(&received, "room.occupied").len(), 1, "occupied once: {:?}", types(&received));
    let created = of_type(&received, "room.created")[0].json();
    assert_eq!(created["data"]["room"]["name"], "lobby");
    assert_eq!(created["data"]["room"]["presence"], true);
    let joined = of_type(&received, "member.joined")[0].json();
    assert_eq!(joined["data"]["room"], "lobby");
    assert_eq!(joined["data"]["member"]["id"], writer["id"]);
    assert_eq!(joined["data"]["member"]["meta"]["name"], "Ada");
    let message = of_type(&received, "message.created")[0].json();
    assert_eq!(message["data"]["message"]["message"], "hello");
    assert_eq!(message["data"]["message"]["seq"], 1);
    assert_eq!(message["data"]["message"]["sender"]["id"], writer["id"]);
    let expired = of_type(&received, "endpoint.expired")[0].json();
    assert_eq!(expired["data"]["endpoint"]["id"], expiring["id"]);
    assert_eq!(expired["data"]["room"], "lobby");
    let endpoint = of_type(&received, "endpoint.created")[0].json();
    assert_eq!(endpoint["data"]["endpoint"]["code"], writer["code"]);
    assert!(endpoint["data"]["endpoint"]["ws_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{}/", writer["code"].as_str().unwrap())));
    assert!(received.iter().all(|delivery| delivery.json()["timestamp"].as_str().is_some_and(|at| at.ends_with('Z'))));
    verify_independently(webhook["secret"].as_str().unwrap(), &received).await;
}

fn types(received: &[Received]) -> Vec<String> {
    received.iter().map(Received::event_type).collect()
}

/// An endpoint of `room` expiring `ms` from now.
async fn endpoint_expiring(api: &Remote, key: &str, room: &str, ms: i64) -> Value {
    let response = api
        .post(&format!("/api/v1/rooms/{room}/endpoints"), key, json!({ "permission": "read", "expires_at": in_ms(ms) }))
        .await;
    assert_eq!(response.status(), 201);
    body(response).await
}

#[tokio::test]
async fn message_events_go_only_to_webhooks_that_list_them() {
    let app = quick_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    let rooms_only = WebhookReceiver::start().await;
    let messages = WebhookReceiver::start().await;
    register(api, &key, &rooms_only, &["room.created", "room.deleted"]).await;
    register(api, &key, &messages, &["message.created"]).await;
    api.create_room(&key, "news").await;
    let response = api.post("/api/v1/rooms/news/messages", &key, json!({ "message": { "n": 1 } })).await;
    assert_eq!(response.status(), 201);
    let got = messages.wait_for("message.created", |received| received.len() == 1).await;
    assert_eq!(got[0].json()["data"]["message"]["sender"]["id"], "app");
    rooms_only.wait_for("room.created", |received| received.len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(types(&rooms_only.received()), ["room.created"], "no message to a webhook without message.created");
    assert_eq!(types(&messages.received()), ["message.created"], "no room events to a webhook without them");
}

#[tokio::test]
async fn a_receiver_failing_three_times_gets_the_event_four_times_with_one_id() {
    let app = quick_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    let receiver = WebhookReceiver::start().await;
    let webhook = register(api, &key, &receiver, &["room.created"]).await;
    receiver.fail_next(3, 500);
    api.create_room(&key, "lobby").await;
    let received = receiver.wait_for("four attempts", |received| received.len() >= 4).await;
    assert_eq!(received.iter().map(|delivery| delivery.answered).collect::<Vec<_>>(), [500, 500, 500, 200]);
    assert!(received.iter().all(|delivery| delivery.id == received[0].id), "one webhook-id on every attempt");
    assert!(received.iter().all(|delivery| delivery.body == received[0].body), "the same body on every attempt");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 4, "nothing after the 2xx");

    let path = format!("/api/v1/webhooks/{}/deliveries", webhook["id"].as_str().unwrap());
    let deliveries = body(api.get(&path, &key).await).await;
    let delivery = &deliveries["deliveries"][0];
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"], 4);
    assert_eq!(delivery["last_status"], 200);
    assert_eq!(delivery["event"], "room.created");
    assert_eq!(delivery["event_id"], received[0].id.as_str());

    let again = format!("{path}/{}/retry", delivery["id"]);
    assert_eq!(api.post(&again, &key, json!({})).await.status(), 202);
    let received = receiver.wait_for("the delivery sent again", |received| received.len() == 5).await;
    assert_eq!(received[4].id, received[0].id, "sent again with its event id");
}

#[tokio::test]
async fn webhooks_are_listed_without_secrets_deleted_and_checked() {
    let app = quick_app().await;
    let key = app.create_app("acme").await;
    let other = app.create_app("other").await;
    let api = app.api();
    let receiver = WebhookReceiver::start().await;
    let webhook = register(api, &key, &receiver, &["room.created", "room.created"]).await;
    assert_eq!(webhook["events"], json!(["room.created"]), "each event once");
    let listed = body(api.get("/api/v1/webhooks", &key).await).await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
    assert!(listed["webhooks"][0].get("secret").is_none(), "the secret is shown only at creation");
    assert_eq!(body(api.get("/api/v1/webhooks", &other).await).await["webhooks"], json!([]));

    for bad in [
        json!({ "url": "ftp://example.com/", "events": ["room.created"] }),
        json!({ "url": receiver.url(), "events": [] }),
        json!({ "url": receiver.url(), "events": ["room.renamed"] }),
        json!({ "url": "not a url", "events": ["room.created"] }),
    ] {
        assert_error(api.post("/api/v1/webhooks", &key, bad).await, 400, "invalid").await;
    }
    let path = format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    assert_error(api.delete(&path, &other).await, 404, "not_found").await;
    assert_eq!(api.delete(&path, &key).await.status(), 204);
    assert_error(api.delete(&path, &key).await, 404, "not_found").await;
    api.create_room(&key, "after").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(receiver.received().is_empty(), "a deleted webhook gets nothing");
}

#[tokio::test]
async fn the_legacy_api_causes_the_same_events() {
    let app = quick_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    let receiver = WebhookReceiver::start().await;
    register(api, &key, &receiver, &["room.created", "endpoint.created", "endpoint.deleted", "room.deleted"]).await;
    let created = body(api.post("/main/create_room/legacy/", &key, json!({})).await).await;
    assert_eq!(created["status"], "success");
    let endpoint = body(api.post("/main/add_endpoint/legacy/read/", &key, json!({})).await).await;
    let code = endpoint["code"].as_str().unwrap();
    api.post(&format!("/main/delete_endpoint/legacy/{code}/"), &key, json!({})).await;
    api.post("/main/delete_room/legacy/", &key, json!({})).await;
    let received = receiver.wait_for("four events", |received| received.len() == 4).await;
    assert_eq!(types(&received), ["room.created", "endpoint.created", "endpoint.deleted", "room.deleted"]);
}

#[tokio::test]
async fn prod_refuses_private_destinations_unless_allowed() {
    let receiver = WebhookReceiver::start().await;
    let app = spawn_app_with(|config| config.profile = Profile::Prod).await;
    let key = app.create_app("acme").await;
    let api = app.api();
    for url in [receiver.url(), "http://localhost/hook".to_owned(), "http://169.254.169.254/latest".to_owned()] {
        let response = api.post("/api/v1/webhooks", &key, json!({ "url": url, "events": ["room.created"] })).await;
        assert_error(response, 400, "invalid").await;
    }

    let allowed = spawn_app_with(|config| {
        config.profile = Profile::Prod;
        config.webhooks.allow_private = Networks::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let key = allowed.create_app("acme").await;
    register(allowed.api(), &key, &receiver, &["room.created"]).await;
    allowed.api().create_room(&key, "lobby").await;
    receiver.wait_for("an allowed private receiver's delivery", |received| received.len() == 1).await;
}

/// `comms` as a real process on a SQLite file in `data_dir`.
fn comms(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_comms"));
    command
        .current_dir(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("COMMS_DATA_DIR", data_dir)
        .env("COMMS_DEMO__ENABLED", "false")
        .env("COMMS_WEBHOOKS__FIRST_RETRY_MS", "200")
        .env("COMMS_WEBHOOKS__TIMEOUT_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn deliveries_pending_when_comms_is_killed_are_made_after_it_restarts() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = comms(data_dir.path()).args(["app", "create", "acme"]).output().await.expect("run comms");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = serde_json::from_slice::<Value>(&output.stdout).unwrap()["api_key"].as_str().unwrap().to_owned();
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let serve = || comms(data_dir.path()).args(["serve", "--addr", &addr.to_string()]).spawn().expect("start comms");

    let receiver = WebhookReceiver::start().await;
    let mut node = serve();
    wait_ready(&addr.to_string()).await;
    let api = Remote::new(addr);
    register(&api, &key, &receiver, &["room.created"]).await;
    receiver.fail_next(usize::MAX, 503);
    for room in ["a", "b", "c"] {
        api.create_room(&key, room).await;
    }
    receiver.wait_for("a failed attempt of each", |received| received.len() >= 3).await;
    node.start_kill().expect("SIGKILL comms");
    node.wait().await.unwrap();

    receiver.fail_next(0, 503);
    let _restarted = serve();
    wait_ready(&addr.to_string()).await;
    // A delivery in flight when comms was killed waits for its lease to
    // run out (with a 1 s timeout: 22 s at most).
    let received = receiver
        .wait_for_within("each room's event delivered", Duration::from_secs(45), |received| {
            received.iter().filter(|delivery| delivery.answered == 200).count() >= 3
        })
        .await;
    let mut delivered: Vec<String> = received
        .iter()
        .filter(|delivery| delivery.answered == 200)
        .map(|delivery| delivery.json()["data"]["room"]["name"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered, ["a", "b", "c"]);
}
