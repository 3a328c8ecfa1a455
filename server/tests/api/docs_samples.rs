//! The README's samples, run as written: the quickstart's `curl` lines
//! against a real server, its WebSocket transcript compared with the frames
//! the server sends, and the scaling section's two nodes started as real
//! processes. The site's landing page and `/docs/quickstart` show the same
//! samples (they are generated from the README), so this keeps all three
//! from rotting. The browser snippet is run by the Playwright suite.

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;

use comms_testkit::postgres::TestDatabase;
use comms_testkit::redis::TestRedis;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, wait_ready, WsClient, WAIT};

/// A `## TITLE` section of the README.
fn readme_section(title: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let start = readme.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("README has a {title} section"));
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |end| end + 3);
    section[..end].to_owned()
}

fn quickstart() -> String {
    readme_section("Quickstart")
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
        let command = command.replace("localhost:3000", &app.api().addr.to_string());
        let answer = run_line(&command, &key).await;
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
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({"name": "Ann"}))).await;
    let shown: Vec<Value> = block_lines(&quickstart(), "sh")
        .iter()
        .filter_map(|line| line.split('←').next().and_then(|json| serde_json::from_str(json.trim()).ok()))
        .collect();
    let [welcome, typed, message] = shown.as_slice() else { panic!("the transcript has three frames: {shown:?}") };

    let mut ws = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
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

/// Runs a shell line of the README with `KEY` set; its stdout as JSON.
/// tokio's `Command`: an in-process server runs on the test's thread and
/// must keep serving while curl waits for it.
async fn run_line(line: &str, key: &str) -> Value {
    let run = tokio::process::Command::new("bash").arg("-c").arg(line).env("KEY", key).output();
    let output = tokio::time::timeout(WAIT, run).await.expect("finishes in time").expect("bash runs");
    assert!(output.status.success(), "{line}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| panic!("{line} answered non-JSON ({err})"))
}

#[tokio::test]
async fn readme_scaling_section_runs_two_nodes_as_one() {
    let Some(database) = TestDatabase::create().await else { return };
    let Some(redis) = TestRedis::connect().await else { return };
    let work = tempfile::tempdir().unwrap();
    let lines = block_lines(&readme_section("Scaling out"), "sh");
    let exports = lines.iter().find(|line| line.contains("DATABASE_URL=")).expect("the section sets DATABASE_URL");
    assert!(exports.contains("REDIS_URL="), "and REDIS_URL: {exports}");
    let bin = env!("CARGO_BIN_EXE_comms");
    let environment = [
        ("DATABASE_URL", database.url()),
        ("REDIS_URL", redis.url()),
        ("COMMS_BROKER__KEY_PREFIX", redis.prefix()),
        ("COMMS_DATA_DIR", work.path().to_str().unwrap()),
        ("COMMS_DEMO__ENABLED", "false"),
    ];
    // The README's ports, mapped to free ones.
    let mut ports: HashMap<String, String> = HashMap::new();
    let local = |line: &str, ports: &HashMap<String, String>| {
        let mut line = line.replace("./target/release/comms", bin);
        for (shown, free) in ports {
            line = line.replace(&format!("localhost:{shown}"), &format!("127.0.0.1:{free}"));
        }
        line
    };

    let mut nodes = Vec::new();
    let mut key = String::new();
    let mut answers = Vec::new();
    let mut socket: Option<WsClient> = None;
    for line in &lines {
        if let Some(rest) = line.split(" serve --addr 127.0.0.1:").nth(1) {
            let shown: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
            let addr = format!("127.0.0.1:{free}");
            let node = tokio::process::Command::new(bin)
                .args(["serve", "--addr", &addr])
                .envs(environment)
                .current_dir(work.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start a node");
            wait_ready(&addr).await;
            ports.insert(shown, free);
            nodes.push(node);
        } else if line.contains(" app create ") {
            let command = local(line, &ports);
            let run = tokio::process::Command::new("bash").arg("-c").arg(&command).envs(environment).output();
            let output = tokio::time::timeout(WAIT, run).await.expect("in time").expect("comms runs");
            let created: Value = serde_json::from_slice(&output.stdout).expect("app create prints JSON");
            key = created["api_key"].as_str().expect("an API key").to_owned();
        } else if line.trim_start().starts_with("curl ") {
            answers.push(run_line(&local(line, &ports), &key).await);
        } else if line.trim_start().starts_with("websocat ") {
            let code = answers.iter().rev().find_map(|a| a["code"].as_str()).expect("an endpoint was made first");
            let url = local(line, &ports).split_whitespace().nth(1).expect("websocat URL").replace("<code>", code);
            let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket to the second node");
            let mut client = WsClient { stream };
            assert_eq!(client.next_json().await["type"], "welcome");
            socket = Some(client);
        }
    }
    assert_eq!(nodes.len(), 2, "the section starts two nodes");
    let mut socket = socket.expect("the section opens a socket");
    let message = socket.next_message().await;
    assert_eq!((message["seq"].as_u64(), &message["message"]), (Some(1), &json!("via node A")));
    let published = answers.last().expect("the section publishes");
    assert_eq!(published["seq"], 1, "{published}");
}

/// Every module of the Rust crates (and every folder of modules one level
/// down) is named in the README's Layout table, so a newcomer finds each
/// one there and a new module cannot be added without saying what it is.
#[test]
fn the_layout_names_every_module() {
    let layout = readme_section("Layout");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let folders = [
        "protocol/src",
        "core/src",
        "core/src/store",
        "core/src/broker",
        "server/src",
        "server/src/routes",
        "testkit/src",
        "app/src/pages",
        "app/src/pages/portal",
    ];
    let mut missing = Vec::new();
    for folder in folders {
        for entry in std::fs::read_dir(format!("{root}/{folder}")).expect("a source folder") {
            let path = entry.expect("a folder entry").path();
            let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else { continue };
            let is_module = path.is_dir() || path.extension().is_some_and(|ext| ext == "rs");
            if !is_module || ["lib", "main", "mod", "tests"].contains(&stem) {
                continue;
            }
            if !["`{stem}`", "`{stem}/`", "`{stem}.rs`"]
                .iter()
                .any(|form| layout.contains(&form.replace("{stem}", stem)))
            {
                missing.push(format!("{folder}/{stem}"));
            }
        }
    }
    assert!(missing.is_empty(), "README's Layout does not name: {missing:?}");
}
