//! `docs/protocol.md#rest-api`: rooms.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app};

#[tokio::test]
async fn create_room_answers_201_with_the_room() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let response = app.api().post("/api/v1/rooms", &key, json!({ "name": "lobby" })).await;
    assert_eq!(response.status(), 201);
    let room = body(response).await;
    assert_eq!(room["name"], "lobby");
    assert_eq!(room["endpoint_count"], 0);
    assert_eq!(room["online"], 0);
    let created = room["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "RFC 3339 with ms: {created}");
}

#[tokio::test]
async fn duplicate_room_is_a_conflict() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    assert_error(app.api().post("/api/v1/rooms", &key, json!({ "name": "lobby" })).await, 409, "conflict").await;
}

#[tokio::test]
async fn bad_room_names_are_invalid() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    for name in ["", "has space", "slash/", "ünicode", &"x".repeat(65), "semi;colon"] {
        assert_error(app.api().post("/api/v1/rooms", &key, json!({ "name": name })).await, 400, "invalid").await;
    }
    let longest = "x".repeat(64);
    app.api().create_room(&key, &longest).await;
    app.api().create_room(&key, "A-Z_a.z-09").await;
}

#[tokio::test]
async fn malformed_bodies_are_invalid() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    for raw in ["", "{", "not json", "[\"lobby\"]", "{\"nom\": \"lobby\"}", "{\"name\": 5}"] {
        let response = app.api().request(Method::POST, "/api/v1/rooms", Some(&key)).body(raw).send().await.unwrap();
        assert_error(response, 400, "invalid").await;
    }
}

#[tokio::test]
async fn oversized_body_is_too_large() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(app.config.limits.max_body_bytes + 1));
    let response = app.api().request(Method::POST, "/api/v1/rooms", Some(&key)).body(huge).send().await.unwrap();
    assert_error(response, 413, "too_large").await;
}

#[tokio::test]
async fn list_get_and_delete_rooms() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "one").await;
    app.api().create_room(&key, "two").await;
    app.api().create_endpoint(&key, "two", "read", None).await;

    let list = body(app.api().get("/api/v1/rooms", &key).await).await;
    let names: Vec<_> = list["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["one", "two"]);

    let response = app.api().get("/api/v1/rooms/two", &key).await;
    assert_eq!(response.status(), 200);
    let room = body(response).await;
    assert_eq!(room["name"], "two");
    assert_eq!(room["endpoint_count"], 1);

    assert_error(app.api().get("/api/v1/rooms/three", &key).await, 404, "not_found").await;
    assert_error(app.api().get("/api/v1/rooms/bad%20name", &key).await, 400, "invalid").await;

    let response = app.api().delete("/api/v1/rooms/one", &key).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_error(app.api().delete("/api/v1/rooms/one", &key).await, 404, "not_found").await;
    assert_error(app.api().get("/api/v1/rooms/one", &key).await, 404, "not_found").await;
    let list = body(app.api().get("/api/v1/rooms", &key).await).await;
    assert_eq!(list["rooms"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_deleted_room_can_be_made_again_empty() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "old" })).await;
    assert_eq!(app.api().delete("/api/v1/rooms/lobby", &key).await.status(), 204);
    app.api().create_room(&key, "lobby").await;
    let messages = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(messages["messages"], json!([]));
    let published = body(app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "new" })).await).await;
    assert_eq!(published["seq"], 1);
}
