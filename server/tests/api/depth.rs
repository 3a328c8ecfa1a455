//! `docs/protocol.md#errors`: meta and payloads nested deeper than
//! `limits.max_json_depth` (32) are refused on every path, and nothing is
//! stored, so no request can make a later read of the room fail.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, body, lobby_writer, spawn_app};

/// `levels` objects nested in each other around `1`.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
}

#[tokio::test]
async fn rest_refuses_meta_and_messages_nested_deeper_than_32_levels() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoints = "/api/v1/rooms/lobby/endpoints";
    let deep_meta = json!({ "permission": "read", "meta": nested(33) });
    assert_error(app.api().post(endpoints, &key, deep_meta).await, 400, "invalid").await;
    let fine = app.api().post(endpoints, &key, json!({ "permission": "read", "meta": nested(32) })).await;
    assert_eq!(fine.status(), 201);

    let messages = "/api/v1/rooms/lobby/messages";
    assert_error(app.api().post(messages, &key, json!({ "message": nested(33) })).await, 400, "invalid").await;
    let deep_sender_meta = json!({ "message": 1, "meta": nested(33) });
    assert_error(app.api().post(messages, &key, deep_sender_meta).await, 400, "invalid").await;
    let arrays = (0..33).fold(json!(1), |inner, _| json!([inner]));
    assert_error(app.api().post(messages, &key, json!({ "message": arrays })).await, 400, "invalid").await;

    let stored = body(app.api().get(&format!("{messages}?after_seq=0"), &key).await).await;
    assert_eq!(stored["messages"], json!([]), "nothing was published");
    let listed = body(app.api().get(endpoints, &key).await).await;
    assert_eq!(listed["endpoints"].as_array().map(Vec::len), Some(1), "only the endpoint within the limit");
}

#[tokio::test]
async fn legacy_refuses_deep_query_meta_and_the_room_stays_readable() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let deep = format!("{}1{}", "%7B%22a%22%3A".repeat(1500), "%7D".repeat(1500));
    let path = format!("/main/add_endpoint/lobby/read/?meta={deep}");
    let response = app.api().request(Method::GET, &path, Some(&key)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "invalid", "{refused}");

    let response = app.api().request(Method::GET, "/main/list_endpoints/lobby/", Some(&key)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await.unwrap();
    assert_eq!(listed["endpoints"], json!([]));
}

#[tokio::test]
async fn a_deep_websocket_message_gets_an_invalid_frame_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let mut ws = lobby_writer(&app).await;

    ws.send_message(nested(33)).await;
    let error = ws.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "invalid", "{error}");

    ws.send_message(nested(32)).await;
    let published = ws.next_message().await;
    assert_eq!(published["seq"], 1, "the refused message took no seq");
}
