//! The README's quickstart, run as written: its `curl` lines against a real
//! server, and its WebSocket transcript compared with the frames the server
//! sends. The site's landing page and `/docs/quickstart` show the same
//! samples (they are generated from the README), so this keeps all three
//! from rotting. The browser snippet is run by the Playwright suite.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, WAIT};

/// The README's `## Quickstart` section.
fn quickstart() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let start = readme.find("\n## Quickstart\n").expect("README has a Quickstart section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |end| end + 3);
    section[..end].to_owned()
}

/// The lines of the section's fenced blocks of `language`, with `\`
/// continuations joined.
fn block_lines(section: &str, language: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            inside = !inside && line == format!("```{language}");
            continue;
        }
        if !inside {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    lines
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|object| object.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn readme_quickstart_curl_lines_work_as_written() {
    let app = spawn_app().await;
    let key = app.create_app("myapp").await;
    let section = quickstart();
    let commands: Vec<String> =
        block_lines(&section, "sh").into_iter().filter(|line| line.trim_start().starts_with("curl ")).collect();
    assert!(commands.len() >= 5, "the quickstart shows its curl lines: {commands:?}");

    let mut answers = Vec::new();
    for command in &commands {
        let command = command.replace("localhost:3000", &app.addr.to_string());
        // tokio's Command: the server runs on this test's thread and must
        // keep serving while curl waits for it.
        let run = tokio::process::Command::new("bash").arg("-c").arg(&command).env("KEY", &key).output();
        let output = tokio::time::timeout(WAIT, run).await.expect("curl finishes").expect("bash runs curl");
        assert!(output.status.success(), "{command}: {}", String::from_utf8_lossy(&output.stderr));
        let answer: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("{command} answered non-JSON ({err}): {:?}", output.stdout));
        assert!(answer.get("error").is_none(), "{command} failed: {answer}");
        answers.push(answer);
    }
    let writer = answers.iter().find(|a| a["permission"] == "read_and_write").expect("a writer endpoint was made");
    assert_eq!(writer["meta"], json!({"name": "Ann"}));
    let history = answers.last().expect("the history was read");
    assert_eq!(history["messages"][0]["message"], json!({"text": "hi from the server"}));
}

#[tokio::test]
async fn readme_websocket_transcript_matches_the_frames_sent() {
    let app = spawn_app().await;
    let key = app.create_app("myapp").await;
    app.create_room(&key, "lobby").await;
    let endpoint = app.create_endpoint(&key, "lobby", "read_and_write", Some(json!({"name": "Ann"}))).await;
    let shown: Vec<Value> = block_lines(&quickstart(), "sh")
        .iter()
        .filter_map(|line| line.split('←').next().and_then(|json| serde_json::from_str(json.trim()).ok()))
        .collect();
    let [welcome, typed, message] = shown.as_slice() else { panic!("the transcript has three frames: {shown:?}") };

    let mut ws = app.connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    let sent_welcome = ws.next_json().await;
    assert_eq!(keys(&sent_welcome), keys(welcome));
    assert_eq!(keys(&sent_welcome["endpoint"]), keys(&welcome["endpoint"]));
    ws.send_text(&typed.to_string()).await;
    let sent_message = ws.next_message().await;
    assert_eq!(keys(&sent_message), keys(message));
    assert_eq!(keys(&sent_message["sender"]), keys(&message["sender"]));
    assert_eq!(sent_message["message"], message["message"]);
    assert_eq!(sent_message["sender"]["meta"], message["sender"]["meta"]);
}
