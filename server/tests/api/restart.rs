//! Rooms, endpoints and history survive a restart on the same data folder.

use serde_json::json;

use crate::helpers::{body, spawn_app};

#[tokio::test]
async fn a_restart_keeps_rooms_endpoints_history_and_seq() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let writer = app.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let code = writer["code"].as_str().unwrap().to_owned();
    let mut ws = app.api().connect_ws(&code, None).await;
    ws.next_json().await;
    for n in 1..=3 {
        ws.send_message(json!(n)).await;
        ws.next_message().await;
    }
    app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": 4 })).await;
    drop(ws);

    let app = app.restart().await;
    let rooms = body(app.api().get("/api/v1/rooms", &key).await).await;
    assert_eq!(rooms["rooms"][0]["name"], "lobby");
    let endpoints = body(app.api().get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert_eq!(endpoints["endpoints"][0]["code"], code.as_str());
    assert_eq!(endpoints["endpoints"][0]["meta"], json!({ "name": "Ann" }));

    let history = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    let payloads: Vec<_> = history["messages"].as_array().unwrap().iter().map(|m| m["message"].clone()).collect();
    assert_eq!(payloads, [json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(history["messages"][0]["sender"]["meta"], json!({ "name": "Ann" }));

    let mut ws = app.api().connect_ws(&code, Some(2)).await;
    let welcome = ws.next_json().await;
    assert_eq!((welcome["first_seq"].as_u64(), welcome["last_seq"].as_u64()), (Some(1), Some(4)));
    assert_eq!(ws.next_message().await["seq"], 3);
    assert_eq!(ws.next_message().await["seq"], 4);
    ws.send_message(json!(5)).await;
    assert_eq!(ws.next_message().await["seq"], 5, "seq goes on from where it was");
}
