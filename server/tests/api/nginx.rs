//! `deploy/nginx.conf` run by Debian's nginx in front of comms, as in
//! production but on loopback ports, with a certificate authority made for
//! the test: pages over https, an http request redirected, the site's files
//! served by nginx, `ws_url`s with `wss://` and the public host (from the
//! forwarding headers of a trusted proxy), and a chat over wss.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use comms_core::forwarded::TrustedProxies;
use comms_testkit::missing_service;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::certs::{free_port, next_json, TestCa, HOST};
use crate::helpers::{send_json, spawn_app_with};

/// Replaces `from` with `to`, insisting that `from` is there: the site file
/// changing shape must fail this test, not quietly skip a part of it.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "deploy/nginx.conf no longer contains {from:?}");
    text.replace(from, to)
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn nginx_serves_the_site_and_the_websocket_over_tls() {
    if Command::new("nginx").arg("-v").output().is_err() {
        return missing_service::<()>("nginx", "PATH", "not installed").unwrap_or_default();
    }
    let app =
        spawn_app_with(|config| config.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let (cert, key) = ca.issue("site");
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("pkg/probe.js"), "// served by nginx\n").unwrap();
    std::fs::write(site.join("pkg/chunk_4.tgPq3dE1ot_ZUIw3ypPb-A.wasm"), "named by its content").unwrap();
    let (http, https) = (free_port(), free_port());

    let mut conf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/nginx.conf")).unwrap();
    conf = swap(&conf, "listen 80;", &format!("listen 127.0.0.1:{http};"));
    conf = swap(&conf, "listen 443 ssl http2;", &format!("listen 127.0.0.1:{https} ssl http2;"));
    conf = swap(&conf, "server 127.0.0.1:8002;", &format!("server {};", app.api().addr));
    conf = swap(&conf, "/etc/letsencrypt/live/comms.example.com/fullchain.pem", cert.to_str().unwrap());
    conf = swap(&conf, "/etc/letsencrypt/live/comms.example.com/privkey.pem", key.to_str().unwrap());
    conf = swap(&conf, "/usr/local/share/comms/site", site.to_str().unwrap());
    let main = format!(
        "user root;\nworker_processes 1;\nevents {{ worker_connections 256; }}\n\
         http {{\ninclude /etc/nginx/mime.types;\naccess_log off;\n{conf}\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
    let prefix = dir.path().to_str().unwrap();
    let nginx = Command::new("nginx")
        .args([
            "-p",
            prefix,
            "-c",
            "nginx.conf",
            "-e",
            "error.log",
            "-g",
            &format!("daemon off; pid {prefix}/nginx.pid;"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nginx");
    let _nginx = Nginx(nginx);

    let https_addr: SocketAddr = format!("127.0.0.1:{https}").parse().unwrap();
    let client = ca.https_client(https_addr);
    let base = format!("https://{HOST}:{https}");
    let mut page = None;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{base}/")).send().await {
            page = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = page.unwrap_or_else(|| {
        panic!("nginx did not answer: {}", std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default())
    });
    assert_eq!(page.status(), 200, "the site over https");
    assert!(page.headers().contains_key("content-security-policy"), "comms rendered it");

    let plain = reqwest::Client::builder()
        .resolve(HOST, format!("127.0.0.1:{http}").parse().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirected = plain.get(format!("http://{HOST}:{http}/portal?x=1")).send().await.unwrap();
    assert_eq!(redirected.status(), 301);
    assert_eq!(redirected.headers()["location"], format!("https://{HOST}/portal?x=1"));

    let probe = client.get(format!("{base}/pkg/probe.js")).send().await.unwrap();
    assert_eq!(probe.status(), 200);
    assert_eq!(probe.headers()["cache-control"], "no-cache", "nginx serves the files, checked each time");
    let hashed = client.get(format!("{base}/pkg/chunk_4.tgPq3dE1ot_ZUIw3ypPb-A.wasm")).send().await.unwrap();
    assert_eq!(hashed.status(), 200);
    assert_eq!(hashed.headers()["cache-control"], "public, max-age=31536000, immutable", "content-named: for good");
    let missing = client.get(format!("{base}/pkg/chunk_5.tgPq3dE1ot_ZUIw3ypPb-A.wasm")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("cache-control").is_none(), "a missing file is not kept");

    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 403, "the nginx site keeps metrics internal");

    let key = app.create_app("acme").await;
    let created =
        client.post(format!("{base}/api/v1/rooms")).header("x-api-key", &key).json(&json!({ "name": "lobby" })).send();
    assert_eq!(created.await.unwrap().status(), 201);
    let made = client
        .post(format!("{base}/api/v1/rooms/lobby/endpoints"))
        .json(&json!({ "permission": "read_and_write", "meta": { "name": "Ann" } }));
    let endpoint = send_json(made, &key).await;
    let ws_url = endpoint["ws_url"].as_str().unwrap();
    assert!(ws_url.starts_with(&format!("wss://{HOST}/ws/endpoint/")), "{ws_url}");

    let url = ws_url.replace(&format!("wss://{HOST}/"), &format!("wss://{HOST}:{https}/"));
    let mut socket = ca.connect_wss(https_addr, &url).await;
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    socket.send(Message::text(json!({ "message": "over wss" }).to_string())).await.unwrap();
    let message = next_json(&mut socket).await;
    assert_eq!((message["seq"].as_u64(), &message["message"]), (Some(1), &json!("over wss")));
    assert_eq!(message["sender"]["meta"]["name"], "Ann");
}
