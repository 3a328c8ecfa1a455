//! `docs/protocol.md#rest-api`: endpoints.

use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app};

#[tokio::test]
async fn create_endpoint_answers_201_with_the_endpoint() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let response = app
        .api()
        .post(
            "/api/v1/rooms/lobby/endpoints",
            &key,
            json!({ "permission": "read_and_write", "meta": { "name": "Ann" } }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let endpoint = body(response).await;
    let code = endpoint["code"].as_str().unwrap();
    let id = endpoint["id"].as_str().unwrap();
    assert!(code.len() >= 22, "at least 128 bits: {code}");
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "URL-safe: {code}");
    assert_ne!(id, code);
    assert_eq!(endpoint["room"], "lobby");
    assert_eq!(endpoint["permission"], "read_and_write");
    assert_eq!(endpoint["meta"], json!({ "name": "Ann" }));
    assert!(endpoint["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(endpoint["ws_url"], format!("ws://{}/ws/endpoint/{code}/", app.api().addr));
}

#[tokio::test]
async fn meta_is_optional_and_defaults_to_an_empty_object() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    assert_eq!(endpoint["permission"], "read");
    assert_eq!(endpoint["meta"], json!({}));
}

#[tokio::test]
async fn ws_url_uses_the_configured_public_url() {
    let app =
        crate::helpers::spawn_app_with(|config| config.server.public_url = "https://chat.example.com/".into()).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let code = endpoint["code"].as_str().unwrap();
    assert_eq!(endpoint["ws_url"], format!("wss://chat.example.com/ws/endpoint/{code}/"));
}

#[tokio::test]
async fn bad_permission_or_meta_is_invalid() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let path = "/api/v1/rooms/lobby/endpoints";
    for body in [
        json!({ "permission": "write" }),
        json!({ "permission": "READ" }),
        json!({}),
        json!({ "permission": "read", "meta": "Ann" }),
        json!({ "permission": "read", "meta": [1, 2] }),
        json!({ "permission": "read", "meta": 5 }),
        json!({ "permission": "read", "meta": { "blob": "x".repeat(4097) } }),
    ] {
        assert_error(app.api().post(path, &key, body).await, 400, "invalid").await;
    }
    let endpoints = crate::helpers::body(app.api().get(path, &key).await).await;
    assert_eq!(endpoints["endpoints"], json!([]), "nothing was created");
}

#[tokio::test]
async fn endpoints_of_a_missing_room_are_not_found() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let path = "/api/v1/rooms/nowhere/endpoints";
    assert_error(app.api().post(path, &key, json!({ "permission": "read" })).await, 404, "not_found").await;
    assert_error(app.api().get(path, &key).await, 404, "not_found").await;
    assert_error(app.api().delete(&format!("{path}/somecode"), &key).await, 404, "not_found").await;
}

#[tokio::test]
async fn list_and_delete_endpoints() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let first = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let second = app.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "n": 2 }))).await;

    let list = body(app.api().get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert_eq!(list["endpoints"], json!([first.clone(), second.clone()]));

    let path = format!("/api/v1/rooms/lobby/endpoints/{}", first["code"].as_str().unwrap());
    let response = app.api().delete(&path, &key).await;
    assert_eq!(response.status(), 204);
    assert_error(app.api().delete(&path, &key).await, 404, "not_found").await;
    let list = body(app.api().get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert_eq!(list["endpoints"], json!([second]));
    let room = body(app.api().get("/api/v1/rooms/lobby", &key).await).await;
    assert_eq!(room["endpoint_count"], 1);
}

#[tokio::test]
async fn an_endpoint_is_deleted_only_through_its_own_room() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "a").await;
    app.api().create_room(&key, "b").await;
    let endpoint = app.api().create_endpoint(&key, "a", "read", None).await;
    let code = endpoint["code"].as_str().unwrap();
    assert_error(app.api().delete(&format!("/api/v1/rooms/b/endpoints/{code}"), &key).await, 404, "not_found").await;
    assert_eq!(app.api().delete(&format!("/api/v1/rooms/a/endpoints/{code}"), &key).await.status(), 204);
}
