//! The `comms` binary's commands, run as a user would run them.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::{spawn_app, until_key_status, WAIT};

pub(crate) fn comms(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_comms"))
        .args(args)
        .current_dir(data_dir)
        .env("COMMS_DATA_DIR", data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run comms")
}

fn json_lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn app_commands_create_list_rotate_and_suspend() {
    let dir = tempfile::tempdir().unwrap();
    let created = json_lines(&comms(dir.path(), &["app", "create", "acme"]));
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["name"], "acme");
    let key = created[0]["api_key"].as_str().unwrap();
    assert!(key.len() >= 43);

    let duplicate = comms(dir.path(), &["app", "create", "acme"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    assert!(!comms(dir.path(), &["app", "create", "bad name"]).status.success());

    let listed = json_lines(&comms(dir.path(), &["app", "list"]));
    assert_eq!(listed[0]["name"], "acme");
    assert_eq!(listed[0]["status"], "approved");

    let rotated = json_lines(&comms(dir.path(), &["app", "rotate-key", "acme"]));
    assert_ne!(rotated[0]["api_key"].as_str().unwrap(), key);

    let suspended = json_lines(&comms(dir.path(), &["app", "suspend", "acme"]));
    assert_eq!(suspended[0]["status"], "suspended");
    assert_eq!(json_lines(&comms(dir.path(), &["app", "list"]))[0]["status"], "suspended");
    assert!(!comms(dir.path(), &["app", "suspend", "nobody"]).status.success());
}

#[test]
fn app_origins_are_listed_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    json_lines(&comms(dir.path(), &["app", "create", "acme"]));
    assert_eq!(json_lines(&comms(dir.path(), &["app", "list"]))[0]["allowed_origins"], serde_json::json!([]));

    let set =
        json_lines(&comms(dir.path(), &["app", "origins", "acme", "https://Acme.example", "https://*.acme.example"]));
    let listed = serde_json::json!(["https://acme.example", "https://*.acme.example"]);
    assert_eq!(set[0]["allowed_origins"], listed);
    assert_eq!(json_lines(&comms(dir.path(), &["app", "list"]))[0]["allowed_origins"], listed);

    let bad = comms(dir.path(), &["app", "origins", "acme", "acme.example"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an origin"));
    assert!(!comms(dir.path(), &["app", "origins", "acme"]).status.success(), "origins or --any");
    assert!(!comms(dir.path(), &["app", "origins", "acme", "--any", "https://a.example"]).status.success());

    let cleared = json_lines(&comms(dir.path(), &["app", "origins", "acme", "--any"]));
    assert_eq!(cleared[0]["allowed_origins"], serde_json::json!([]));
}

#[test]
fn migrate_and_print_config() {
    let dir = tempfile::tempdir().unwrap();
    json_lines(&comms(dir.path(), &["migrate"]));
    assert!(dir.path().join("comms.db").exists());

    std::fs::write(dir.path().join("comms.toml"), "[limits]\nmax_page_size = 42\n").unwrap();
    let output = comms(dir.path(), &["serve", "--print-config", "--addr", "127.0.0.1:4567"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("max_page_size = 42"), "{printed}");
    assert!(printed.contains("addr = \"127.0.0.1:4567\""), "{printed}");
    assert!(printed.contains(&format!("data_dir = {:?}", dir.path().display().to_string())), "{printed}");

    std::fs::write(dir.path().join("comms.toml"), "[limits]\nno_such_key = 1\n").unwrap();
    let output = comms(dir.path(), &["serve", "--print-config"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no_such_key"));
}

#[test]
fn every_section_is_read_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_comms"))
        .args(["serve", "--print-config"])
        .current_dir(dir.path())
        .env("COMMS_DATA_DIR", dir.path())
        .env("COMMS_QUOTAS__SOCKETS_PER_IP", "7")
        .env("COMMS_LIMITS__MAX_PAGE_SIZE", "42")
        .output()
        .expect("run comms");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("sockets_per_ip = 7"), "{printed}");
    assert!(printed.contains("max_page_size = 42"), "{printed}");
}

/// Runs `comms` against a running test server's data folder.
pub(crate) async fn comms_beside(app: &crate::helpers::TestApp, args: &'static [&'static str]) -> Vec<Value> {
    let dir = app.data_dir.path().to_owned();
    let output = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || comms(&dir, args)))
        .await
        .expect("the command finishes in time")
        .unwrap();
    json_lines(&output)
}

#[tokio::test]
async fn cli_key_changes_apply_to_a_running_server_within_a_poll() {
    let app = spawn_app().await;
    let key = comms_beside(&app, &["app", "create", "live"]).await[0]["api_key"].as_str().unwrap().to_owned();
    assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 200);

    let rotated = comms_beside(&app, &["app", "rotate-key", "live"]).await[0]["api_key"].as_str().unwrap().to_owned();
    until_key_status(app.api(), &key, 403).await;
    assert_eq!(app.api().get("/api/v1/rooms", &rotated).await.status(), 200);

    comms_beside(&app, &["app", "suspend", "live"]).await;
    until_key_status(app.api(), &rotated, 403).await;
    comms_beside(&app, &["app", "approve", "live"]).await;
    until_key_status(app.api(), &rotated, 200).await;
}

#[tokio::test]
async fn the_bare_binary_serves() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_comms"))
        .current_dir(dir.path())
        .env("COMMS_DATA_DIR", dir.path())
        .env("COMMS_SERVER__ADDR", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let healthy = async {
        loop {
            if client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, healthy).await.expect("the bare binary serves");
    server.kill().await.unwrap();
}

#[test]
fn admin_create_prints_a_password_once_and_refuses_a_second_account() {
    let dir = tempfile::tempdir().unwrap();
    let created = json_lines(&comms(dir.path(), &["admin", "create", "Root@Example.com"]));
    assert_eq!(created[0]["email"], "root@example.com", "emails are stored lower-case");
    assert!(created[0]["password"].as_str().unwrap().len() >= 20);
    let again = comms(dir.path(), &["admin", "create", "root@example.com"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has an account"));
    assert!(!comms(dir.path(), &["admin", "create", "not-an-email"]).status.success());
}

#[test]
fn check_config_says_what_serve_would_do_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("comms.toml"),
        "profile = \"prod\"\n[server]\npublic_url = \"https://comms.example.com\"\n[demo]\nenabled = false\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_comms"))
        .arg("check-config")
        .current_dir(dir.path())
        // Nothing listens there: check-config must not try.
        .env("DATABASE_URL", "postgres://comms:secret@127.0.0.1:1/comms")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .expect("run comms");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let plan: Value = serde_json::from_slice(&output.stdout).expect("a JSON plan");
    assert_eq!(plan["database"]["kind"], "postgresql");
    assert_eq!(plan["database"]["url"], "postgres://comms:***@127.0.0.1:1/comms", "no password shown");
    assert_eq!(plan["broker"]["kind"], "redis");
    assert_eq!(plan["ws_url"], "wss://comms.example.com/ws/endpoint/{code}/");
    assert_eq!(plan["app_approval"], "automatic");
    assert!(plan["warnings"].to_string().contains("auto_approve"), "{plan}");

    let refused = Command::new(env!("CARGO_BIN_EXE_comms"))
        .arg("check-config")
        .current_dir(dir.path())
        .env("REDIS_URL", "redis://127.0.0.1:6379")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run comms");
    assert!(!refused.status.success(), "Redis with SQLite is refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs a PostgreSQL database.url"));
}
