//! Many clients at once: one winner per room name, one order per room.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn fifty_clients_creating_one_room_get_exactly_one_201() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let attempts = (0..50).map(|_| app.api().post("/api/v1/rooms", &key, json!({ "name": "race" })));
    let statuses: Vec<u16> = join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 49, "{statuses:?}");
}

#[tokio::test]
async fn twenty_sockets_sending_twenty_messages_all_see_one_order() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "busy").await;
    let mut sockets = Vec::new();
    for n in 0..20 {
        let endpoint = app.api().create_endpoint(&key, "busy", "read_and_write", Some(json!({ "n": n }))).await;
        let mut ws = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
        ws.next_json().await;
        sockets.push(ws);
    }
    let runs = sockets.into_iter().enumerate().map(|(n, mut ws)| async move {
        let mut received = Vec::new();
        for i in 0..20 {
            ws.send_message(json!({ "from": n, "i": i })).await;
        }
        while received.len() < 400 {
            let message = ws.next_message().await;
            received.push((message["seq"].as_u64().unwrap(), message["message"].clone()));
        }
        received
    });
    let all = join_all(runs).await;
    let first = &all[0];
    let seqs: Vec<u64> = first.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    for received in &all {
        assert_eq!(received, first, "every socket sees the same messages in the same order");
    }
    for n in 0..20 {
        let mine: Vec<_> =
            first.iter().filter(|(_, m)| m["from"] == n).map(|(_, m)| m["i"].as_u64().unwrap()).collect();
        assert_eq!(mine, (0..20).collect::<Vec<_>>(), "each sender's messages keep their order");
    }
}
