//! The real server on PostgreSQL (`database.url = postgres://…`), each test
//! on a fresh database: REST, WebSocket chat, portal sessions and a
//! restart. Skipped when PostgreSQL is not reachable, except under
//! `CI=true` (see `comms_core::store::testing`). And how a start with a
//! database URL it cannot use fails.

use std::time::{Duration, Instant};

use comms_core::config::{Config, DatabaseConfig};
use comms_server::portal_sessions::PortalSessionStore;
use comms_server::startup::Application;
use comms_testkit::postgres::TestDatabase;
use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app_with, Browser, TestApp};

/// A server on a fresh database; `None` when the test is skipped. The
/// database is dropped after the server (tuple fields drop in order).
async fn spawn_on_postgres() -> Option<(TestApp, TestDatabase)> {
    let database = TestDatabase::create().await?;
    let url = database.url().to_owned();
    let app = spawn_app_with(|config| config.database.url = url).await;
    assert!(!app.data_dir.path().join("comms.db").exists(), "no SQLite file next to PostgreSQL");
    Some((app, database))
}

#[tokio::test]
async fn rooms_endpoints_and_messages_work_on_postgres() {
    let Some((mut app, _database)) = spawn_on_postgres().await else { return };
    assert_eq!(app.api().client.get(format!("{}/readyz", app.api().base)).send().await.unwrap().status(), 200);
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    assert_error(app.api().post("/api/v1/rooms", &key, json!({ "name": "lobby" })).await, 409, "conflict").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", Some(json!({ "name": "Ann" }))).await;
    let endpoints = body(app.api().get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert_eq!(endpoints["endpoints"][0]["code"], endpoint["code"]);

    let published =
        app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": { "b": 1, "a": "é" } })).await;
    assert_eq!(published.status(), 201);
    let history = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"][0]["seq"], 1);
    assert_eq!(history["messages"][0]["message"], json!({ "b": 1, "a": "é" }));

    let rooms = body(app.api().get("/api/v1/rooms", &key).await).await;
    assert_eq!(rooms["rooms"][0]["name"], "lobby");
    assert_eq!(app.api().delete("/api/v1/rooms/lobby", &key).await.status(), 204);
    assert_error(app.api().get("/api/v1/rooms/lobby", &key).await, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn text_postgres_cannot_store_is_refused_before_the_database() {
    let Some((mut app, _database)) = spawn_on_postgres().await else { return };
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    assert_eq!(app.api().ws_refusal("abc%00def").await, 404, "a code with a NUL byte is unknown");
    let delete = app.api().delete("/api/v1/rooms/lobby/endpoints/abc%00def", &key).await;
    assert_error(delete, 404, "not_found").await;
    let legacy = app.api().request(reqwest::Method::GET, "/main/delete_endpoint/lobby/abc%00/", Some(&key));
    assert_eq!(legacy.send().await.unwrap().status(), 404);
    assert_error(app.api().delete("/api/v1/webhooks/wh_%00", &key).await, 404, "not_found").await;
    assert_error(app.api().get("/api/v1/webhooks/wh_%00/deliveries", &key).await, 404, "not_found").await;
    let again = app.api().post("/api/v1/webhooks/wh_%00/deliveries/1/retry", &key, serde_json::json!({})).await;
    assert_error(again, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn a_websocket_chat_works_on_postgres() {
    let Some((mut app, _database)) = spawn_on_postgres().await else { return };
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let ann = app.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let bob = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut ann_ws = app.api().connect_ws(ann["code"].as_str().unwrap(), None).await;
    let mut bob_ws = app.api().connect_ws(bob["code"].as_str().unwrap(), None).await;
    assert_eq!(ann_ws.next_json().await["type"], "welcome");
    assert_eq!(bob_ws.next_json().await["type"], "welcome");

    for n in 1..=3u64 {
        ann_ws.send_message(json!({ "text": format!("hello {n}") })).await;
        for ws in [&mut ann_ws, &mut bob_ws] {
            let message = ws.next_message().await;
            assert_eq!(message["seq"], n);
            assert_eq!(message["sender"]["meta"], json!({ "name": "Ann" }));
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn portal_sessions_live_in_postgres() {
    let Some((mut app, _database)) = spawn_on_postgres().await else { return };
    assert!(matches!(app.state().sessions, PortalSessionStore::Postgres(_)));
    let mut browser = Browser::open(&app).await;
    browser.sign_up_and_log_in("dev@example.com").await;
    assert_eq!(browser.refresh().await["email"], "dev@example.com");
    browser.register("game").await.expect("a signed-in developer registers an app");
    let mine = browser.call("/portal/fn/my_apps", &[]).await.unwrap();
    assert_eq!(mine[0]["name"], "game", "{mine}");
    browser.act("/portal/fn/log_out", &[]).await.unwrap();
    assert_eq!(browser.refresh().await["email"], serde_json::Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_restart_on_postgres_keeps_rooms_history_and_seq() {
    let Some((app, _database)) = spawn_on_postgres().await else { return };
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let writer = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let code = writer["code"].as_str().unwrap().to_owned();
    let mut ws = app.api().connect_ws(&code, None).await;
    ws.next_json().await;
    for n in 1..=3 {
        ws.send_message(json!(n)).await;
        ws.next_message().await;
    }
    drop(ws);

    let mut app = app.restart().await;
    let rooms = body(app.api().get("/api/v1/rooms", &key).await).await;
    assert_eq!(rooms["rooms"][0]["name"], "lobby");
    let history = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    let payloads: Vec<_> = history["messages"].as_array().unwrap().iter().map(|m| m["message"].clone()).collect();
    assert_eq!(payloads, [json!(1), json!(2), json!(3)]);

    let mut ws = app.api().connect_ws(&code, Some(1)).await;
    let welcome = ws.next_json().await;
    assert_eq!(welcome["last_seq"], 3);
    assert_eq!(ws.next_message().await["seq"], 2);
    assert_eq!(ws.next_message().await["seq"], 3);
    ws.send_message(json!(4)).await;
    assert_eq!(ws.next_message().await["seq"], 4, "seq goes on from where it was");
    app.stop().await;
}

/// Why `Application::build` refused `url`, with the error's causes.
async fn refusal(url: String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let database = DatabaseConfig { url, ..DatabaseConfig::default() };
    let config = Config { data_dir: dir.path().to_owned(), database, ..Config::default() };
    let refused = Application::build(config, "127.0.0.1:0".parse().unwrap()).await.err();
    format!("{:#}", refused.expect("the start is refused"))
}

#[tokio::test]
async fn an_unreachable_postgres_fails_the_start_quickly_without_showing_the_password() {
    // A port nothing listens on once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let message = refusal(format!("postgres://comms:s3cret@127.0.0.1:{port}/comms")).await;
    assert!(started.elapsed() < Duration::from_secs(15), "gave up after {:?}", started.elapsed());
    assert!(message.contains("did not accept a connection within 5 s"), "{message}");
    assert!(message.contains(&format!("postgres://comms:***@127.0.0.1:{port}/comms")), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn other_database_urls_are_refused_naming_both_accepted_forms() {
    let message = refusal("mysql://comms:s3cret@db/comms".into()).await;
    assert!(message.contains("sqlite://PATH") && message.contains("postgres://"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}
