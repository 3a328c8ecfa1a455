//! `docs/protocol.md#failed-credentials`: a client address presenting too
//! many keys or codes that do not work gets `429` with `Retry-After`, on
//! the REST API and the WebSocket upgrade, and other addresses do not.
//! Addresses are told apart through a trusted proxy's `X-Forwarded-For`.

use comms_core::forwarded::TrustedProxies;
use reqwest::{Method, Response};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{spawn_app_with, TestApp};

async fn spawn_with_limit(per_minute: u32) -> TestApp {
    spawn_app_with(|config| {
        config.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        config.limits.failed_auth_per_minute = per_minute;
    })
    .await
}

async fn list_rooms_from(app: &TestApp, client: &str, key: &str) -> Response {
    app.api().request(Method::GET, "/api/v1/rooms", Some(key)).header("x-forwarded-for", client).send().await.unwrap()
}

async fn upgrade_from(app: &TestApp, client: &str, code: &str) -> u16 {
    let mut request = format!("ws://{}/ws/endpoint/{code}/", app.api().addr).into_client_request().unwrap();
    request.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(err) => panic!("the handshake failed without an answer: {err}"),
    }
}

#[tokio::test]
async fn unknown_keys_past_the_limit_get_429_for_that_address_only() {
    let app = spawn_with_limit(5).await;
    let key = app.create_app("acme").await;
    for _ in 0..5 {
        assert_eq!(list_rooms_from(&app, "203.0.113.1", "ck_guess").await.status(), 403);
    }
    let refused = list_rooms_from(&app, "203.0.113.1", "ck_guess").await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(list_rooms_from(&app, "203.0.113.1", &key).await.status(), 429, "blocked whatever it presents");

    assert_eq!(list_rooms_from(&app, "198.51.100.2", &key).await.status(), 200, "another address is not slowed");
    assert_eq!(list_rooms_from(&app, "198.51.100.2", "ck_guess").await.status(), 403);
}

#[tokio::test]
async fn unknown_codes_past_the_limit_get_429_on_the_upgrade() {
    let app = spawn_with_limit(3).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let code = endpoint["code"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(upgrade_from(&app, "203.0.113.9", "no-such-code").await, 404);
    }
    assert_eq!(upgrade_from(&app, "203.0.113.9", "no-such-code").await, 429);
    assert_eq!(upgrade_from(&app, "203.0.113.9", code).await, 429, "blocked whatever it presents");
    assert_eq!(upgrade_from(&app, "198.51.100.3", code).await, 101, "another address joins");
}

#[tokio::test]
async fn zero_turns_the_limit_off() {
    let app = spawn_with_limit(0).await;
    for _ in 0..100 {
        assert_eq!(list_rooms_from(&app, "203.0.113.1", "ck_guess").await.status(), 403);
    }
}
