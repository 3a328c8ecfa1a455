//! `docs/usage.md`: `GET /api/v1/usage` answers what a scripted workload
//! did, the moment it is done (this node's unwritten counts included) and
//! after a restart (written on the way out); each app sees its own; bad
//! queries are `400 invalid`; bytes are the payloads published and the
//! frames sent. Two nodes add up in `cluster`.

use std::time::Duration;

use comms_core::store::AppStatus;
use comms_protocol::ws::close;
use comms_testkit::webhook::WebhookReceiver;
use serde_json::{json, Value};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_error, body, spawn_app_with, Remote, TestApp, WsClient, WAIT};

/// A payload nested `levels` arrays deep.
fn nested(levels: usize) -> Value {
    serde_json::from_str(&format!("{}{}", "[".repeat(levels), "]".repeat(levels))).unwrap()
}

/// The text of the next frame, which must be a `message`.
async fn message_frame(ws: &mut WsClient) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.stream.next()).await.expect("a frame in time").unwrap().unwrap();
        if let Message::Text(text) = frame {
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed["type"], "message", "{parsed}");
            return text.to_string();
        }
    }
}

/// The app's usage points.
pub async fn usage(api: &Remote, key: &str, query: &str) -> Value {
    let response = api.get(&format!("/api/v1/usage{query}"), key).await;
    assert_eq!(response.status(), 200);
    body(response).await
}

/// The points' sums (the peak: the highest), as
/// `[peak, in, out, signals, webhooks, quota, rate, depth, credentials]`.
pub fn totals(report: &Value) -> [u64; 9] {
    let mut sums = [0; 9];
    for point in report["points"].as_array().expect("points") {
        let field = |name: &str| point[name].as_u64().unwrap_or_else(|| panic!("{name} in {point}"));
        let refused = |name: &str| point["refused"][name].as_u64().unwrap_or_else(|| panic!("{name} in {point}"));
        sums[0] = sums[0].max(field("connections_peak"));
        let counted = [
            field("messages_in"),
            field("messages_out"),
            field("signals"),
            field("webhook_deliveries"),
            refused("quota"),
            refused("rate"),
            refused("depth"),
            refused("credentials"),
        ];
        for (sum, n) in sums[1..].iter_mut().zip(counted) {
            *sum += n;
        }
    }
    sums
}

/// Polls the app's usage until its totals are `expected`; the last
/// report.
async fn until_totals(api: &Remote, key: &str, query: &str, expected: [u64; 9]) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let report = usage(api, key, query).await;
        if totals(&report) == expected || tokio::time::Instant::now() > deadline {
            assert_eq!(totals(&report), expected, "{report}");
            return report;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn quota_app() -> TestApp {
    spawn_app_with(|config| {
        config.quotas.rooms_per_app = 2;
        config.quotas.sockets_per_endpoint = 1;
        config.limits.ws_signals_per_second = 1;
    })
    .await
}

#[tokio::test]
async fn usage_equals_what_a_scripted_workload_did() {
    let app = quota_app().await;
    let api = app.api();
    let key = app.create_app("acme").await;
    let receiver = WebhookReceiver::start().await;
    let hook = json!({ "url": receiver.url(), "events": ["room.created"] });
    assert_eq!(api.post("/api/v1/webhooks", &key, hook).await.status(), 201);
    api.create_room(&key, "lobby").await;
    api.create_room(&key, "side").await;
    assert_error(api.post("/api/v1/rooms", &key, json!({ "name": "third" })).await, 403, "quota_exceeded").await;
    assert_eq!(api.get("/main/create_room/third/", &key).await.status(), 403, "legacy refusals count too");
    receiver.wait_for("two room.created deliveries", |received| received.len() == 2).await;

    // A single-use code works once; its second use is a refused credential.
    let once = body(
        api.post("/api/v1/rooms/lobby/endpoints", &key, json!({ "permission": "read", "single_use": true })).await,
    )
    .await;
    let mut first = api.connect_ws(once["code"].as_str().unwrap(), None).await;
    first.next_json().await;
    drop(first);
    assert_eq!(api.ws_refusal(once["code"].as_str().unwrap()).await, 404);

    let writer = api.create_endpoint(&key, "lobby", "read_and_write", None).await;
    let reader = api.create_endpoint(&key, "lobby", "read", None).await;
    let writer_code = writer["code"].as_str().unwrap();
    let mut ann = api.connect_ws(writer_code, None).await;
    let mut bob = api.connect_ws(reader["code"].as_str().unwrap(), None).await;
    ann.next_json().await;
    bob.next_json().await;
    let mut over = api.connect_ws(writer_code, None).await;
    assert_eq!(over.closed().await.code, close::QUOTA_EXCEEDED);

    for n in 0..3 {
        ann.send_message(json!(n)).await;
    }
    for n in 3..5 {
        let published = api.post("/api/v1/rooms/lobby/messages", &key, json!({ "message": n })).await;
        assert_eq!(published.status(), 201);
    }
    let mut frame_bytes = 0;
    for _ in 0..5 {
        frame_bytes += message_frame(&mut ann).await.len() + message_frame(&mut bob).await.len();
    }
    ann.send_message(nested(40)).await;
    assert_eq!(ann.next_json().await["code"], "invalid");
    let deep = api.post("/api/v1/rooms/lobby/messages", &key, json!({ "message": nested(40) })).await;
    assert_error(deep, 400, "invalid").await;
    ann.send_text(r#"{"signal": "typing"}"#).await;
    ann.send_text(r#"{"signal": "typing"}"#).await;
    assert_eq!(bob.next_json().await["type"], "signal");
    assert_eq!(ann.next_json().await["code"], "rate_limited");
    bob.send_message(json!("read only")).await;
    assert_eq!(bob.next_json().await["code"], "read_only", "not a refusal usage counts");
    // The key of a suspended app is a credential of the app that does not work.
    app.apps().set_status("acme", AppStatus::Suspended, "admin@example.com").await.unwrap();
    assert_error(api.get("/api/v1/rooms", &key).await, 403, "forbidden").await;
    app.apps().set_status("acme", AppStatus::Approved, "admin@example.com").await.unwrap();

    // Two plus the single-use one, which had closed before.
    let expected = [2, 5, 10, 1, 2, 3, 1, 2, 2];
    let by_minute = until_totals(api, &key, "?granularity=minute", expected).await;
    assert_eq!(by_minute["granularity"], "minute");
    until_totals(api, &key, "", expected).await;
    let by_day = until_totals(api, &key, "?granularity=day", expected).await;
    let day = &by_day["points"][0];
    let at = day["at"].as_str().unwrap();
    assert!(at.ends_with("T00:00:00.000Z"), "a day starts at midnight UTC: {at}");
    // Payloads `0` to `4`, one byte each; every frame as the sockets got it.
    assert_eq!((day["bytes_in"].as_u64(), day["bytes_out"].as_u64()), (Some(5), Some(frame_bytes as u64)));

    let other = app.create_app("other").await;
    assert_eq!(usage(api, &other, "").await["points"], json!([]), "another app's usage is its own");
}

#[tokio::test]
async fn usage_written_on_shutdown_is_there_after_a_restart() {
    let app = quota_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    for n in 0..4 {
        app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": n })).await;
    }
    let app = app.restart().await;
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": 4 })).await;
    until_totals(app.api(), &key, "?granularity=minute", [0, 5, 0, 0, 0, 0, 0, 0, 0]).await;
}

#[tokio::test]
async fn a_usage_query_it_cannot_answer_is_refused() {
    let app = quota_app().await;
    let key = app.create_app("acme").await;
    for query in [
        "?granularity=week",
        "?from=yesterday",
        "?to=2026-13-01T00:00:00Z",
        "?from=2026-11-30T12:00:00Z&to=2026-11-30T12:00:00Z",
        "?from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z&granularity=minute",
    ] {
        assert_error(app.api().get(&format!("/api/v1/usage{query}"), &key).await, 400, "invalid").await;
    }
    let old = usage(app.api(), &key, "?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z").await;
    assert_eq!(old, json!({ "granularity": "hour", "points": [] }));
    assert_error(app.api().get("/api/v1/usage", "ck_wrong").await, 403, "forbidden").await;
}
