//! Presence rooms (members in the welcome, `join` once per endpoint, `leave`
//! after the grace period and never for a quick reconnect, the presence
//! API) and signals (to every other connection, never stored or replayed,
//! bounded and rate-limited, never costing a slow reader a message), on one
//! node. `cluster.rs` checks the same over two nodes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    assert_error, body, member_roll, public_id, spawn_app, spawn_app_with, Remote, TestApp, WsClient,
};

/// A short grace period, so the tests wait little for leaves.
const GRACE: Duration = Duration::from_millis(400);

async fn app_with_short_grace() -> TestApp {
    spawn_app_with(|config| config.presence.leave_grace = GRACE).await
}

/// An endpoint of `room` named `name` in its meta.
async fn named(api: &Remote, key: &str, room: &str, name: &str, permission: &str) -> Value {
    api.create_endpoint(key, room, permission, Some(json!({ "name": name }))).await
}

/// Opens a socket; returns it with its welcome frame.
async fn join(api: &Remote, endpoint: &Value) -> (WsClient, Value) {
    let mut ws = api.connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    let welcome = ws.next_json().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

#[tokio::test]
async fn rooms_choose_presence_at_creation_and_show_it() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    assert_eq!(api.create_presence_room(&key, "chat").await["presence"], true);
    assert_eq!(api.create_room(&key, "news").await["presence"], false, "off unless asked");
    let listed = body(api.get("/api/v1/rooms", &key).await).await;
    let flags: Vec<&Value> = listed["rooms"].as_array().unwrap().iter().map(|room| &room["presence"]).collect();
    assert_eq!(flags, [&json!(true), &json!(false)]);
    let response = api.post("/api/v1/rooms", &key, json!({ "name": "x", "presence": "yes" })).await;
    assert_error(response, 400, "invalid").await;
}

#[tokio::test]
async fn every_room_answers_presence_with_online_and_presence_rooms_with_members() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "news").await;
    let reader = named(api, &key, "news", "Ann", "read").await;
    let (_ws, welcome) = join(api, &reader).await;
    assert!(welcome.get("members").is_none(), "no members outside presence rooms: {welcome}");
    let news = body(api.get("/api/v1/rooms/news/presence", &key).await).await;
    assert_eq!(news, json!({ "online": 1 }));

    api.create_presence_room(&key, "chat").await;
    let ann = named(api, &key, "chat", "Ann", "read_and_write").await;
    let (_first, _) = join(api, &ann).await;
    let (_second, _) = join(api, &ann).await;
    let chat = body(api.get("/api/v1/rooms/chat/presence", &key).await).await;
    assert_eq!(chat["online"], 2);
    assert_eq!(chat["members"], json!([{ "id": public_id(&ann), "meta": { "name": "Ann" }, "connections": 2 }]));

    assert_error(api.get("/api/v1/rooms/nowhere/presence", &key).await, 404, "not_found").await;
    let other = app.create_app("other").await;
    assert_error(api.get("/api/v1/rooms/chat/presence", &other).await, 404, "not_found").await;
}

#[tokio::test]
async fn the_welcome_lists_members_and_others_hear_each_endpoint_join_once() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_presence_room(&key, "chat").await;
    let ann = named(api, &key, "chat", "Ann", "read_and_write").await;
    let bob = named(api, &key, "chat", "Bob", "read").await;

    let (mut ann_ws, welcome) = join(api, &ann).await;
    assert_eq!(member_roll(&welcome["members"]), [(public_id(&ann), 1)], "the joining connection is listed");

    let (mut bob_ws, welcome) = join(api, &bob).await;
    assert_eq!(member_roll(&welcome["members"]), [(public_id(&ann), 1), (public_id(&bob), 1)]);
    let joined = ann_ws.next_json().await;
    assert_eq!(joined["type"], "join");
    assert_eq!(joined["room"], "chat");
    assert_eq!(joined["member"], json!({ "id": public_id(&bob), "meta": { "name": "Bob" }, "connections": 1 }));

    let (_bob_again, welcome) = join(api, &bob).await;
    assert_eq!(member_roll(&welcome["members"]), [(public_id(&ann), 1), (public_id(&bob), 2)]);
    api.next_is_marker(&key, "chat", &mut [&mut ann_ws, &mut bob_ws], "no second join, nor its own").await;
}

#[tokio::test]
async fn a_member_leaves_after_the_grace_period_and_a_quick_reconnect_sends_nothing() {
    let app = app_with_short_grace().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_presence_room(&key, "chat").await;
    let ann = named(api, &key, "chat", "Ann", "read_and_write").await;
    let bob = named(api, &key, "chat", "Bob", "read_and_write").await;
    let (mut ann_ws, _) = join(api, &ann).await;
    let (bob_ws, _) = join(api, &bob).await;
    assert_eq!(ann_ws.next_json().await["type"], "join");

    // A tab reloading: gone and back well within the grace period.
    drop(bob_ws);
    tokio::time::sleep(GRACE / 4).await;
    let (bob_ws, welcome) = join(api, &bob).await;
    assert_eq!(member_roll(&welcome["members"]), [(public_id(&ann), 1), (public_id(&bob), 1)]);
    tokio::time::sleep(GRACE * 2).await;
    api.next_is_marker(&key, "chat", &mut [&mut ann_ws], "no leave, no join").await;

    drop(bob_ws);
    tokio::time::sleep(GRACE / 4).await;
    let during = body(api.get("/api/v1/rooms/chat/presence", &key).await).await;
    assert_eq!(
        member_roll(&during["members"]),
        [(public_id(&ann), 1), (public_id(&bob), 0)],
        "a member until its grace ends"
    );
    let left = ann_ws.next_json().await;
    assert_eq!(left["type"], "leave", "{left}");
    assert_eq!(left["member"], json!({ "id": public_id(&bob), "meta": { "name": "Bob" }, "connections": 0 }));
    let after = body(api.get("/api/v1/rooms/chat/presence", &key).await).await;
    assert_eq!(member_roll(&after["members"]), [(public_id(&ann), 1)]);

    let (_bob_ws, _) = join(api, &bob).await;
    assert_eq!(ann_ws.next_json().await["type"], "join", "back after the grace: joins again");
}

#[tokio::test]
async fn signals_reach_every_other_connection_and_are_never_stored_or_replayed() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "news").await;
    let ann = named(api, &key, "news", "Ann", "read_and_write").await;
    let bob = named(api, &key, "news", "Bob", "read").await;
    let (mut ann_ws, _) = join(api, &ann).await;
    let (mut ann_tab, _) = join(api, &ann).await;
    let (mut bob_ws, _) = join(api, &bob).await;

    ann_ws.send_text(r#"{"signal": {"typing": true}}"#).await;
    for ws in [&mut bob_ws, &mut ann_tab] {
        let signal = ws.next_json().await;
        assert_eq!(
            signal,
            json!({
                "type": "signal",
                "room": "news",
                "sender": { "id": public_id(&ann), "meta": { "name": "Ann" } },
                "signal": { "typing": true },
            })
        );
    }
    api.next_is_marker(&key, "news", &mut [&mut ann_ws], "the sender does not get its own signal").await;

    let messages = body(api.get("/api/v1/rooms/news/messages", &key).await).await;
    assert_eq!(messages["messages"].as_array().unwrap().len(), 1, "only the marker is stored: {messages}");
    let mut resumed = api.connect_ws(ann["code"].as_str().unwrap(), Some(0)).await;
    assert_eq!(resumed.next_json().await["type"], "welcome");
    assert_eq!(resumed.next_json().await["message"], "the sender does not get its own signal");
    api.next_is_marker(&key, "news", &mut [&mut resumed], "and resuming replays no signal").await;
}

#[tokio::test]
async fn read_endpoints_cannot_signal_and_signals_are_bounded_and_rate_limited() {
    let app = spawn_app_with(|config| config.limits.ws_signals_per_second = 3).await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "news").await;
    let reader = named(api, &key, "news", "Ann", "read").await;
    let writer = named(api, &key, "news", "Bob", "read_and_write").await;
    let (mut reader_ws, _) = join(api, &reader).await;
    let (mut writer_ws, _) = join(api, &writer).await;

    reader_ws.send_text(r#"{"signal": 1}"#).await;
    assert_eq!(reader_ws.next_json().await["code"], "read_only");

    for n in 0..4 {
        writer_ws.send_text(&json!({ "signal": n }).to_string()).await;
    }
    for n in 0..3 {
        assert_eq!(reader_ws.next_json().await["signal"], n);
    }
    assert_eq!(writer_ws.next_json().await["code"], "rate_limited", "3 per second");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let big = json!({ "signal": "x".repeat(1100) }).to_string();
    writer_ws.send_text(&big).await;
    assert_eq!(writer_ws.next_json().await["code"], "too_large", "signals are at most 1 KiB");
    let deep = format!(r#"{{"signal": {}{}}}"#, "[".repeat(40), "]".repeat(40));
    writer_ws.send_text(&deep).await;
    assert_eq!(writer_ws.next_json().await["code"], "invalid");
    writer_ws.send_text(r#"{"signal": 1, "message": 2}"#).await;
    assert_eq!(writer_ws.next_json().await["code"], "invalid", "one of the two, not both");
    api.next_is_marker(&key, "news", &mut [&mut writer_ws, &mut reader_ws], "still open, nothing sent").await;
}

#[tokio::test]
async fn a_signal_flood_never_costs_a_slow_reader_a_message() {
    let app = spawn_app_with(|config| {
        config.limits.connection_queue = 16;
        config.limits.ws_signals_per_second = 0;
    })
    .await;
    let key = app.create_app("acme").await;
    let api = app.api();
    api.create_room(&key, "news").await;
    let slow = named(api, &key, "news", "Slow", "read").await;
    let loud = named(api, &key, "news", "Loud", "read_and_write").await;
    let (mut slow_ws, _) = join(api, &slow).await;
    let (mut loud_ws, _) = join(api, &loud).await;

    // The slow reader reads nothing while a flood fills the socket buffers
    // and then its queue.
    let frame = json!({ "signal": "s".repeat(1000) }).to_string();
    for _ in 0..20_000 {
        loud_ws.send_text(&frame).await;
    }
    for n in 1..=5 {
        loud_ws.send_message(json!(n)).await;
    }
    let skipped = || app.state().metrics.signals_skipped.get();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while skipped() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(skipped() > 0, "the flood filled the slow reader's queue");

    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        let frame = slow_ws.next_json().await;
        match frame["type"].as_str() {
            Some("signal") => {}
            Some("message") => seqs.push(frame["seq"].as_u64().unwrap()),
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5], "every message, in order");
}
