//! `docs/protocol.md#authentication`: API keys and isolation between apps.

use comms_core::store::AppStatus;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app, spawn_app_with};

/// Every route that needs a key, with a body where it takes one.
const KEYED_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/rooms"),
    ("POST", "/api/v1/rooms"),
    ("GET", "/api/v1/rooms/lobby"),
    ("DELETE", "/api/v1/rooms/lobby"),
    ("GET", "/api/v1/rooms/lobby/endpoints"),
    ("POST", "/api/v1/rooms/lobby/endpoints"),
    ("DELETE", "/api/v1/rooms/lobby/endpoints/code"),
    ("GET", "/api/v1/rooms/lobby/messages"),
    ("POST", "/api/v1/rooms/lobby/messages"),
];

#[tokio::test]
async fn requests_without_a_valid_key_are_forbidden() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    for (method, path) in KEYED_ROUTES {
        let method: Method = method.parse().unwrap();
        let missing = app.api().request(method.clone(), path, None).json(&json!({ "name": "x" })).send().await.unwrap();
        assert_error(missing, 403, "forbidden").await;
        let wrong = app.api().request(method.clone(), path, Some("ck_wrong")).send().await.unwrap();
        assert_error(wrong, 403, "forbidden").await;
        let bad_bearer =
            app.api().request(method, path, None).header("Authorization", "Bearer nope").send().await.unwrap();
        assert_error(bad_bearer, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn the_forbidden_check_comes_before_validation() {
    let app = spawn_app().await;
    let response = app.api().request(Method::POST, "/api/v1/rooms", None).body("not json").send().await.unwrap();
    assert_error(response, 403, "forbidden").await;
    let response = app.api().request(Method::GET, "/api/v1/rooms/bad%20name", None).send().await.unwrap();
    assert_error(response, 403, "forbidden").await;
}

#[tokio::test]
async fn bearer_authorization_works_like_x_api_key() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let response = app
        .api()
        .request(Method::POST, "/api/v1/rooms", None)
        .header("Authorization", format!("Bearer {key}"))
        .json(&json!({ "name": "lobby" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn rotated_keys_stop_working_at_once() {
    let app = spawn_app().await;
    let old = app.create_app("acme").await;
    assert_eq!(app.api().get("/api/v1/rooms", &old).await.status(), 200);
    let new = app.rotate_key("acme").await;
    assert_error(app.api().get("/api/v1/rooms", &old).await, 403, "forbidden").await;
    assert_eq!(app.api().get("/api/v1/rooms", &new).await.status(), 200);
}

#[tokio::test]
async fn suspended_apps_are_forbidden_at_once() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 200);

    app.apps().set_status("acme", AppStatus::Suspended, "test").await.unwrap();
    assert_error(app.api().get("/api/v1/rooms", &key).await, 403, "forbidden").await;
    assert_eq!(app.api().ws_refusal(endpoint["code"].as_str().unwrap()).await, 404);

    app.apps().set_status("acme", AppStatus::Approved, "test").await.unwrap();
    assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 200);
}

#[tokio::test]
async fn pending_apps_are_forbidden() {
    let app = spawn_app().await;
    let issued = app.apps().create("waiting", AppStatus::Pending).await.unwrap();
    assert_error(app.api().get("/api/v1/rooms", &issued.api_key).await, 403, "forbidden").await;
}

#[tokio::test]
async fn apps_never_see_each_others_rooms() {
    let app = spawn_app().await;
    let a = app.create_app("a").await;
    let b = app.create_app("b").await;
    app.api().create_room(&a, "lobby").await;
    let endpoint = app.api().create_endpoint(&a, "lobby", "read", None).await;
    let code = endpoint["code"].as_str().unwrap();
    app.api().post("/api/v1/rooms/lobby/messages", &a, json!({ "message": "secret" })).await;

    assert_eq!(body(app.api().get("/api/v1/rooms", &b).await).await["rooms"], json!([]));
    assert_error(app.api().get("/api/v1/rooms/lobby", &b).await, 404, "not_found").await;
    assert_error(app.api().get("/api/v1/rooms/lobby/endpoints", &b).await, 404, "not_found").await;
    assert_error(app.api().get("/api/v1/rooms/lobby/messages", &b).await, 404, "not_found").await;
    assert_error(app.api().post("/api/v1/rooms/lobby/messages", &b, json!({ "message": 1 })).await, 404, "not_found")
        .await;
    assert_error(app.api().delete(&format!("/api/v1/rooms/lobby/endpoints/{code}"), &b).await, 404, "not_found").await;
    assert_error(app.api().delete("/api/v1/rooms/lobby", &b).await, 404, "not_found").await;

    // Both may have a room of the same name; they stay apart.
    app.api().create_room(&b, "lobby").await;
    assert_eq!(body(app.api().get("/api/v1/rooms/lobby/messages", &b).await).await["messages"], json!([]));
    assert_error(app.api().delete(&format!("/api/v1/rooms/lobby/endpoints/{code}"), &b).await, 404, "not_found").await;
    let a_history = body(app.api().get("/api/v1/rooms/lobby/messages", &a).await).await;
    assert_eq!(a_history["messages"][0]["message"], "secret");
    assert_eq!(body(app.api().get("/api/v1/rooms/lobby", &a).await).await["endpoint_count"], 1);
}

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after() {
    let app = spawn_app_with(|config| {
        config.limits.api_requests_per_second = 1;
        config.limits.api_burst = 3;
    })
    .await;
    let key = app.create_app("acme").await;
    let other = app.create_app("other").await;
    for _ in 0..3 {
        assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 200);
    }
    let response = app.api().get("/api/v1/rooms", &key).await;
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after));
    assert_error(response, 429, "rate_limited").await;
    assert_eq!(app.api().get("/api/v1/rooms", &other).await.status(), 200, "limits are per app");
}
