//! `docs/protocol.md#quotas`: count quotas answer `403 quota_exceeded`
//! naming the quota and its value, on the REST and legacy APIs, and
//! nothing is created; socket quotas close the connection past them with
//! 4029 and leave the connections already open alone; an admin's per-app
//! value (the `comms app quota` command) wins over the default.

use std::time::Duration;

use comms_core::forwarded::TrustedProxies;
use comms_protocol::ws::close;
use futures_util::StreamExt;
use reqwest::Response;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::cli::{comms, comms_beside};
use crate::helpers::{body, spawn_app_with, Browser, TestApp, WsClient, WAIT};

/// Asserts a `403 quota_exceeded` whose message names `quota` and `value`.
async fn assert_quota_exceeded(response: Response, quota: &str, value: u64) -> Value {
    assert_eq!(response.status(), 403);
    let body = body(response).await;
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(quota) && message.contains(&value.to_string()), "{message}");
    body
}

#[tokio::test]
async fn rooms_past_rooms_per_app_are_refused_on_both_apis_and_not_created() {
    let app = spawn_app_with(|config| config.quotas.rooms_per_app = 2).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "one").await;
    app.api().create_room(&key, "two").await;
    let refused = app.api().post("/api/v1/rooms", &key, json!({ "name": "three" })).await;
    assert_quota_exceeded(refused, "rooms_per_app", 2).await;
    let legacy = app.api().get("/main/create_room/three/", &key).await;
    let legacy = assert_quota_exceeded(legacy, "rooms_per_app", 2).await;
    assert_eq!(legacy["status"], "failure");
    let rooms = body(app.api().get("/api/v1/rooms", &key).await).await;
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 2, "nothing created");

    let other = app.create_app("other").await;
    app.api().create_room(&other, "three").await;

    app.api().delete("/api/v1/rooms/one", &key).await;
    app.api().create_room(&key, "three").await;
}

#[tokio::test]
async fn endpoints_past_endpoints_per_room_are_refused_on_both_apis() {
    let app = spawn_app_with(|config| config.quotas.endpoints_per_room = 1).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    app.api().create_room(&key, "side").await;
    app.api().create_endpoint(&key, "lobby", "read", None).await;
    let refused = app.api().post("/api/v1/rooms/lobby/endpoints", &key, json!({ "permission": "read" })).await;
    assert_quota_exceeded(refused, "endpoints_per_room", 1).await;
    let legacy = app.api().get("/main/add_endpoint/lobby/read/", &key).await;
    assert_quota_exceeded(legacy, "endpoints_per_room", 1).await;
    let listed = body(app.api().get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert_eq!(listed["endpoints"].as_array().unwrap().len(), 1, "nothing created");
    app.api().create_endpoint(&key, "side", "read", None).await;
}

#[tokio::test]
async fn an_admins_quota_for_one_app_wins_over_the_default_at_once() {
    let app = spawn_app_with(|config| config.quotas.rooms_per_app = 1).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "one").await;
    assert_eq!(app.api().post("/api/v1/rooms", &key, json!({ "name": "two" })).await.status(), 403);

    let set = comms_beside(&app, &["app", "quota", "acme", "rooms_per_app", "3"]).await.remove(0);
    assert_eq!(set, json!({ "name": "acme", "quota": "rooms_per_app", "value": 3 }));
    created_within_a_poll(&app, &key, "two").await;
    app.api().create_room(&key, "three").await;
    let refused = app.api().post("/api/v1/rooms", &key, json!({ "name": "four" })).await;
    assert_quota_exceeded(refused, "rooms_per_app", 3).await;

    comms_beside(&app, &["app", "quota", "acme", "rooms_per_app", "0"]).await;
    created_within_a_poll(&app, &key, "four").await;
    let back = comms_beside(&app, &["app", "quota", "acme", "rooms_per_app", "default"]).await;
    assert_eq!(back[0]["value"], "default");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.api().post("/api/v1/rooms", &key, json!({ "name": "five" })).await.status(), 403);
}

/// Creates a room, retrying while the server has not yet applied a quota
/// change made with the command line (it does within `auth.change_poll_ms`).
async fn created_within_a_poll(app: &TestApp, key: &str, name: &str) {
    for _ in 0..100 {
        let response = app.api().post("/api/v1/rooms", key, json!({ "name": name })).await;
        if response.status() == 201 {
            return;
        }
        assert_eq!(response.status(), 403);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the quota change did not apply");
}

#[tokio::test]
async fn the_command_refuses_unknown_quotas_and_values() {
    let app = spawn_app_with(|_| {}).await;
    app.create_app("acme").await;
    let dir = app.data_dir.path().to_owned();
    for args in [["app", "quota", "acme", "rooms", "3"], ["app", "quota", "acme", "rooms_per_app", "-1"]] {
        let output = comms(&dir, &args);
        assert!(!output.status.success(), "{args:?} is refused");
    }
}

#[tokio::test]
async fn the_admin_area_sets_a_quota() {
    let app = spawn_app_with(|config| config.quotas.endpoints_per_room = 1).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut admin = Browser::open(&app).await;
    let password = app.state().accounts.create_admin("root@example.com").await.unwrap().1;
    admin.log_in("root@example.com", &password).await.unwrap();

    let form = [("app", "acme"), ("quota", "endpoints_per_room"), ("value", "2")];
    admin.act("/admin/fn/set_quota", &form).await.unwrap();
    app.api().create_endpoint(&key, "lobby", "read", None).await;
    let refused = app.api().post("/api/v1/rooms/lobby/endpoints", &key, json!({ "permission": "read" })).await;
    assert_quota_exceeded(refused, "endpoints_per_room", 2).await;

    let bad = admin.act("/admin/fn/set_quota", &[("app", "acme"), ("quota", "rooms"), ("value", "2")]).await;
    assert!(bad.unwrap_err().contains("unknown quota"));
    let overview = admin.call("/admin/fn/overview", &[]).await.unwrap();
    assert_eq!(overview["apps"][0]["quotas"], json!(["endpoints_per_room = 2"]));
}

#[tokio::test]
async fn apps_past_apps_per_account_are_refused_in_the_portal() {
    let app = spawn_app_with(|config| config.quotas.apps_per_account = 1).await;
    let mut developer = Browser::open(&app).await;
    developer.sign_up_and_log_in("dev@example.com").await;
    developer.register("first").await.unwrap();
    let refused = developer.register("second").await.unwrap_err();
    assert!(refused.contains("apps_per_account") && refused.contains('1'), "{refused}");
}

/// A code's connections, opened from `client` (through a trusted proxy).
async fn connect_from(app: &TestApp, code: &str, client: &str) -> WsClient {
    let mut request = format!("ws://{}/ws/endpoint/{code}/", app.api().addr).into_client_request().unwrap();
    request.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
    let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
        .expect("the upgrade is accepted, even past a quota");
    WsClient { stream }
}

/// Opens a socket expected to be admitted: its first frame is the welcome.
async fn admitted(app: &TestApp, code: &str, client: &str) -> WsClient {
    let mut ws = connect_from(app, code, client).await;
    assert_eq!(ws.next_json().await["type"], "welcome");
    ws
}

/// Opens a socket expected past `quota`: closed at once with 4029.
async fn refused(app: &TestApp, code: &str, client: &str, quota: &str) {
    let closed = connect_from(app, code, client).await.closed().await;
    assert_eq!(closed.code, close::QUOTA_EXCEEDED);
    assert!(closed.reason.contains(quota), "{closed:?}");
}

async fn spawn_behind_proxy(configure: impl FnOnce(&mut comms_core::config::Config)) -> (TestApp, String) {
    let app = spawn_app_with(|config| {
        config.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        configure(config);
    })
    .await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    (app, key)
}

async fn code(app: &TestApp, key: &str, permission: &str) -> String {
    app.api().create_endpoint(key, "lobby", permission, None).await["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_code_opened_past_sockets_per_endpoint_gets_4029_and_open_sockets_stay_up() {
    let (app, key) = spawn_behind_proxy(|config| config.quotas.sockets_per_endpoint = 2).await;
    let reader = code(&app, &key, "read").await;
    let mut first = admitted(&app, &reader, "10.0.0.1").await;
    let mut second = admitted(&app, &reader, "10.0.0.2").await;
    refused(&app, &reader, "10.0.0.3", "sockets_per_endpoint").await;

    let writer = code(&app, &key, "read_and_write").await;
    let mut sender = admitted(&app, &writer, "10.0.0.4").await;
    sender.send_message(json!("still here")).await;
    for ws in [&mut first, &mut second, &mut sender] {
        assert_eq!(ws.next_message().await["message"], "still here", "open sockets are not closed by a quota");
    }

    first.stream.close(None).await.unwrap();
    let mut freed = false;
    for _ in 0..50 {
        let mut ws = connect_from(&app, &reader, "10.0.0.3").await;
        if matches!(ws.stream.next().await, Some(Ok(Message::Text(_)))) {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "a closed socket frees its slot");
}

#[tokio::test]
async fn sockets_per_ip_counts_each_client_address_over_all_codes() {
    let (app, key) = spawn_behind_proxy(|config| config.quotas.sockets_per_ip = 2).await;
    let (a, b) = (code(&app, &key, "read").await, code(&app, &key, "read").await);
    let _first = admitted(&app, &a, "10.0.0.1").await;
    let _second = admitted(&app, &b, "10.0.0.1").await;
    refused(&app, &a, "10.0.0.1", "sockets_per_ip").await;
    let _elsewhere = admitted(&app, &a, "10.0.0.2").await;
}

#[tokio::test]
async fn sockets_per_app_counts_every_code_of_the_app() {
    let (app, key) = spawn_behind_proxy(|config| config.quotas.sockets_per_app = 2).await;
    let _first = admitted(&app, &code(&app, &key, "read").await, "10.0.0.1").await;
    let _second = admitted(&app, &code(&app, &key, "read").await, "10.0.0.2").await;
    refused(&app, &code(&app, &key, "read").await, "10.0.0.3", "sockets_per_app").await;

    let other = app.create_app("other").await;
    app.api().create_room(&other, "lobby").await;
    let _theirs = admitted(&app, &code(&app, &other, "read").await, "10.0.0.3").await;
}
