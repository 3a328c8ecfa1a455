//! `docs/protocol.md#acknowledged-sends`: a message frame with a `nonce`
//! is acknowledged with its id and seq; the same nonce again from the same
//! endpoint (any of its connections, within the window) publishes nothing
//! new and gets the first ack, and spends no budget (nor is refused when
//! the budget is spent by then); refusals name the nonce, a frame over the
//! size limit's too; frames without one get no ack. The REST publish's
//! `Idempotency-Key` does the same for an app's backend.

use serde_json::{json, Value};

use crate::capabilities::endpoint_with;
use crate::helpers::{assert_error, body, spawn_app, TestApp, WsClient};

/// Sends `payload` with `nonce`.
async fn send_with_nonce(ws: &mut WsClient, payload: Value, nonce: &str) {
    ws.send_text(&json!({ "message": payload, "nonce": nonce }).to_string()).await;
}

/// The next `ack` and `message` frames of the sender, in whichever order
/// they come.
async fn ack_and_copy(ws: &mut WsClient) -> (Value, Value) {
    let (first, second) = (ws.next_json().await, ws.next_json().await);
    if first["type"] == "ack" {
        (first, second)
    } else {
        (second, first)
    }
}

/// An app with a room `lobby`, a writer and a reader connected to it.
async fn lobby() -> (TestApp, String, Value, WsClient, WsClient) {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let writer = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut sender = app.api().connect_ws(writer["code"].as_str().unwrap(), None).await;
    let mut listener = app.api().connect_ws(reader["code"].as_str().unwrap(), None).await;
    sender.next_json().await;
    listener.next_json().await;
    (app, key, writer, sender, listener)
}

#[tokio::test]
async fn a_message_with_a_nonce_is_acknowledged_with_its_id_and_seq() {
    let (_app, _key, _writer, mut sender, mut listener) = lobby().await;
    send_with_nonce(&mut sender, json!("hi"), "k3j9").await;
    let (ack, copy) = ack_and_copy(&mut sender).await;
    assert_eq!(copy["type"], "message", "{copy}");
    assert_eq!(ack, json!({ "type": "ack", "nonce": "k3j9", "id": copy["id"], "seq": copy["seq"] }));
    assert_eq!(listener.next_message().await["id"], copy["id"]);

    // Without a nonce, as before: the copy and no ack.
    sender.send_message(json!("plain")).await;
    assert_eq!(sender.next_message().await["message"], "plain");
    send_with_nonce(&mut sender, json!("next"), "n2").await;
    let (ack, copy) = ack_and_copy(&mut sender).await;
    assert_eq!((ack["nonce"].as_str(), copy["message"].as_str()), (Some("n2"), Some("next")), "no ack came between");
}

#[tokio::test]
async fn a_repeated_nonce_publishes_nothing_new_on_any_connection_of_the_endpoint() {
    let (app, key, writer, mut sender, mut listener) = lobby().await;
    send_with_nonce(&mut sender, json!("once"), "same").await;
    let (first_ack, _) = ack_and_copy(&mut sender).await;
    listener.next_message().await;

    // A resend after a reconnect: another connection of the same endpoint.
    let mut again = app.api().connect_ws(writer["code"].as_str().unwrap(), None).await;
    again.next_json().await;
    send_with_nonce(&mut again, json!("once"), "same").await;
    assert_eq!(again.next_json().await, first_ack, "the first publish's ack");
    send_with_nonce(&mut sender, json!("once"), "same").await;
    assert_eq!(sender.next_json().await, first_ack);

    // Another endpoint's nonces are its own.
    let other = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut third = app.api().connect_ws(other["code"].as_str().unwrap(), None).await;
    third.next_json().await;
    send_with_nonce(&mut third, json!("twice"), "same").await;
    let (other_ack, _) = ack_and_copy(&mut third).await;
    assert_eq!(other_ack["seq"], first_ack["seq"].as_u64().unwrap() + 1);
    let published = listener.next_message().await;
    assert_eq!(published["message"], "twice", "the repeats were never published: {published}");
}

#[tokio::test]
async fn repeats_spend_no_budget_and_refusals_name_their_nonce() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let budgeted =
        endpoint_with(app.api(), &key, "lobby", json!({ "permission": "read_and_write", "max_messages": 2 })).await;
    let mut ws = app.api().connect_ws(budgeted["code"].as_str().unwrap(), None).await;
    ws.next_json().await;
    send_with_nonce(&mut ws, json!(1), "a").await;
    let (first, _) = ack_and_copy(&mut ws).await;
    send_with_nonce(&mut ws, json!(1), "a").await;
    assert_eq!(ws.next_json().await, first);
    send_with_nonce(&mut ws, json!(2), "b").await;
    let (second, _) = ack_and_copy(&mut ws).await;
    assert_eq!(second["nonce"], "b", "the repeat left the budget's second message");
    send_with_nonce(&mut ws, json!(3), "c").await;
    let refused = ws.next_json().await;
    assert_eq!(
        (refused["code"].as_str(), refused["nonce"].as_str()),
        (Some("budget_exhausted"), Some("c")),
        "{refused}"
    );
    send_with_nonce(&mut ws, json!(2), "b").await;
    assert_eq!(ws.next_json().await, second, "the message that spent the budget, resent, gets its ack");

    // The default limit is 64 KiB.
    send_with_nonce(&mut ws, json!("x".repeat(70_000)), "big").await;
    let refused = ws.next_json().await;
    assert_eq!((refused["code"].as_str(), refused["nonce"].as_str()), (Some("too_large"), Some("big")), "{refused}");

    let reader = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let mut reader = app.api().connect_ws(reader["code"].as_str().unwrap(), None).await;
    reader.next_json().await;
    send_with_nonce(&mut reader, json!("no"), "r1").await;
    let refused = reader.next_json().await;
    assert_eq!((refused["code"].as_str(), refused["nonce"].as_str()), (Some("read_only"), Some("r1")));
    send_with_nonce(&mut reader, json!("no"), &"x".repeat(65)).await;
    let refused = reader.next_json().await;
    assert_eq!(refused["code"], "invalid", "a nonce over 64 characters: {refused}");
    assert!(refused.get("nonce").is_none(), "an unreadable nonce is not echoed");
}

/// `POST /api/v1/rooms/{room}/messages` with an `Idempotency-Key`.
async fn publish_keyed(
    app: &TestApp,
    key: &str,
    room: &str,
    idempotency_key: &str,
    payload: Value,
) -> reqwest::Response {
    let path = format!("/api/v1/rooms/{room}/messages");
    let request = app.api().request(reqwest::Method::POST, &path, Some(key)).header("idempotency-key", idempotency_key);
    request.json(&json!({ "message": payload })).send().await.expect("POST")
}

#[tokio::test]
async fn a_rest_publish_retried_with_its_idempotency_key_publishes_once() {
    let (app, key, _writer, _sender, mut listener) = lobby().await;
    let first = publish_keyed(&app, &key, "lobby", "order-17", json!("paid")).await;
    assert_eq!(first.status(), 201);
    let first = body(first).await;
    let retried = publish_keyed(&app, &key, "lobby", "order-17", json!("paid")).await;
    assert_eq!(retried.status(), 201, "a retry answers as the first did");
    assert_eq!(body(retried).await, first, "with the first message");
    assert_eq!(listener.next_message().await["id"], first["id"]);
    let other = body(publish_keyed(&app, &key, "lobby", "order-18", json!("next")).await).await;
    assert_eq!(other["seq"], first["seq"].as_u64().unwrap() + 1);
    assert_eq!(listener.next_message().await["message"], "next", "the retry was never published");
    for bad in ["", &"k".repeat(65)] {
        let refused = publish_keyed(&app, &key, "lobby", bad, json!("x")).await;
        assert_error(refused, 400, "invalid").await;
    }
}
