//! `docs/protocol.md#rest-api`: messages (history and server-side publish).

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app, spawn_app_with};

#[tokio::test]
async fn server_side_publish_is_stamped_as_the_app() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let response = app
        .api()
        .post("/api/v1/rooms/lobby/messages", &key, json!({ "message": { "x": 1 }, "meta": { "bot": true } }))
        .await;
    assert_eq!(response.status(), 201);
    let message = body(response).await;
    assert_eq!(message["seq"], 1);
    assert_eq!(message["room"], "lobby");
    assert_eq!(message["sender"], json!({ "id": "app", "meta": { "bot": true } }));
    assert_eq!(message["message"], json!({ "x": 1 }));
    assert!(message["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(message["timestamp"].as_str().unwrap().ends_with('Z'));

    let second = body(app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "hi" })).await).await;
    assert_eq!(second["seq"], 2);
    assert_eq!(second["sender"]["meta"], json!({}));
}

#[tokio::test]
async fn history_pages_with_after_seq_and_limit() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    for n in 1..=5 {
        app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": n })).await;
    }
    let seqs = |value: serde_json::Value| -> Vec<u64> {
        value["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect()
    };
    assert_eq!(seqs(body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(body(app.api().get("/api/v1/rooms/lobby/messages?after_seq=2", &key).await).await), [3, 4, 5]);
    assert_eq!(seqs(body(app.api().get("/api/v1/rooms/lobby/messages?after_seq=1&limit=2", &key).await).await), [2, 3]);
    assert_eq!(
        seqs(body(app.api().get("/api/v1/rooms/lobby/messages?after_seq=5", &key).await).await),
        Vec::<u64>::new()
    );
    let messages = body(app.api().get("/api/v1/rooms/lobby/messages?limit=1", &key).await).await;
    assert_eq!(messages["messages"][0]["message"], 1);
}

#[tokio::test]
async fn bad_history_queries_are_invalid() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    for query in ["after_seq=abc", "after_seq=-1", "limit=0", "limit=x"] {
        let response = app.api().get(&format!("/api/v1/rooms/lobby/messages?{query}"), &key).await;
        assert_error(response, 400, "invalid").await;
    }
    assert_error(app.api().get("/api/v1/rooms/nowhere/messages", &key).await, 404, "not_found").await;
}

#[tokio::test]
async fn bad_publishes_are_refused() {
    let app = spawn_app_with(|config| config.limits.max_message_bytes = 100).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let path = "/api/v1/rooms/lobby/messages";
    assert_error(app.api().post(path, &key, json!({ "text": "no message key" })).await, 400, "invalid").await;
    assert_error(app.api().post(path, &key, json!({ "message": "x", "meta": "not an object" })).await, 400, "invalid")
        .await;
    let raw = app.api().request(Method::POST, path, Some(&key)).body("{\"message\": ").send().await.unwrap();
    assert_error(raw, 400, "invalid").await;
    assert_error(app.api().post(path, &key, json!({ "message": "x".repeat(200) })).await, 413, "too_large").await;
    assert_error(
        app.api().post("/api/v1/rooms/nowhere/messages", &key, json!({ "message": 1 })).await,
        404,
        "not_found",
    )
    .await;
    let history = body(app.api().get(path, &key).await).await;
    assert_eq!(history["messages"], json!([]), "nothing was published");
}

#[tokio::test]
async fn history_keeps_only_the_configured_count() {
    let app = spawn_app_with(|config| config.history.max_messages = 3).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    for n in 1..=5 {
        app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": n })).await;
    }
    let history = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    let seqs: Vec<_> = history["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [3, 4, 5]);
}

#[tokio::test]
async fn history_keeps_only_the_configured_age() {
    let app = spawn_app_with(|config| config.history.max_age = Duration::from_secs(1)).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "old" })).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = body(app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "new" })).await).await;
    assert_eq!(fresh["seq"], 2, "seq goes on after history ages out");
    let history = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["message"], "new");
}
