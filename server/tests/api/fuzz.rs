//! Property tests of every parser a client reaches without an API key: the
//! WebSocket's client frames (the code is the only credential), endpoint
//! meta (the legacy query's too), names and emails, and the portal's
//! sign-up and login forms. Thousands of generated inputs, valid ones
//! mutated and plain garbage, from fixed seeds so a failure repeats: no
//! panic, no `500`, and the connection or server keeps working after.

use comms_core::config::LimitsConfig;
use comms_core::input::Meta;
use comms_core::names::RoomName;
use comms_protocol::ws::ClientFrame;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::helpers::{lobby_writer, spawn_app, spawn_app_with, Browser};

/// Valid inputs to start mutations from.
const SEEDS: &[&str] = &[
    r#"{"message": "hi"}"#,
    r#"{"message": {"x": [1, 2, {"y": null}]}, "extra": true}"#,
    r#"{"message": "\u0000\ud83d\ude00 é \\"}"#,
    r#"{"name": "Ann", "tags": ["a", "b"]}"#,
    "lobby",
    "dev@example.com",
];

/// An input: a seed with a few bytes changed, inserted or cut, nesting
/// piled up, or random text.
fn generate(rng: &mut StdRng) -> String {
    const PIECES: &[&str] =
        &["{", "}", "[", "]", "\"", "\\", ":", ",", "\u{0}", "é", "\u{1F600}", "null", "1e999", "-"];
    match rng.random_range(0..4) {
        0 => {
            let mut text: Vec<char> = SEEDS[rng.random_range(0..SEEDS.len())].chars().collect();
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..=text.len());
                match rng.random_range(0..3) {
                    0 if at < text.len() => {
                        text.remove(at);
                    }
                    _ => {
                        let piece = PIECES[rng.random_range(0..PIECES.len())];
                        text.splice(at..at, piece.chars());
                    }
                }
            }
            text.into_iter().collect()
        }
        1 => {
            let depth = rng.random_range(1..200);
            let (open, close) = if rng.random() { ("[", "]") } else { (r#"{"a":"#, "}") };
            format!(r#"{{"message": {}1{}}}"#, open.repeat(depth), close.repeat(depth))
        }
        2 => (0..rng.random_range(0..64)).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect(),
        _ => {
            let bytes: Vec<u8> = (0..rng.random_range(0..80)).map(|_| rng.random()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

#[test]
fn parsers_reachable_without_a_key_never_panic() {
    let mut rng = StdRng::seed_from_u64(14);
    let limits = LimitsConfig::default();
    for _ in 0..20_000 {
        let text = generate(&mut rng);
        let _ = ClientFrame::parse(&text);
        if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(&text) {
            if let Ok(meta) = Meta::parse(Some(&raw), &limits) {
                let value: Value = serde_json::from_str(meta.as_str()).expect("accepted meta reads back");
                assert!(value.is_object());
            }
        }
        let _ = RoomName::parse(&text);
        let _ = comms_core::accounts::normalize_email(&text);
    }
}

#[tokio::test]
async fn a_socket_answers_every_generated_frame_and_keeps_working() {
    let app = spawn_app().await;
    let mut ws = lobby_writer(&app).await;
    let mut rng = StdRng::seed_from_u64(15);
    for _ in 0..300 {
        let text = generate(&mut rng);
        ws.send_text(&text).await;
        let answer = ws.next_json().await;
        match answer["type"].as_str() {
            Some("message") => {}
            Some("error") => assert_ne!(answer["code"], "internal", "{text:?}: {answer}"),
            _ => panic!("{text:?} got {answer}"),
        }
    }
    ws.send_message(json!("still here")).await;
    assert_eq!(ws.next_message().await["message"], "still here");
}

#[tokio::test]
async fn generated_forms_and_legacy_meta_never_get_a_500() {
    let app = spawn_app_with(|config| config.portal.logins_per_minute = 1000).await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let browser = Browser::open(&app).await;
    let mut rng = StdRng::seed_from_u64(16);
    for _ in 0..100 {
        let (email, password) = (generate(&mut rng), generate(&mut rng));
        for path in ["/portal/fn/sign_up", "/portal/fn/log_in"] {
            let answer = browser.act_raw(path, &[("email", &email), ("password", &password)]).await;
            assert!(answer.status().as_u16() < 500, "{path} {email:?} {password:?}: {}", answer.status());
        }
        let meta = generate(&mut rng);
        let path = format!("/main/add_endpoint/lobby/read/?meta={}", urlencode(&meta));
        let answer = app.api().request(reqwest::Method::GET, &path, Some(&key)).send().await.unwrap();
        assert!(answer.status().as_u16() < 500, "meta {meta:?}: {}", answer.status());
    }
    let listed = app.api().request(reqwest::Method::GET, "/main/list_endpoints/lobby/", Some(&key)).send().await;
    assert_eq!(listed.unwrap().status(), 200, "whatever was stored reads back");
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|byte| format!("%{byte:02X}")).collect()
}
