//! `docs/protocol.md#endpoint-lifecycle`: endpoints changed while in use,
//! expiring, with budgets, minting children, and moderation.

use std::time::Duration;

use comms_core::time::{format_ms, now_ms};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{assert_error, body, public_id, spawn_app, Remote, TestApp, WsClient};

/// An RFC 3339 time `ms` milliseconds from now.
pub fn in_ms(ms: i64) -> String {
    format_ms(now_ms() + ms)
}

/// Sends `PATCH /api/v1/rooms/{room}/endpoints/{code}`.
pub async fn patch_endpoint(api: &Remote, key: &str, room: &str, code: &str, change: Value) -> Response {
    let path = format!("/api/v1/rooms/{room}/endpoints/{code}");
    api.request(Method::PATCH, &path, Some(key)).json(&change).send().await.expect("PATCH")
}

/// Creates an endpoint from a full body, asserting 201.
pub async fn endpoint_with(api: &Remote, key: &str, room: &str, request: Value) -> Value {
    let response = api.post(&format!("/api/v1/rooms/{room}/endpoints"), key, request).await;
    assert_eq!(response.status(), 201, "create endpoint in {room}");
    body(response).await
}

/// Mints a child of the endpoint `code` with no API key.
async fn mint(api: &Remote, code: &str, request: Value) -> Response {
    let path = format!("/api/v1/endpoints/{code}/children");
    api.request(Method::POST, &path, None).json(&request).send().await.expect("POST children")
}

/// Reads each socket of senders that each sent one message through an
/// endpoint with a budget of `budget` messages, until it has seen all
/// `budget` published messages or its own `budget_exhausted` error; how
/// many sockets got the error.
pub async fn budget_refusals(sockets: &mut [WsClient], budget: usize) -> usize {
    let mut refused = 0;
    for ws in sockets {
        let mut messages = 0;
        while messages < budget {
            let frame = ws.next_json().await;
            match frame["type"].as_str() {
                Some("message") => messages += 1,
                Some("error") => {
                    assert_eq!(frame["code"], "budget_exhausted", "{frame}");
                    refused += 1;
                    break;
                }
                _ => panic!("unexpected {frame}"),
            }
        }
    }
    refused
}

fn code(endpoint: &Value) -> &str {
    endpoint["code"].as_str().expect("an endpoint code")
}

/// A socket past its welcome.
async fn joined(api: &Remote, endpoint: &Value) -> WsClient {
    let mut ws = api.connect_ws(code(endpoint), None).await;
    assert_eq!(ws.next_json().await["type"], "welcome");
    ws
}

/// An app with the room `lobby`.
async fn lobby() -> (TestApp, String) {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    (app, key)
}

/// The endpoint of `id` as the room's endpoint list shows it.
async fn listed(api: &Remote, key: &str, id: &str) -> Value {
    let list = body(api.get("/api/v1/rooms/lobby/endpoints", key).await).await;
    list["endpoints"].as_array().unwrap().iter().find(|e| e["id"] == id).cloned().expect("listed")
}

#[tokio::test]
async fn a_patch_reaches_open_connections_of_that_endpoint_only() {
    let (app, key) = lobby().await;
    let api = app.api();
    let ann = api.create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let bob = api.create_endpoint(&key, "lobby", "read_and_write", None).await;
    let (mut ann_ws, mut bob_ws) = (joined(api, &ann).await, joined(api, &bob).await);

    let response =
        patch_endpoint(api, &key, "lobby", code(&ann), json!({ "permission": "read", "meta": { "name": "Ann B" } }))
            .await;
    assert_eq!(response.status(), 200);
    let shown = body(response).await;
    assert_eq!((shown["permission"].as_str(), &shown["meta"]), (Some("read"), &json!({ "name": "Ann B" })));

    let frame = ann_ws.next_json().await;
    assert_eq!(frame["type"], "endpoint", "{frame}");
    let expected =
        json!({ "id": public_id(&ann), "permission": "read", "meta": { "name": "Ann B" }, "expires_at": null });
    assert_eq!(frame["endpoint"], expected);
    ann_ws.send_message(json!("still writing?")).await;
    let refusal = ann_ws.next_json().await;
    assert_eq!((refusal["type"].as_str(), refusal["code"].as_str()), (Some("error"), Some("read_only")));

    api.next_is_marker(&key, "lobby", &mut [&mut bob_ws], "only the marker").await;
}

#[tokio::test]
async fn new_meta_is_stamped_on_the_next_messages_and_shown_in_presence() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_presence_room(&key, "lobby").await;
    let ann = api.create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let mut ws = joined(api, &ann).await;

    let response = patch_endpoint(api, &key, "lobby", code(&ann), json!({ "meta": { "name": "Anna" } })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(ws.next_json().await["type"], "endpoint");
    ws.send_message(json!("hi")).await;
    let message = ws.next_message().await;
    assert_eq!(message["sender"]["meta"], json!({ "name": "Anna" }));
    let presence = body(api.get("/api/v1/rooms/lobby/presence", &key).await).await;
    assert_eq!(presence["members"][0]["meta"], json!({ "name": "Anna" }), "{presence}");
    assert_eq!(listed(api, &key, &public_id(&ann)).await["permission"], "read_and_write", "untouched fields stay");
}

#[tokio::test]
async fn patch_refuses_bad_values_and_unknown_endpoints() {
    let (app, key) = lobby().await;
    let api = app.api();
    let ann = api.create_endpoint(&key, "lobby", "read_and_write", None).await;
    for change in [
        json!({ "permission": "admin" }),
        json!({ "expires_at": "tomorrow" }),
        json!({ "max_connections": 0 }),
        json!({ "meta": [1] }),
        json!({ "max_messages": -1 }),
    ] {
        let response = patch_endpoint(api, &key, "lobby", code(&ann), change.clone()).await;
        assert_eq!(response.status(), 400, "{change}");
    }
    let missing = patch_endpoint(api, &key, "lobby", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", json!({})).await;
    assert_error(missing, 404, "not_found").await;
    let other_key = app.create_app("other").await;
    api.create_room(&other_key, "lobby").await;
    let foreign = patch_endpoint(api, &other_key, "lobby", code(&ann), json!({ "permission": "read" })).await;
    assert_error(foreign, 404, "not_found").await;
}

#[tokio::test]
async fn an_expired_code_closes_its_sockets_with_4004_and_is_refused() {
    let (app, key) = lobby().await;
    let api = app.api();
    let endpoint = endpoint_with(api, &key, "lobby", json!({ "permission": "read", "expires_at": in_ms(1_000) })).await;
    assert!(endpoint["expires_at"].as_str().is_some_and(|at| at.ends_with('Z')), "{endpoint}");
    let mut ws = joined(api, &endpoint).await;
    let closed = ws.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (4004, "endpoint expired"));
    assert_eq!(api.ws_refusal(code(&endpoint)).await, 404);

    let later = api.create_endpoint(&key, "lobby", "read", None).await;
    let mut ws = joined(api, &later).await;
    let now = patch_endpoint(api, &key, "lobby", code(&later), json!({ "expires_at": in_ms(0) })).await;
    assert_eq!(now.status(), 200);
    assert_eq!(ws.closed().await.code, 4004, "an expiry moved to now closes at once");
    let revived = patch_endpoint(api, &key, "lobby", code(&later), json!({ "expires_at": null })).await;
    assert_eq!(body(revived).await["expires_at"], Value::Null);
    joined(api, &later).await;
}

#[tokio::test]
async fn a_budget_publishes_exactly_max_messages_under_concurrent_senders() {
    let (app, key) = lobby().await;
    let api = app.api();
    let endpoint =
        endpoint_with(api, &key, "lobby", json!({ "permission": "read_and_write", "max_messages": 10 })).await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        sockets.push(joined(api, &endpoint).await);
    }
    for ws in &mut sockets {
        ws.send_message(json!("one")).await;
    }
    let refused = budget_refusals(&mut sockets, 10).await;
    assert_eq!(refused, 10, "every send past the budget is refused");
    let history = body(api.get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 10, "exactly the budget is published");
    let shown = listed(api, &key, &public_id(&endpoint)).await;
    assert_eq!((shown["messages_sent"].as_u64(), shown["max_messages"].as_u64()), (Some(10), Some(10)));
    assert_eq!(shown["online"], 20, "an exhausted budget leaves the sockets open");
}

#[tokio::test]
async fn an_endpoint_shows_its_sent_messages_and_live_connections() {
    let (app, key) = lobby().await;
    let api = app.api();
    let endpoint = api.create_endpoint(&key, "lobby", "read_and_write", None).await;
    let created = listed(api, &key, &public_id(&endpoint)).await;
    assert_eq!((created["messages_sent"].as_u64(), created["online"].as_u64()), (Some(0), Some(0)));
    let (mut first, _second) = (joined(api, &endpoint).await, joined(api, &endpoint).await);
    for text in ["a", "b", "c"] {
        first.send_message(json!(text)).await;
        first.next_message().await;
    }
    let shown = listed(api, &key, &public_id(&endpoint)).await;
    assert_eq!((shown["messages_sent"].as_u64(), shown["online"].as_u64()), (Some(3), Some(2)), "{shown}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let written = listed(api, &key, &public_id(&endpoint)).await;
    assert_eq!(written["messages_sent"], 3, "counted once, whether written to the store yet or not");
}

#[tokio::test]
async fn a_child_is_minted_with_the_code_alone_and_never_wider_than_its_parent() {
    let (app, key) = lobby().await;
    let api = app.api();
    let expires = in_ms(3_600_000);
    let parent_body =
        json!({ "permission": "read_and_write", "can_delegate": true, "expires_at": expires, "max_messages": 5 });
    let parent = endpoint_with(api, &key, "lobby", parent_body).await;

    let child = mint(api, code(&parent), json!({ "permission": "read", "meta": { "name": "Guest" } })).await;
    assert_eq!(child.status(), 201);
    let child = body(child).await;
    assert_eq!((child["room"].as_str(), child["parent"].as_str()), (Some("lobby"), Some(public_id(&parent).as_str())));
    assert_eq!(
        (child["expires_at"].as_str(), child["max_messages"].as_u64()),
        (parent["expires_at"].as_str(), Some(5))
    );
    assert_eq!(child["can_delegate"], false);

    for wider in [
        json!({ "permission": "moderate" }),
        json!({ "permission": "read", "expires_at": in_ms(7_200_000) }),
        json!({ "permission": "read", "max_messages": 6 }),
    ] {
        assert_error(mint(api, code(&parent), wider).await, 403, "forbidden").await;
    }
    assert_error(mint(api, code(&child), json!({ "permission": "read" })).await, 403, "forbidden").await;
    assert_error(
        mint(api, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", json!({ "permission": "read" })).await,
        404,
        "not_found",
    )
    .await;
    assert_error(mint(api, code(&parent), json!({ "permission": "all" })).await, 400, "invalid").await;

    let listed_child = listed(api, &key, &public_id(&child)).await;
    assert_eq!(listed_child["parent"], public_id(&parent), "the app lists children like any endpoint");
}

#[tokio::test]
async fn minting_counts_against_the_apps_request_rate() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.limits.api_requests_per_second = 1;
        config.limits.api_burst = 5;
    })
    .await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "lobby").await;
    let parent = endpoint_with(api, &key, "lobby", json!({ "permission": "read", "can_delegate": true })).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = mint(api, code(&parent), json!({ "permission": "read" })).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            assert_error(response, 429, "rate_limited").await;
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "a code holder cannot mint faster than its app may write: {statuses:?}");
}

#[tokio::test]
async fn delegation_stops_at_a_chain_of_three() {
    let (app, key) = lobby().await;
    let api = app.api();
    let root = endpoint_with(api, &key, "lobby", json!({ "permission": "read_and_write", "can_delegate": true })).await;
    let delegating = json!({ "permission": "read", "can_delegate": true });
    let second = body(mint(api, code(&root), delegating.clone()).await).await;
    let third = body(mint(api, code(&second), delegating.clone()).await).await;
    assert_eq!(third["can_delegate"], true);
    assert_error(mint(api, code(&third), delegating).await, 403, "forbidden").await;
    let fourth = mint(api, code(&third), json!({ "permission": "read" })).await;
    assert_eq!(fourth.status(), 201, "a chain of three may still mint children that cannot delegate");
}

#[tokio::test]
async fn a_childs_messages_name_its_parent() {
    let (app, key) = lobby().await;
    let api = app.api();
    let parent =
        endpoint_with(api, &key, "lobby", json!({ "permission": "read_and_write", "can_delegate": true })).await;
    let child = body(mint(api, code(&parent), json!({ "permission": "read_and_write" })).await).await;
    let mut ws = joined(api, &child).await;
    ws.send_message(json!("from a child")).await;
    let message = ws.next_message().await;
    assert_eq!(
        (message["sender"]["id"].as_str(), message["sender"]["parent"].as_str()),
        (Some(public_id(&child).as_str()), Some(public_id(&parent).as_str()))
    );
    let history = body(api.get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"][0]["sender"]["parent"], public_id(&parent), "stored with its parent");
    let mut parents_own = joined(api, &parent).await;
    parents_own.send_message(json!("from the parent")).await;
    let own = parents_own.next_message().await;
    assert!(own["sender"].get("parent").is_none(), "no parent key for an endpoint the app made: {own}");
}

#[tokio::test]
async fn deleting_or_downgrading_a_parent_applies_to_its_subtree() {
    let (app, key) = lobby().await;
    let api = app.api();
    let root = endpoint_with(api, &key, "lobby", json!({ "permission": "read_and_write", "can_delegate": true })).await;
    let child =
        body(mint(api, code(&root), json!({ "permission": "read_and_write", "can_delegate": true })).await).await;
    let grandchild = body(mint(api, code(&child), json!({ "permission": "read_and_write" })).await).await;
    let mut grandchild_ws = joined(api, &grandchild).await;

    let downgraded = patch_endpoint(api, &key, "lobby", code(&root), json!({ "permission": "read" })).await;
    assert_eq!(downgraded.status(), 200);
    let frame = grandchild_ws.next_json().await;
    assert_eq!((frame["type"].as_str(), frame["endpoint"]["permission"].as_str()), (Some("endpoint"), Some("read")));
    assert_eq!(listed(api, &key, &public_id(&child)).await["permission"], "read");
    let upgraded = patch_endpoint(api, &key, "lobby", code(&root), json!({ "permission": "read_and_write" })).await;
    assert_eq!(upgraded.status(), 200);
    assert_eq!(listed(api, &key, &public_id(&grandchild)).await["permission"], "read", "children are not widened");

    let deleted = api.delete(&format!("/api/v1/rooms/lobby/endpoints/{}", code(&root)), &key).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(grandchild_ws.closed().await.code, 4001);
    let list = body(api.get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert!(list["endpoints"].as_array().unwrap().is_empty(), "the whole subtree is gone: {list}");
    assert_eq!(api.ws_refusal(code(&grandchild)).await, 404);
}

/// A room `lobby` with a moderator, a writer who sent three messages, and
/// each of them connected.
async fn moderated_lobby() -> (TestApp, String, Value, WsClient, Value, WsClient) {
    let (app, key) = lobby().await;
    let api = app.api();
    let moderator = api.create_endpoint(&key, "lobby", "moderate", None).await;
    let writer = api.create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut moderator_ws = joined(api, &moderator).await;
    let mut writer_ws = joined(api, &writer).await;
    for text in ["one", "two", "three"] {
        writer_ws.send_message(json!(text)).await;
        writer_ws.next_message().await;
        moderator_ws.next_message().await;
    }
    (app, key, moderator, moderator_ws, writer, writer_ws)
}

#[tokio::test]
async fn a_moderator_redacts_on_the_socket_and_every_client_sees_it_everywhere() {
    let (app, key, moderator, mut moderator_ws, writer, mut writer_ws) = moderated_lobby().await;
    let api = app.api();
    let history = body(api.get("/api/v1/rooms/lobby/messages", &key).await).await;
    let second_id = history["messages"][1]["id"].clone();

    moderator_ws.send_text(r#"{"redact": 2}"#).await;
    for ws in [&mut moderator_ws, &mut writer_ws] {
        let frame = ws.next_json().await;
        assert_eq!(frame, json!({ "type": "redaction", "room": "lobby", "seq": 2, "id": second_id }));
    }
    let history = body(api.get("/api/v1/rooms/lobby/messages", &key).await).await;
    let redacted = &history["messages"][1];
    assert_eq!((redacted["seq"].as_u64(), &redacted["id"], &redacted["message"]), (Some(2), &second_id, &Value::Null));
    assert!(redacted["redacted_at"].as_str().is_some_and(|at| at.ends_with('Z')), "{redacted}");
    assert_eq!(redacted["sender"]["id"], public_id(&writer), "the sender stays");
    assert!(history["messages"][0].get("redacted_at").is_none(), "others untouched");

    let mut resumed = api.connect_ws(code(&moderator), Some(0)).await;
    resumed.next_json().await;
    let replayed: Vec<Value> = [resumed.next_json().await, resumed.next_json().await].into();
    assert_eq!((&replayed[1]["message"], replayed[1]["redacted_at"].is_string()), (&Value::Null, true), "resume too");

    writer_ws.send_text(r#"{"redact": 1}"#).await;
    let refusal = writer_ws.next_json().await;
    assert_eq!((refusal["type"].as_str(), refusal["code"].as_str()), (Some("error"), Some("forbidden")), "{refusal}");
    moderator_ws.send_text(r#"{"redact": 99}"#).await;
    assert_eq!(moderator_ws.next_json().await["code"], "not_found");
    moderator_ws.send_text(r#"{"redact": "2"}"#).await;
    assert_eq!(moderator_ws.next_json().await["code"], "invalid");
}

#[tokio::test]
async fn the_app_redacts_one_message_or_all_of_a_sender() {
    let (app, key, moderator, mut moderator_ws, writer, _writer_ws) = moderated_lobby().await;
    let api = app.api();
    let publish = api.post("/api/v1/rooms/lobby/messages", &key, json!({ "message": "from the app" })).await;
    assert_eq!(publish.status(), 201);
    moderator_ws.next_message().await;

    let filtered =
        body(api.get(&format!("/api/v1/rooms/lobby/messages?sender_id={}", public_id(&writer)), &key).await).await;
    assert_eq!(filtered["messages"].as_array().unwrap().len(), 3, "{filtered}");
    let by_app = body(api.get("/api/v1/rooms/lobby/messages?sender_id=app&limit=5", &key).await).await;
    assert_eq!(by_app["messages"][0]["message"], "from the app");

    assert_eq!(api.delete("/api/v1/rooms/lobby/messages/4", &key).await.status(), 204);
    assert_eq!(moderator_ws.next_json().await["seq"], 4);
    assert_eq!(api.delete("/api/v1/rooms/lobby/messages/4", &key).await.status(), 204, "again: nothing changes");
    assert_error(api.delete("/api/v1/rooms/lobby/messages/40", &key).await, 404, "not_found").await;
    assert_error(api.delete("/api/v1/rooms/nowhere/messages/1", &key).await, 404, "not_found").await;

    let response =
        api.post("/api/v1/rooms/lobby/messages/redact", &key, json!({ "sender_id": public_id(&writer) })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await, json!({ "redacted": 3 }));
    let seqs: Vec<u64> =
        [moderator_ws.next_json().await, moderator_ws.next_json().await, moderator_ws.next_json().await]
            .iter()
            .map(|frame| frame["seq"].as_u64().unwrap())
            .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let again = api.post("/api/v1/rooms/lobby/messages/redact", &key, json!({ "sender_id": public_id(&writer) })).await;
    assert_eq!(body(again).await, json!({ "redacted": 0 }));
    let history = body(api.get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert!(history["messages"].as_array().unwrap().iter().all(|m| m["message"].is_null()), "{history}");
    let _ = moderator;
}

#[tokio::test]
async fn redactions_survive_a_restart() {
    let (app, key, _moderator, mut moderator_ws, _writer, _writer_ws) = moderated_lobby().await;
    assert_eq!(app.api().delete("/api/v1/rooms/lobby/messages/1", &key).await.status(), 204);
    moderator_ws.next_json().await;
    drop(moderator_ws);
    let app = app.restart().await;
    let history = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"][0]["message"], Value::Null, "{history}");
    assert!(history["messages"][0]["redacted_at"].is_string());
    assert_eq!(history["messages"][1]["message"], "two");
}

#[tokio::test]
async fn the_legacy_api_shows_the_new_endpoint_fields() {
    let (app, key) = lobby().await;
    let listed = body(app.api().get("/main/list_endpoints/lobby/", &key).await).await;
    assert!(listed["endpoints"].as_array().unwrap().is_empty());
    let added = body(app.api().get("/main/add_endpoint/lobby/moderate/", &key).await).await;
    let endpoint = &added["endpoint"];
    assert_eq!(endpoint["permission"], "moderate");
    for field in ["expires_at", "max_messages", "parent"] {
        assert_eq!(endpoint[field], Value::Null, "{field}: {endpoint}");
    }
    assert_eq!((endpoint["messages_sent"].as_u64(), endpoint["online"].as_u64()), (Some(0), Some(0)));
    assert_eq!(endpoint["can_delegate"], false);
}
