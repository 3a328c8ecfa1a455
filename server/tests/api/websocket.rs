//! `docs/protocol.md#websocket`: the WebSocket protocol.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, spawn_app_with, TestApp, WAIT};

/// An app with room `lobby` and its key.
async fn lobby(app: &TestApp) -> String {
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    key
}

fn code(endpoint: &Value) -> &str {
    endpoint["code"].as_str().unwrap()
}

#[tokio::test]
async fn welcome_is_the_first_frame() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let mut ws = app.api().connect_ws(code(&endpoint), None).await;
    let welcome = ws.next_json().await;
    assert_eq!(
        welcome,
        json!({
            "type": "welcome",
            "room": "lobby",
            "endpoint": { "id": endpoint["id"], "permission": "read_and_write", "meta": { "name": "Ann" } },
            "last_seq": 0,
            "first_seq": 1,
        })
    );
    let room = crate::helpers::body(app.api().get("/api/v1/rooms/lobby", &key).await).await;
    assert_eq!(room["online"], 1);
}

#[tokio::test]
async fn the_path_works_without_the_trailing_slash() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let url = format!("ws://{}/ws/endpoint/{}", app.api().addr, code(&endpoint));
    let (mut stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frame = tokio::time::timeout(WAIT, stream.next()).await.unwrap().unwrap().unwrap();
    assert!(frame.to_text().unwrap().contains("\"welcome\""));
}

#[tokio::test]
async fn unknown_codes_are_refused_with_404() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    assert_eq!(app.api().ws_refusal("no-such-code").await, 404);
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    app.api().delete(&format!("/api/v1/rooms/lobby/endpoints/{}", code(&endpoint)), &key).await;
    assert_eq!(app.api().ws_refusal(code(&endpoint)).await, 404);
}

#[tokio::test]
async fn everyone_in_the_room_gets_each_message_with_sender_meta() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let ann = app.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let watcher = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut ann_ws = app.api().connect_ws(code(&ann), None).await;
    let mut watcher_ws = app.api().connect_ws(code(&watcher), None).await;
    ann_ws.next_json().await;
    watcher_ws.next_json().await;

    ann_ws.send_message(json!({ "text": "hi", "name": "forged" })).await;
    for ws in [&mut ann_ws, &mut watcher_ws] {
        let message = ws.next_message().await;
        assert_eq!(message["seq"], 1);
        assert_eq!(message["room"], "lobby");
        assert_eq!(message["sender"], json!({ "id": ann["id"], "meta": { "name": "Ann" } }));
        assert_eq!(message["message"], json!({ "text": "hi", "name": "forged" }));
        assert!(message["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(message["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_ne!(message["sender"]["id"], ann["code"], "the code is never shown");
    }

    // A server-side publish reaches sockets too, as the app.
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "from backend" })).await;
    let message = watcher_ws.next_message().await;
    assert_eq!((message["seq"].as_u64(), &message["sender"]["id"]), (Some(2), &json!("app")));
}

#[tokio::test]
async fn other_rooms_do_not_hear_it() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    app.api().create_room(&key, "other").await;
    let talker = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let outsider = app.api().create_endpoint(&key, "other", "read_and_write", None).await;
    let mut talker_ws = app.api().connect_ws(code(&talker), None).await;
    let mut outsider_ws = app.api().connect_ws(code(&outsider), None).await;
    talker_ws.next_json().await;
    outsider_ws.next_json().await;
    talker_ws.send_message(json!("lobby only")).await;
    talker_ws.next_message().await;
    outsider_ws.send_message(json!("other only")).await;
    let message = outsider_ws.next_message().await;
    assert_eq!((message["message"].as_str(), message["seq"].as_u64()), (Some("other only"), Some(1)));
}

#[tokio::test]
async fn read_endpoints_cannot_publish() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut ws = app.api().connect_ws(code(&reader), None).await;
    ws.next_json().await;
    ws.send_message(json!("let me in")).await;
    let error = ws.next_json().await;
    assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("error"), Some("read_only")));
    assert!(error["message"].is_string());
    let history = crate::helpers::body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"], json!([]), "nothing was published");
    // The connection stays open and still receives.
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "still here" })).await;
    assert_eq!(ws.next_message().await["message"], "still here");
}

#[tokio::test]
async fn malformed_frames_get_invalid_and_the_connection_stays() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let writer = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut ws = app.api().connect_ws(code(&writer), None).await;
    ws.next_json().await;
    for text in ["not json", "{\"text\": \"no message key\"}", "[1, 2]", "\"message\"", "{"] {
        ws.send_text(text).await;
        let error = ws.next_json().await;
        assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("error"), Some("invalid")), "{text}");
    }
    ws.stream.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(ws.next_json().await["code"], "invalid");
    ws.send_message(json!(null)).await;
    let message = ws.next_message().await;
    assert_eq!((message["seq"].as_u64(), &message["message"]), (Some(1), &Value::Null));
}

#[tokio::test]
async fn oversized_frames_get_too_large_and_close_1009() {
    let app = spawn_app_with(|config| config.limits.max_message_bytes = 1024).await;
    let key = lobby(&app).await;
    let writer = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut ws = app.api().connect_ws(code(&writer), None).await;
    ws.next_json().await;
    ws.send_message(json!("x".repeat(2000))).await;
    let error = ws.next_json().await;
    assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("error"), Some("too_large")));
    assert_eq!(ws.closed().await.code, 1009);
}

/// Frames far over the limit (past the library's hard cap) end the
/// connection: with 1009 when the close frame gets through before the
/// socket is torn down. The server keeps serving.
#[tokio::test]
async fn huge_frames_end_the_connection() {
    let app = spawn_app_with(|config| config.limits.max_message_bytes = 1024).await;
    let key = lobby(&app).await;
    let writer = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut ws = app.api().connect_ws(code(&writer), None).await;
    ws.next_json().await;
    let huge = json!({ "message": "x".repeat(4 * 1024 * 1024) }).to_string();
    let _ = ws.stream.send(Message::text(huge)).await;
    loop {
        match tokio::time::timeout(WAIT, ws.stream.next()).await.expect("the connection ends in time") {
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1009));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    let other = app.api().create_endpoint(&key, "lobby", "read", None).await;
    app.api().connect_ws(code(&other), None).await.next_json().await;
}

#[tokio::test]
async fn deleting_an_endpoint_closes_its_sockets_only() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let doomed = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let survivor = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut doomed_ws = app.api().connect_ws(code(&doomed), None).await;
    let mut survivor_ws = app.api().connect_ws(code(&survivor), None).await;
    doomed_ws.next_json().await;
    survivor_ws.next_json().await;

    let started = Instant::now();
    app.api().delete(&format!("/api/v1/rooms/lobby/endpoints/{}", code(&doomed)), &key).await;
    let closed = doomed_ws.closed().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!((4000..5000).contains(&closed.code), "{closed:?}");
    assert!(!closed.reason.is_empty());

    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "after" })).await;
    assert_eq!(survivor_ws.next_message().await["message"], "after");
}

#[tokio::test]
async fn deleting_a_room_closes_all_its_sockets() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let mut sockets = Vec::new();
    for permission in ["read", "read_and_write"] {
        let endpoint = app.api().create_endpoint(&key, "lobby", permission, None).await;
        let mut ws = app.api().connect_ws(code(&endpoint), None).await;
        ws.next_json().await;
        sockets.push(ws);
    }
    let started = Instant::now();
    assert_eq!(app.api().delete("/api/v1/rooms/lobby", &key).await.status(), 204);
    for ws in &mut sockets {
        let closed = ws.closed().await;
        assert!((4000..5000).contains(&closed.code), "{closed:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn after_seq_resumes_with_the_missed_messages_first() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    for n in 1..=5 {
        app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": n })).await;
    }
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut ws = app.api().connect_ws(code(&reader), Some(2)).await;
    let welcome = ws.next_json().await;
    assert_eq!((welcome["last_seq"].as_u64(), welcome["first_seq"].as_u64()), (Some(5), Some(1)));
    for seq in 3..=5 {
        assert_eq!(ws.next_message().await["seq"], seq);
    }
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": 6 })).await;
    assert_eq!(ws.next_message().await["seq"], 6);

    // Without after_seq, no backlog: the next frame is the next live message.
    let mut fresh = app.api().connect_ws(code(&reader), None).await;
    assert_eq!(fresh.next_json().await["last_seq"], 6);
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": 7 })).await;
    assert_eq!(fresh.next_message().await["seq"], 7);
}

#[tokio::test]
async fn first_seq_tells_a_resumer_what_was_dropped() {
    let app = spawn_app_with(|config| config.history.max_messages = 3).await;
    let key = lobby(&app).await;
    for n in 1..=10 {
        app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": n })).await;
    }
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut ws = app.api().connect_ws(code(&reader), Some(0)).await;
    let welcome = ws.next_json().await;
    assert_eq!((welcome["last_seq"].as_u64(), welcome["first_seq"].as_u64()), (Some(10), Some(8)));
    for seq in 8..=10 {
        assert_eq!(ws.next_message().await["seq"], seq);
    }
}

#[tokio::test]
async fn a_page_tells_a_gone_code_from_a_working_one_with_a_plain_get() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let http = reqwest::Client::new();
    for (path, status, error) in [
        (format!("/ws/endpoint/{}/", code(&reader)), 400, "invalid"),
        ("/ws/endpoint/no-such-code/".to_owned(), 404, "not_found"),
    ] {
        let url = format!("http://{}{path}", app.api().addr);
        let answer = http.get(url).header("origin", "https://elsewhere.example").send().await.unwrap();
        assert_eq!(answer.status(), status, "{path}");
        let allowed = answer.headers().get("access-control-allow-origin").map(|value| value.to_str().unwrap());
        assert_eq!(allowed, Some("*"), "a page of another origin may read it: {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], error, "{path}");
    }
}

#[tokio::test]
async fn bad_after_seq_is_refused() {
    let app = spawn_app().await;
    let key = lobby(&app).await;
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let url = format!("ws://{}/ws/endpoint/{}/?after_seq=minus", app.api().addr, code(&reader));
    let refused = tokio_tungstenite::connect_async(url).await;
    assert!(matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 400));
}

#[tokio::test]
async fn slow_consumers_are_closed_with_1013_and_can_resume() {
    let app = spawn_app_with(|config| {
        config.limits.connection_queue = 4;
        config.history.max_messages = 5000;
    })
    .await;
    let key = lobby(&app).await;
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut slow = app.api().connect_ws(code(&reader), None).await;
    slow.next_json().await;

    // The slow socket reads nothing while ~40 MB are published: its TCP
    // buffers and then its queue fill up.
    let total = 1200u64;
    let publishers: Vec<_> = (0..8)
        .map(|_| {
            let client = app.api().client.clone();
            let url = format!("{}/api/v1/rooms/lobby/messages", app.api().base);
            let key = key.clone();
            tokio::spawn(async move {
                let body = json!({ "message": "x".repeat(32 * 1024) });
                for _ in 0..total / 8 {
                    let response = client.post(&url).header("X-API-Key", &key).json(&body).send().await.unwrap();
                    assert_eq!(response.status(), 201);
                }
            })
        })
        .collect();
    for publisher in publishers {
        tokio::time::timeout(WAIT * 6, publisher).await.expect("published in time").unwrap();
    }

    let mut last_seq = 0;
    let closed = loop {
        let frame = tokio::time::timeout(WAIT, slow.stream.next()).await.expect("frames in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                let seq = message["seq"].as_u64().unwrap();
                assert_eq!(seq, last_seq + 1, "no gaps before the close");
                last_seq = seq;
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("unexpected end: {other:?}"),
        }
    };
    assert_eq!(closed, Some(1013));
    assert!(last_seq < total, "closed before the end");

    let mut resumed = app.api().connect_ws(code(&reader), Some(last_seq)).await;
    resumed.next_json().await;
    for seq in last_seq + 1..=total {
        assert_eq!(resumed.next_message().await["seq"], seq);
    }
}

#[tokio::test]
async fn idle_connections_are_pinged_and_dropped_when_silent() {
    let app = spawn_app_with(|config| {
        config.websocket.ping_interval = Duration::from_secs(1);
        config.websocket.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let key = lobby(&app).await;
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;

    // A client that reads answers pings (tungstenite replies on its own)
    // and stays connected.
    let mut alive = app.api().connect_ws(code(&reader), None).await;
    alive.next_json().await;
    let mut pinged = false;
    let until = Instant::now() + Duration::from_millis(4500);
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(200), alive.stream.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pinged = true,
            Ok(Some(Ok(Message::Close(frame)))) => panic!("an answering client was closed: {frame:?}"),
            _ => {}
        }
    }
    assert!(pinged, "the server pings idle connections");

    // A client that never reads never answers, and is dropped.
    let mut silent = app.api().connect_ws(code(&reader), None).await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let closed = silent.closed().await;
    assert!((4000..5000).contains(&closed.code), "{closed:?}");
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let mut app = spawn_app().await;
    let key = lobby(&app).await;
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut ws = app.api().connect_ws(code(&reader), None).await;
    ws.next_json().await;
    let (closed, ()) = tokio::join!(ws.closed(), app.stop());
    assert_eq!(closed.code, 1001);
}
