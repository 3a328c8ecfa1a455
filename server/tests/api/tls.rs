//! Built-in HTTPS (`[server.tls]`), for a machine without nginx: the site
//! and the API over https, `wss://` `ws_url`s and a chat over wss, `Secure`
//! cookies, the plain-HTTP redirect, a renewed certificate picked up
//! without a restart, a key that does not fit refused at start, and the
//! request-head deadline on both listeners.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use comms_core::config::Config;
use comms_server::startup::Application;
use comms_testkit::missing_service;
use futures_util::SinkExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::certs::{free_port, next_json, TestCa, HOST};
use crate::helpers::{send_json, spawn_app_with};
use crate::http_limits::assert_dropped_after;

/// A certificate authority in a temp folder; `None` (a skip, or a failure
/// under CI) without openssl.
fn authority() -> Option<(tempfile::TempDir, TestCa)> {
    if let Err(err) = Command::new("openssl").arg("version").output() {
        return missing_service("openssl", "PATH", &err.to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    Some((dir, ca))
}

/// The DER certificate a server at `addr` presented to `client`.
async fn presented_certificate(client: &reqwest::Client, base: &str) -> Vec<u8> {
    let response = client.get(format!("{base}/healthz")).send().await.expect("an https answer");
    let info = response.extensions().get::<reqwest::tls::TlsInfo>().expect("TLS details");
    info.peer_certificate().expect("a server certificate").to_vec()
}

fn der(pem_file: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(pem_file).unwrap().to_vec()
}

#[tokio::test]
async fn comms_serves_https_and_wss_itself() {
    let Some((_dir, ca)) = authority() else { return };
    let (cert, key) = ca.issue("site");
    let redirect_port = free_port();
    let app = spawn_app_with(|config| {
        config.server.tls.cert = cert.display().to_string();
        config.server.tls.key = key.display().to_string();
        config.server.tls.redirect_from = Some(SocketAddr::from(([127, 0, 0, 1], redirect_port)));
    })
    .await;
    let client = ca.https_client(app.api().addr);
    let base = format!("https://{HOST}:{}", app.api().addr.port());

    let page = client.get(format!("{base}/")).send().await.expect("the site over https");
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("content-security-policy"));
    let session = client.post(format!("{base}/portal/fn/session")).send().await.unwrap();
    assert!(session.headers()["set-cookie"].to_str().unwrap().contains("Secure"), "cookies are https-only");

    let key = app.create_app("acme").await;
    let created = client.post(format!("{base}/api/v1/rooms")).header("x-api-key", &key).json(&json!({"name": "lobby"}));
    assert_eq!(created.send().await.unwrap().status(), 201);
    let made = client
        .post(format!("{base}/api/v1/rooms/lobby/endpoints"))
        .json(&json!({ "permission": "read_and_write", "meta": { "name": "Ann" } }));
    let endpoint = send_json(made, &key).await;
    let ws_url = endpoint["ws_url"].as_str().unwrap();
    assert!(ws_url.starts_with(&format!("wss://{HOST}:{}/ws/endpoint/", app.api().addr.port())), "{ws_url}");

    let mut socket = ca.connect_wss(app.api().addr, ws_url).await;
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    socket.send(Message::text(json!({ "message": "over wss" }).to_string())).await.unwrap();
    let message = next_json(&mut socket).await;
    assert_eq!((message["seq"].as_u64(), &message["message"]), (Some(1), &json!("over wss")));

    let plain = reqwest::Client::builder()
        .resolve(HOST, SocketAddr::from(([127, 0, 0, 1], redirect_port)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirected = plain.get(format!("http://{HOST}:{redirect_port}/portal?x=1")).send().await.unwrap();
    assert_eq!(redirected.status(), 308);
    assert_eq!(redirected.headers()["location"], format!("https://{HOST}:{}/portal?x=1", app.api().addr.port()));
    assert!(reqwest::get(format!("http://{}/healthz", app.api().addr)).await.is_err(), "no plain HTTP on the TLS port");
}

#[tokio::test]
async fn a_renewed_certificate_applies_without_a_restart() {
    let Some((dir, ca)) = authority() else { return };
    let (first, first_key) = ca.issue("first");
    let (live, live_key) = (dir.path().join("fullchain.pem"), dir.path().join("privkey.pem"));
    std::fs::copy(&first, &live).unwrap();
    std::fs::copy(&first_key, &live_key).unwrap();
    let app = spawn_app_with(|config| {
        config.server.tls.cert = live.display().to_string();
        config.server.tls.key = live_key.display().to_string();
    })
    .await;
    let base = format!("https://{HOST}:{}", app.api().addr.port());
    assert_eq!(presented_certificate(&ca.https_client(app.api().addr), &base).await, der(&first));

    let (second, second_key) = ca.issue("second");
    std::fs::copy(&second, &live).unwrap();
    assert_eq!(
        presented_certificate(&ca.https_client(app.api().addr), &base).await,
        der(&first),
        "halfway through a renewal (new certificate, old key) the old pair stays in use"
    );
    std::fs::copy(&second_key, &live_key).unwrap();
    assert_eq!(presented_certificate(&ca.https_client(app.api().addr), &base).await, der(&second), "renewed");
}

#[tokio::test]
async fn a_key_that_does_not_fit_the_certificate_is_refused_at_start() {
    let Some((dir, ca)) = authority() else { return };
    let (cert, _) = ca.issue("one");
    let (_, other_key) = ca.issue("two");
    let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
    config.server.tls.cert = cert.display().to_string();
    config.server.tls.key = other_key.display().to_string();
    let refused = Application::build(config.clone(), "127.0.0.1:0".parse().unwrap()).await.err().expect("refused");
    assert!(format!("{refused:#}").contains("does not fit the certificate"), "{refused:#}");

    config.server.tls.key = dir.path().join("missing.key").display().to_string();
    let refused = Application::build(config, "127.0.0.1:0".parse().unwrap()).await.err().expect("refused");
    assert!(format!("{refused:#}").contains("missing.key"), "{refused:#}");
}

#[tokio::test]
async fn a_handshake_or_request_head_not_complete_in_time_is_dropped_on_both_listeners() {
    let Some((_dir, ca)) = authority() else { return };
    let (cert, key) = ca.issue("site");
    let redirect_port = free_port();
    let timeout = Duration::from_secs(1);
    let app = spawn_app_with(|config| {
        config.server.header_read_timeout = timeout;
        config.server.tls.cert = cert.display().to_string();
        config.server.tls.key = key.display().to_string();
        config.server.tls.redirect_from = Some(SocketAddr::from(([127, 0, 0, 1], redirect_port)));
    })
    .await;
    let (addr, redirect) = (app.api().addr, SocketAddr::from(([127, 0, 0, 1], redirect_port)));
    let start = Instant::now();
    let mut no_handshake = TcpStream::connect(addr).await.unwrap();
    let mut half_head = ca.connect_tls(addr).await;
    half_head.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n").as_bytes()).await.unwrap();
    half_head.flush().await.unwrap();
    let mut redirect_half_head = TcpStream::connect(redirect).await.unwrap();
    redirect_half_head.write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n").as_bytes()).await.unwrap();

    assert_dropped_after(&mut no_handshake, start, timeout, "a TLS connection without a handshake").await;
    assert_dropped_after(&mut half_head, start, timeout, "half a head over TLS").await;
    assert_dropped_after(&mut redirect_half_head, start, timeout, "half a head to the redirect").await;

    let base = format!("https://{HOST}:{}", addr.port());
    let answer = ca.https_client(addr).get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), 200, "complete requests are still answered");
    let plain =
        reqwest::Client::builder().resolve(HOST, redirect).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(plain.get(format!("http://{HOST}:{redirect_port}/")).send().await.unwrap().status(), 308);
}
