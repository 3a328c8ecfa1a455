//! `docs/protocol.md#rest-api`: endpoints.

use serde_json::{json, Value};

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

#[tokio::test]
async fn an_endpoint_with_max_connections_closes_the_one_past_it_with_4029() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "lobby").await;
    let capped = json!({ "permission": "read", "max_connections": 2 });
    let response = api.post("/api/v1/rooms/lobby/endpoints", &key, capped).await;
    assert_eq!(response.status(), 201);
    let endpoint: Value = response.json().await.unwrap();
    assert_eq!((endpoint["max_connections"].as_u64(), endpoint["single_use"].as_bool()), (Some(2), Some(false)));
    let code = endpoint["code"].as_str().unwrap();
    let mut first = api.connect_ws(code, None).await;
    let mut second = api.connect_ws(code, None).await;
    for ws in [&mut first, &mut second] {
        assert_eq!(ws.next_json().await["type"], "welcome");
    }
    let mut third = api.connect_ws(code, None).await;
    let closed = third.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (4029, "max_connections reached"));
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut again = api.connect_ws(code, None).await;
    assert_eq!(again.next_json().await["type"], "welcome", "a freed slot can be taken");

    let listed = body(api.get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert_eq!(listed["endpoints"][0]["max_connections"], 2);
    let zero = api.post("/api/v1/rooms/lobby/endpoints", &key, json!({ "permission": "read", "max_connections": 0 }));
    assert_error(zero.await, 400, "invalid").await;
    let negative =
        api.post("/api/v1/rooms/lobby/endpoints", &key, json!({ "permission": "read", "max_connections": -1 }));
    assert_error(negative.await, 400, "invalid").await;
    let plain = api.create_endpoint(&key, "lobby", "read", None).await;
    assert_eq!((plain["max_connections"].clone(), plain["single_use"].clone()), (Value::Null, json!(false)));
}

#[tokio::test]
async fn a_single_use_code_works_for_one_connection_only() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "lobby").await;
    let once = json!({ "permission": "read_and_write", "single_use": true });
    let endpoint: Value = api.post("/api/v1/rooms/lobby/endpoints", &key, once).await.json().await.unwrap();
    assert_eq!(endpoint["single_use"], true);
    let code = endpoint["code"].as_str().unwrap();
    let mut first = api.connect_ws(code, None).await;
    assert_eq!(first.next_json().await["type"], "welcome");
    assert_eq!(api.ws_refusal(code).await, 404, "while the first is open");
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(api.ws_refusal(code).await, 404, "and after it closed");
}

#[tokio::test]
async fn racing_handshakes_with_a_single_use_code_let_one_through() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "lobby").await;
    let once = json!({ "permission": "read", "single_use": true });
    let endpoint: Value = api.post("/api/v1/rooms/lobby/endpoints", &key, once).await.json().await.unwrap();
    let code = endpoint["code"].as_str().unwrap();
    let attempts = futures_util::future::join_all((0..8).map(|_| api.connect_ws_from(code, None))).await;
    let through = attempts.iter().filter(|attempt| attempt.is_ok()).count();
    let refused: Vec<u16> = attempts.iter().filter_map(|attempt| attempt.as_ref().err().copied()).collect();
    assert_eq!(through, 1, "exactly one connection: {refused:?}");
    assert!(refused.iter().all(|status| *status == 404), "{refused:?}");
}
