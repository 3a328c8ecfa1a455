//! SIGTERM during traffic, on the real binary: sockets are closed with 1001
//! so clients resume elsewhere, and every message acknowledged before the
//! signal (a REST `201`, or a WebSocket echo) is in the history after a
//! restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{send_json, wait_ready, WAIT};

fn comms(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_comms"));
    command
        .current_dir(data_dir)
        .env("COMMS_DATA_DIR", data_dir)
        .env("COMMS_DEMO__ENABLED", "false")
        // Keep and page everything, so any missing message is a lost one.
        .env("COMMS_HISTORY__MAX_MESSAGES", "100000")
        .env("COMMS_LIMITS__MAX_PAGE_SIZE", "100000")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

async fn start(data_dir: &Path, addr: &str) -> Child {
    let server = comms(data_dir).args(["serve", "--addr", addr]).kill_on_drop(true).spawn().expect("start comms");
    wait_ready(addr).await;
    server
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let addr =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let mut server = start(dir.path(), &addr).await;
    let created = comms(dir.path()).args(["app", "create", "acme"]).output().await.unwrap();
    let key = serde_json::from_slice::<Value>(&created.stdout).unwrap()["api_key"].as_str().unwrap().to_owned();
    let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let api = |path: &str| format!("http://{addr}/api/v1{path}");
    client.post(api("/rooms")).header("x-api-key", &key).json(&json!({ "name": "lobby" })).send().await.unwrap();
    let endpoint =
        send_json(client.post(api("/rooms/lobby/endpoints")).json(&json!({ "permission": "read_and_write" })), &key)
            .await;
    let code = endpoint["code"].as_str().unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/endpoint/{code}/")).await.unwrap();

    // REST publishers keep going until the server stops answering.
    let publisher = {
        let (client, url, key) = (client.clone(), api("/rooms/lobby/messages"), key.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let sent = client.post(&url).header("x-api-key", &key).json(&json!({ "message": n })).send().await;
                match sent {
                    Ok(response) if response.status() == 201 => {
                        acknowledged.push(response.json::<Value>().await.unwrap()["seq"].as_u64().unwrap());
                    }
                    _ => break,
                }
            }
            acknowledged
        })
    };
    // The socket sends too; a message is acknowledged when its echo comes.
    let mut echoed = BTreeSet::new();
    let mut seen = 0;
    let close_code = loop {
        if seen < 20 {
            socket.send(Message::text(json!({ "message": "ws" }).to_string())).await.unwrap();
        }
        let frame = tokio::time::timeout(WAIT, socket.next()).await.expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "message" {
                    seen += 1;
                    if frame["message"] == "ws" {
                        echoed.insert(frame["seq"].as_u64().unwrap());
                    }
                    if seen == 40 {
                        let pid = server.id().expect("running").to_string();
                        let killed = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
                        assert!(killed.success());
                    }
                }
            }
            Some(Ok(Message::Close(Some(close)))) => break u16::from(close.code),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(close_code, 1001, "SIGTERM closes sockets with 1001 (going away)");
    let acknowledged = tokio::time::timeout(WAIT * 3, publisher).await.expect("publisher stops").unwrap();
    let status = tokio::time::timeout(WAIT * 3, server.wait()).await.expect("comms exits").unwrap();
    assert!(status.success(), "a clean exit: {status}");
    assert!(acknowledged.len() + echoed.len() >= 20, "traffic was flowing: {} + {}", acknowledged.len(), echoed.len());

    let _restarted = start(dir.path(), &addr).await;
    let history = send_json(client.get(api("/rooms/lobby/messages?after_seq=0&limit=100000")), &key).await;
    let stored: BTreeSet<u64> =
        history["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let missing: Vec<u64> = acknowledged.iter().chain(&echoed).filter(|seq| !stored.contains(seq)).copied().collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}
