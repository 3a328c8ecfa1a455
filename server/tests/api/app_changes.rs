//! `docs/decisions.md#keys-and-apps`: a change to an app made anywhere
//! (the command line, the admin area, the portal) reaches the running
//! server's caches and sockets: a suspension closes every socket, even
//! one racing the handshake; rotating a leaked key can take the endpoints
//! it created with it.

use std::time::{Duration, Instant};

use comms_core::store::AppStatus;
use comms_protocol::ws::close;
use futures_util::future::join_all;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::cli::comms_beside;
use crate::helpers::{body, spawn_app, until_key_status, Browser, TestApp};

async fn reader_code(app: &TestApp, key: &str) -> String {
    app.api().create_endpoint(key, "lobby", "read", None).await["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_suspension_from_the_command_line_closes_open_sockets() {
    let app = spawn_app().await;
    let key = comms_beside(&app, &["app", "create", "live"]).await[0]["api_key"].as_str().unwrap().to_owned();
    app.api().create_room(&key, "lobby").await;
    let code = reader_code(&app, &key).await;
    let mut ws = app.api().connect_ws(&code, None).await;
    assert_eq!(ws.next_json().await["type"], "welcome");

    let started = Instant::now();
    comms_beside(&app, &["app", "suspend", "live"]).await;
    assert_eq!(ws.closed().await.code, close::APP_STOPPED);
    assert!(started.elapsed() < Duration::from_secs(2), "closed within a poll: {:?}", started.elapsed());
    until_key_status(app.api(), &key, 403).await;
    assert_eq!(app.api().ws_refusal(&code).await, 404);

    comms_beside(&app, &["app", "approve", "live"]).await;
    until_key_status(app.api(), &key, 200).await;
}

#[tokio::test]
async fn no_socket_survives_a_suspension_racing_its_handshake() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let code = reader_code(&app, &key).await;
    let url = format!("ws://{}/ws/endpoint/{code}/", app.api().addr);
    let handshakes = join_all((0..40).map(|i| {
        let url = url.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(i)).await;
            tokio_tungstenite::connect_async(url).await.ok().map(|(stream, _)| stream)
        }
    }));
    let suspend = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        app.apps().set_status("acme", AppStatus::Suspended, "test").await.unwrap();
    };
    let (opened, ()) = tokio::join!(handshakes, suspend);
    for mut stream in opened.into_iter().flatten() {
        // Each socket that got through the handshake ends closed: refused
        // at its join or closed by the suspension, never left open.
        let ended = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match stream.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .expect("no socket stays open after a suspension");
        assert!(matches!(ended, Some(close::APP_STOPPED) | None), "{ended:?}");
    }
}

#[tokio::test]
async fn rotating_a_leaked_key_with_its_endpoints_closes_their_sockets() {
    let app = spawn_app().await;
    let key = comms_beside(&app, &["app", "create", "leaky"]).await[0]["api_key"].as_str().unwrap().to_owned();
    app.api().create_room(&key, "lobby").await;
    let leaked = reader_code(&app, &key).await;
    let legacy: Value = body(app.api().get("/main/add_endpoint/lobby/read/", &key).await).await;
    let legacy = legacy["code"].as_str().unwrap().to_owned();
    let mut open = app.api().connect_ws(&leaked, None).await;
    assert_eq!(open.next_json().await["type"], "welcome");

    let rotated = comms_beside(&app, &["app", "rotate-key", "leaky", "--revoke-endpoints"]).await.remove(0);
    assert_eq!(rotated["revoked_endpoints"], 2, "{rotated}");
    assert_eq!(open.closed().await.code, close::ENDPOINT_DELETED);
    assert_eq!(app.api().ws_refusal(&leaked).await, 404);
    assert_eq!(app.api().ws_refusal(&legacy).await, 404);
    let new_key = rotated["api_key"].as_str().unwrap();
    until_key_status(app.api(), &key, 403).await;
    let listed = body(app.api().get("/api/v1/rooms/lobby/endpoints", new_key).await).await;
    assert_eq!(listed["endpoints"], serde_json::json!([]));

    let kept = reader_code(&app, new_key).await;
    let plain = comms_beside(&app, &["app", "rotate-key", "leaky"]).await.remove(0);
    assert_eq!(plain["revoked_endpoints"], 0);
    let mut still = app.api().connect_ws(&kept, None).await;
    assert_eq!(still.next_json().await["type"], "welcome", "a plain rotation keeps the endpoints");
}

#[tokio::test]
async fn the_portal_rotates_a_leaked_key_with_its_endpoints() {
    let app = spawn_app().await;
    let mut dev = Browser::open(&app).await;
    dev.sign_up_and_log_in("dev@example.com").await;
    dev.register("game").await.unwrap();
    let key = dev.issue_key("game").await.expect("auto-approved in dev");
    app.api().create_room(&key, "lobby").await;
    let leaked = reader_code(&app, &key).await;
    let mut open = app.api().connect_ws(&leaked, None).await;
    assert_eq!(open.next_json().await["type"], "welcome");

    dev.act("/portal/fn/issue_key", &[("app", "game"), ("revoke_endpoints", "true")]).await.unwrap();
    assert_eq!(open.closed().await.code, close::ENDPOINT_DELETED, "applied at once on this node");
    assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 403);
}
