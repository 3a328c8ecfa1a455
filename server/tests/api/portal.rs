//! The developer portal and the admin area through their server functions,
//! called over HTTP as the browser calls them (form-encoded POSTs with the
//! session cookie): sessions and form tokens, who may see and change what,
//! and an admin's decisions taking effect at once; and the live connection
//! count's WebSocket, opened with the session cookie.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{spawn_app, spawn_app_with, Browser, TestApp, PASSWORD, WAIT};

async fn admin(app: &TestApp) -> Browser {
    let (account, password) = app.state().accounts.create_admin("admin@example.com").await.unwrap();
    let mut browser = Browser::open(app).await;
    browser.log_in(&account.email, &password).await.expect("the admin logs in");
    browser
}

#[tokio::test]
async fn login_rotates_the_session_and_the_cookies_are_http_only_and_lax() {
    let app = spawn_app().await;
    let response = app.api().client.post(format!("{}/portal/fn/session", app.api().base)).send().await.unwrap();
    let cookies: Vec<&str> = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(cookies.len(), 1, "a visitor gets the form cookie only, no session: {cookies:?}");
    assert!(cookies[0].starts_with("comms_form="), "{cookies:?}");
    assert!(cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Lax"), "{cookies:?}");
    assert!(!cookies[0].contains("Secure"), "plain http in development: {cookies:?}");

    let mut browser = Browser::open(&app).await;
    let visitor = browser.session_cookie().expect("the form cookie");
    assert!(!visitor.contains("comms_session"), "{visitor}");
    browser.sign_up_and_log_in("dev@example.com").await;
    let session = browser.refresh().await;
    assert_eq!(session["email"], "dev@example.com");
    let first = browser.session_cookie().unwrap();
    assert!(first.contains("comms_session="), "a session from login on: {first}");
    browser.act("/portal/fn/log_out", &[]).await.unwrap();
    assert!(!browser.session_cookie().unwrap().contains("comms_session"), "logging out ends it");
    assert_eq!(browser.refresh().await["email"], Value::Null);
    assert!(browser.call("/portal/fn/my_apps", &[]).await.unwrap_err().contains("sign in first"));
    browser.log_in("dev@example.com", PASSWORD).await.unwrap();
    let second = browser.session_cookie().unwrap();
    let session_id = |cookies: &str| cookies.split("; ").find(|c| c.starts_with("comms_session=")).map(str::to_owned);
    assert_ne!(session_id(&second), session_id(&first), "a new session id at each login");
    let set = app.api().client.post(format!("{}/portal/fn/log_in", app.api().base));
    let answer = set.form(&[("csrf", "x"), ("email", "a@b.c"), ("password", "p")]).send().await.unwrap();
    let cookie = answer.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(!cookie.contains("comms_session"), "a refused login makes no session: {cookie}");
}

#[tokio::test]
async fn secure_cookies_are_marked_secure() {
    let app = spawn_app_with(|config| config.portal.secure_cookies = true).await;
    let response = app.api().client.post(format!("{}/portal/fn/session", app.api().base)).send().await.unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("comms_form=") && cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn anonymous_visits_and_failed_logins_store_no_session() {
    let app = spawn_app().await;
    let sessions = || async {
        let url = format!("sqlite://{}?mode=ro", app.data_dir.path().join("comms.db").display());
        let pool = tower_sessions_sqlx_store::sqlx::SqlitePool::connect(&url).await.unwrap();
        let count: i64 = tower_sessions_sqlx_store::sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    };
    let mut browser = Browser::open(&app).await;
    for path in ["/portal", "/portal/login", "/admin", "/portal/confirm?token=x", "/portal/reset", "/portal/apps/x"] {
        let (status, _) = browser.page(path).await;
        assert!(status == 200 || status == 404, "{path}: {status}");
    }
    let anonymous = app.api().client.get(format!("{}/portal", app.api().base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 200);
    let wrong = browser.log_in("nobody@example.com", PASSWORD).await.unwrap_err();
    assert!(wrong.contains("wrong email or password"), "{wrong}");
    browser.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", PASSWORD)]).await.unwrap();
    browser.log_in("dev@example.com", "not the password").await.unwrap_err();
    browser.act("/portal/fn/request_password_reset", &[("email", "dev@example.com")]).await.unwrap();
    browser.call("/admin/fn/overview", &[]).await.unwrap_err();
    assert_eq!(sessions().await, 0, "nothing stored for visitors");

    browser.log_in("dev@example.com", PASSWORD).await.unwrap();
    assert_eq!(sessions().await, 1, "a session from login on");
}

#[tokio::test]
async fn state_changes_need_the_sessions_form_token() {
    let app = spawn_app().await;
    let mut browser = Browser::open(&app).await;
    browser.sign_up_and_log_in("dev@example.com").await;
    let forged = [("csrf", "guessed"), ("name", "x"), ("intended_use", "y"), ("description", ""), ("website", "")];
    let refused = browser.call("/portal/fn/register_app", &forged).await.unwrap_err();
    assert!(refused.contains("form has expired"), "{refused}");
    let missing = browser.call("/portal/fn/log_out", &[]).await.unwrap_err();
    assert!(!missing.is_empty());
    assert_eq!(browser.call("/portal/fn/my_apps", &[]).await.unwrap(), json!([]), "nothing was made");
}

#[tokio::test]
async fn sign_up_and_login_do_not_reveal_who_has_an_account() {
    let app = spawn_app().await;
    let mut browser = Browser::open(&app).await;
    let first = browser.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", PASSWORD)]).await;
    let again = browser.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", "another password")]);
    assert_eq!(first.unwrap(), again.await.unwrap(), "the same answer for a taken email");
    let unknown = browser.log_in("nobody@example.com", PASSWORD).await.unwrap_err();
    let wrong = browser.log_in("dev@example.com", "another password").await.unwrap_err();
    assert_eq!(unknown, wrong);
    assert!(wrong.contains("wrong email or password"));
    browser.log_in("dev@example.com", PASSWORD).await.expect("the first password still works");

    let short = browser.act("/portal/fn/sign_up", &[("email", "x@example.com"), ("password", "short")]).await;
    assert!(short.unwrap_err().contains("at least 10 characters"));
    let bad = browser.act("/portal/fn/sign_up", &[("email", "not an email"), ("password", PASSWORD)]).await;
    assert!(bad.unwrap_err().contains("valid email"));
}

#[tokio::test]
async fn logins_are_throttled_per_email() {
    let app = spawn_app_with(|config| config.portal.logins_per_minute = 3).await;
    let mut browser = Browser::open(&app).await;
    browser.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", PASSWORD)]).await.unwrap();
    for _ in 0..3 {
        assert!(browser.log_in("dev@example.com", "a wrong guess!").await.unwrap_err().contains("wrong"));
    }
    let throttled = browser.log_in("dev@example.com", PASSWORD).await.unwrap_err();
    assert!(throttled.contains("too many attempts"), "{throttled}");
    let answer = browser.act_raw("/portal/fn/log_in", &[("email", "dev@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(answer.status(), 429);
    let retry_after: u64 = answer.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let mut other = Browser::open(&app).await;
    other.sign_up_and_log_in("other@example.com").await;
}

#[tokio::test]
async fn sign_ups_share_the_per_client_limit() {
    // One login a minute per email, so five attempts a minute per client;
    // enough hashes at once that only the per-client limit refuses.
    let app = spawn_app_with(|config| {
        config.portal.logins_per_minute = 1;
        config.portal.max_concurrent_hashes = 16;
    })
    .await;
    let browser = Browser::open(&app).await;
    // All at once: the bucket refills one attempt every 12 s, which a slow
    // machine could reach between one-by-one sign-ups (each hashes).
    let emails: Vec<String> = (0..6).map(|n| format!("dev{n}@example.com")).collect();
    let attempts = emails.iter().map(|email| {
        let browser = &browser;
        async move { browser.act("/portal/fn/sign_up", &[("email", email.as_str()), ("password", PASSWORD)]).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let refused: Vec<&String> = results.iter().filter_map(|result| result.as_ref().err()).collect();
    assert_eq!(refused.len(), 1, "five sign-ups a minute per client: {results:?}");
    assert!(refused[0].contains("too many attempts"), "{}", refused[0]);
}

#[tokio::test]
async fn developers_cannot_see_or_change_each_others_apps() {
    let app = spawn_app().await;
    let mut alice = Browser::open(&app).await;
    alice.sign_up_and_log_in("alice@example.com").await;
    alice.register("alices-app").await.expect("register");
    let key = alice.issue_key("alices-app").await.expect("auto-approved in dev");
    alice.act("/portal/fn/create_room", &[("app", "alices-app"), ("room", "lobby")]).await.unwrap();
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let code = endpoint["code"].as_str().unwrap();

    let mut bob = Browser::open(&app).await;
    bob.sign_up_and_log_in("bob@example.com").await;
    assert_eq!(bob.call("/portal/fn/my_apps", &[]).await.unwrap(), json!([]));
    let not_found = "you have no app alices-app";
    let overview = bob.call("/portal/fn/app_overview", &[("app", "alices-app")]).await.unwrap_err();
    assert!(overview.contains(not_found), "{overview}");
    let attempts: [(&str, Vec<(&str, &str)>); 9] = [
        ("issue_key", vec![]),
        ("revoke_keys", vec![]),
        ("delete_app", vec![]),
        ("create_room", vec![("room", "mine")]),
        ("delete_room", vec![("room", "lobby")]),
        ("create_endpoint", vec![("room", "lobby"), ("permission", "read"), ("meta", "")]),
        ("delete_endpoint", vec![("room", "lobby"), ("code", code)]),
        (
            "update_endpoint",
            vec![
                ("room", "lobby"),
                ("change[code]", code),
                ("change[permission]", "moderate"),
                ("change[meta]", ""),
                ("change[expires_at]", ""),
                ("change[max_messages]", ""),
            ],
        ),
        ("redact_message", vec![("room", "lobby"), ("seq", "1")]),
    ];
    for (function, extra) in attempts {
        let mut form = vec![("app", "alices-app")];
        form.extend(extra);
        let refused = bob.act(&format!("/portal/fn/{function}"), &form).await.unwrap_err();
        assert!(refused.contains(not_found), "{function}: {refused}");
    }
    let nobody = Browser::open(&app).await;
    let refused = nobody.act("/portal/fn/issue_key", &[("app", "alices-app")]).await.unwrap_err();
    assert!(refused.contains("sign in first"));

    // Alice's app, key, room and endpoint are untouched.
    let rooms = crate::helpers::body(app.api().get("/api/v1/rooms", &key).await).await;
    assert_eq!(rooms["rooms"][0]["endpoint_count"], 1);
    let overview = alice.call("/portal/fn/app_overview", &[("app", "alices-app")]).await.unwrap();
    assert_eq!(overview["rooms"][0]["endpoints"][0]["code"], code);
    assert_eq!(overview["app"]["active_keys"], 1);
}

#[tokio::test]
async fn an_apps_page_shows_every_room_with_its_endpoints_online_counts_and_latest_messages() {
    let app = spawn_app().await;
    let mut dev = Browser::open(&app).await;
    dev.sign_up_and_log_in("dev@example.com").await;
    dev.register("game").await.unwrap();
    let key = dev.issue_key("game").await.unwrap();
    for room in ["a", "b", "quiet"] {
        app.api().create_room(&key, room).await;
    }
    let endpoints = [
        app.api().create_endpoint(&key, "b", "read", None).await,
        app.api().create_endpoint(&key, "a", "read_and_write", Some(json!({ "name": "Ann" }))).await,
        app.api().create_endpoint(&key, "b", "read_and_write", None).await,
    ];
    for n in 1..=12 {
        app.api().post("/api/v1/rooms/b/messages", &key, json!({ "message": { "n": n } })).await;
    }
    let _socket = app.api().connect_ws(endpoints[0]["code"].as_str().unwrap(), None).await;

    let overview = dev.call("/portal/fn/app_overview", &[("app", "game")]).await.unwrap();
    let rooms = overview["rooms"].as_array().unwrap();
    let names: Vec<&str> = rooms.iter().map(|room| room["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "quiet"], "oldest first");
    let codes =
        |room: &Value| room["endpoints"].as_array().unwrap().iter().map(|e| e["code"].clone()).collect::<Vec<_>>();
    assert_eq!(codes(&rooms[0]), [endpoints[1]["code"].clone()]);
    assert_eq!(codes(&rooms[1]), [endpoints[0]["code"].clone(), endpoints[2]["code"].clone()], "oldest first");
    assert_eq!(codes(&rooms[2]), Vec::<Value>::new());
    let ann = &rooms[0]["endpoints"][0];
    assert_eq!(
        (&ann["ws_url"], &ann["id"]),
        (&endpoints[1]["ws_url"], &endpoints[1]["id"]),
        "as the REST API has them"
    );
    assert_eq!((ann["permission"].as_str(), ann["meta"].as_str()), (Some("read_and_write"), Some(r#"{"name":"Ann"}"#)));
    let online: Vec<u64> = rooms.iter().map(|room| room["online"].as_u64().unwrap()).collect();
    assert_eq!(online, [0, 1, 0]);
    let seqs: Vec<u64> = rooms[1]["latest"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (3..=12).collect::<Vec<_>>(), "the newest ten, oldest first");
    assert_eq!(
        (rooms[1]["latest"][9]["message"].as_str(), rooms[1]["latest"][9]["sender"].as_str()),
        (Some(r#"{"n":12}"#), Some("app"))
    );
    assert_eq!(overview["app"]["rooms"], 3);
}

#[tokio::test]
async fn an_apps_page_changes_endpoints_live_and_redacts_messages() {
    let app = spawn_app().await;
    let mut dev = Browser::open(&app).await;
    dev.sign_up_and_log_in("dev@example.com").await;
    dev.register("game").await.unwrap();
    let key = dev.issue_key("game").await.unwrap();
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", Some(json!({ "name": "Ann" }))).await;
    let code = endpoint["code"].as_str().unwrap();
    let mut socket = app.api().connect_ws(code, None).await;
    assert_eq!(socket.next_json().await["type"], "welcome");
    socket.send_message(json!("hello")).await;
    assert_eq!(socket.next_json().await["message"], "hello");

    let edit = |permission: &'static str, expires_at: &'static str, max_messages: &'static str| {
        [
            ("app", "game"),
            ("room", "lobby"),
            ("change[code]", code),
            ("change[permission]", permission),
            ("change[meta]", r#"{"name": "Mod"}"#),
            ("change[expires_at]", expires_at),
            ("change[max_messages]", max_messages),
        ]
    };
    for (form, refusal) in [
        (edit("admin", "", ""), "permission"),
        (edit("moderate", "soon", ""), "expires_at must be an RFC 3339 time"),
        (edit("moderate", "", "-1"), "max_messages must be a whole number"),
    ] {
        let refused = dev.act("/portal/fn/update_endpoint", &form).await.unwrap_err();
        assert!(refused.contains(refusal), "{refused}");
    }
    dev.act("/portal/fn/update_endpoint", &edit("moderate", "2099-01-01T00:00:00Z", "5")).await.unwrap();
    let changed = socket.next_json().await;
    assert_eq!(changed["type"], "endpoint", "the open connection is told: {changed}");
    assert_eq!(
        (&changed["endpoint"]["permission"], &changed["endpoint"]["meta"]["name"]),
        (&json!("moderate"), &json!("Mod"))
    );

    let overview = dev.call("/portal/fn/app_overview", &[("app", "game")]).await.unwrap();
    let shown = &overview["rooms"][0]["endpoints"][0];
    assert_eq!(
        [&shown["permission"], &shown["expires_at"], &shown["max_messages"], &shown["messages_sent"], &shown["online"]],
        [&json!("moderate"), &json!("2099-01-01T00:00:00.000Z"), &json!(5), &json!(1), &json!(1)]
    );
    // Empty fields lift the limits again.
    dev.act("/portal/fn/update_endpoint", &edit("read_and_write", "", "")).await.unwrap();
    let overview = dev.call("/portal/fn/app_overview", &[("app", "game")]).await.unwrap();
    let shown = &overview["rooms"][0]["endpoints"][0];
    assert_eq!([&shown["expires_at"], &shown["max_messages"]], [&Value::Null, &Value::Null]);

    dev.act("/portal/fn/redact_message", &[("app", "game"), ("room", "lobby"), ("seq", "1")]).await.unwrap();
    loop {
        let frame = socket.next_json().await;
        if frame["type"] == "redaction" {
            assert_eq!(frame["seq"], 1);
            break;
        }
    }
    let overview = dev.call("/portal/fn/app_overview", &[("app", "game")]).await.unwrap();
    let latest = &overview["rooms"][0]["latest"][0];
    assert_eq!(latest["message"], "", "the payload is gone: {latest}");
    assert!(latest["redacted_at"].is_string(), "{latest}");
    let missing = dev.act("/portal/fn/redact_message", &[("app", "game"), ("room", "lobby"), ("seq", "99")]).await;
    assert!(missing.unwrap_err().contains("no message with seq 99"));
}

/// The webhook form as a browser without JavaScript posts it: one
/// `events[]` field per checked box.
#[tokio::test]
async fn the_webhook_form_works_without_javascript() {
    let app = spawn_app().await;
    let mut dev = Browser::open(&app).await;
    dev.sign_up_and_log_in("dev@example.com").await;
    dev.register("game").await.unwrap();
    let key = dev.issue_key("game").await.unwrap();
    let url = "http://127.0.0.1:9/hook";
    let form = [("app", "game"), ("url", url), ("events[]", "room.created"), ("events[]", "message.created")];
    let created = dev.act("/portal/fn/create_webhook", &form).await.unwrap();
    assert!(created["secret"].as_str().is_some_and(|secret| secret.starts_with("whsec_")), "{created}");
    let listed: Value = app.api().get("/api/v1/webhooks", &key).await.json().await.unwrap();
    let webhook = &listed["webhooks"][0];
    assert_eq!((&webhook["url"], &webhook["events"]), (&json!(url), &json!(["room.created", "message.created"])));

    let unchecked = dev.act("/portal/fn/create_webhook", &[("app", "game"), ("url", url)]).await.unwrap_err();
    assert!(unchecked.contains("events"), "no box checked is refused with the API's message: {unchecked}");
    let listed: Value = app.api().get("/api/v1/webhooks", &key).await.json().await.unwrap();
    assert_eq!(listed["webhooks"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn non_admins_cannot_reach_admin_actions() {
    let app = spawn_app().await;
    let mut dev = Browser::open(&app).await;
    dev.sign_up_and_log_in("dev@example.com").await;
    dev.register("devs-app").await.unwrap();
    assert!(dev.call("/admin/fn/overview", &[]).await.unwrap_err().contains("admins only"));
    let refused = dev.act("/admin/fn/set_status", &[("app", "devs-app"), ("status", "suspended")]).await;
    assert!(refused.unwrap_err().contains("admins only"));
    let anonymous = Browser::open(&app).await;
    assert!(anonymous.call("/admin/fn/overview", &[]).await.unwrap_err().contains("sign in first"));
    let apps = dev.call("/portal/fn/my_apps", &[]).await.unwrap();
    assert_eq!(apps[0]["status"], "approved", "nothing changed");
}

#[tokio::test]
async fn apps_wait_for_an_admin_whose_decisions_apply_at_once() {
    let app = spawn_app_with(|config| config.portal.auto_approve = false).await;
    let mut dev = Browser::open(&app).await;
    dev.sign_up_and_log_in("dev@example.com").await;
    assert_eq!(dev.register("game").await.unwrap(), "game");
    assert_eq!(dev.call("/portal/fn/my_apps", &[]).await.unwrap()[0]["status"], "pending");
    assert!(dev.issue_key("game").await.unwrap_err().contains("only approved apps"));

    let admin = admin(&app).await;
    let overview = admin.call("/admin/fn/overview", &[]).await.unwrap();
    assert_eq!(overview["apps"][0]["owner"], "dev@example.com");
    admin.act("/admin/fn/set_status", &[("app", "game"), ("status", "approved")]).await.unwrap();
    let key = dev.issue_key("game").await.expect("approved now");
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut socket = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    socket.next_json().await;

    admin.act("/admin/fn/set_status", &[("app", "game"), ("status", "suspended")]).await.unwrap();
    assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 403, "the key stops at once");
    let closed = socket.closed().await;
    assert_eq!(closed.code, 4003, "{closed:?}");
    assert_eq!(app.api().ws_refusal(endpoint["code"].as_str().unwrap()).await, 404);

    admin.act("/admin/fn/set_status", &[("app", "game"), ("status", "approved")]).await.unwrap();
    assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 200, "reinstated");
    let bad = admin.act("/admin/fn/set_status", &[("app", "game"), ("status", "pending")]).await;
    assert!(bad.unwrap_err().contains("status must be"));

    let audit = admin.call("/admin/fn/overview", &[]).await.unwrap()["audit"].clone();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().rev().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["requested", "approved", "key_issued", "suspended", "reinstated"]);
    assert_eq!(audit[0]["actor"], "admin@example.com");
}

#[tokio::test]
async fn developers_rotate_revoke_and_delete_their_apps() {
    let app = spawn_app().await;
    let mut dev = Browser::open(&app).await;
    dev.sign_up_and_log_in("dev@example.com").await;
    dev.register("game").await.unwrap();
    assert!(dev.register("game").await.unwrap_err().contains("already exists"));
    let bad_site = [("name", "other"), ("description", ""), ("website", "javascript:alert(1)"), ("intended_use", "x")];
    assert!(dev.act("/portal/fn/register_app", &bad_site).await.unwrap_err().contains("http"));

    let first = dev.issue_key("game").await.unwrap();
    let second = dev.issue_key("game").await.unwrap();
    assert_eq!(app.api().get("/api/v1/rooms", &first).await.status(), 403, "rotation revokes the old key");
    assert_eq!(app.api().get("/api/v1/rooms", &second).await.status(), 200);
    dev.act("/portal/fn/revoke_keys", &[("app", "game")]).await.unwrap();
    assert_eq!(app.api().get("/api/v1/rooms", &second).await.status(), 403);

    let key = dev.issue_key("game").await.unwrap();
    dev.act("/portal/fn/create_room", &[("app", "game"), ("room", "lobby")]).await.unwrap();
    let meta = [("app", "game"), ("room", "lobby"), ("permission", "read_and_write"), ("meta", r#"{"name": "Ann"}"#)];
    dev.act("/portal/fn/create_endpoint", &meta).await.unwrap();
    let not_object = [("app", "game"), ("room", "lobby"), ("permission", "read"), ("meta", "[1]")];
    assert!(dev.act("/portal/fn/create_endpoint", &not_object).await.unwrap_err().contains("JSON object"));
    let overview = dev.call("/portal/fn/app_overview", &[("app", "game")]).await.unwrap();
    let endpoint = &overview["rooms"][0]["endpoints"][0];
    assert_eq!(endpoint["meta"], r#"{"name": "Ann"}"#);
    assert!(endpoint["ws_url"].as_str().unwrap().starts_with("ws://127.0.0.1:"));

    let mut socket = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    socket.next_json().await;
    socket.send_message(json!("hello")).await;
    socket.next_message().await;
    let overview = dev.call("/portal/fn/app_overview", &[("app", "game")]).await.unwrap();
    assert_eq!(overview["rooms"][0]["online"], 1);
    assert_eq!(overview["rooms"][0]["latest"][0]["message"], "\"hello\"");
    for n in 2..=150 {
        app.api().post("/api/v1/rooms/lobby/messages", &key, json!({"message": n})).await;
    }
    let overview = dev.call("/portal/fn/app_overview", &[("app", "game")]).await.unwrap();
    let seqs: Vec<u64> =
        overview["rooms"][0]["latest"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (141..=150).collect::<Vec<_>>(), "the newest ten, beyond the first page of history");

    dev.act("/portal/fn/delete_app", &[("app", "game")]).await.unwrap();
    assert_eq!(socket.closed().await.code, 4002, "its rooms' sockets close");
    assert_eq!(app.api().get("/api/v1/rooms", &key).await.status(), 403);
    assert_eq!(dev.call("/portal/fn/my_apps", &[]).await.unwrap(), json!([]));
}

/// Opens `/portal/live/{app}` with `cookie`; the socket, or the status of
/// the refused upgrade.
async fn live_count(
    app: &TestApp,
    name: &str,
    cookie: Option<String>,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, u16> {
    let mut request = format!("ws://{}/portal/live/{name}", app.api().addr).into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("{err}"),
    }
}

/// The next count the live socket sends.
async fn next_count(socket: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> u64 {
    let frame = tokio::time::timeout(WAIT, socket.next()).await.expect("a count in time").unwrap().unwrap();
    frame.to_text().unwrap().parse().expect("a number")
}

#[tokio::test]
async fn the_live_count_is_for_the_apps_developer_only_capped_and_reads_no_large_frames() {
    let app = spawn_app_with(|config| config.portal.live_counts_per_account = 2).await;
    let mut alice = Browser::open(&app).await;
    alice.sign_up_and_log_in("alice@example.com").await;
    alice.register("alices-app").await.unwrap();
    let key = alice.issue_key("alices-app").await.unwrap();
    alice.act("/portal/fn/create_room", &[("app", "alices-app"), ("room", "lobby")]).await.unwrap();
    let mut bob = Browser::open(&app).await;
    bob.sign_up_and_log_in("bob@example.com").await;

    assert_eq!(live_count(&app, "alices-app", None).await.err(), Some(403), "no session");
    assert_eq!(live_count(&app, "alices-app", bob.session_cookie()).await.err(), Some(404), "not bob's app");
    let mut live = live_count(&app, "alices-app", alice.session_cookie()).await.expect("alice's own app");
    assert_eq!(next_count(&mut live).await, 0);
    let mut tabs = Vec::new();
    for _ in 1..2 {
        tabs.push(live_count(&app, "alices-app", alice.session_cookie()).await.expect("another tab"));
    }
    assert_eq!(live_count(&app, "alices-app", alice.session_cookie()).await.err(), Some(403), "over the cap");
    drop(tabs);
    let deadline = std::time::Instant::now() + WAIT;
    let reopened = loop {
        match live_count(&app, "alices-app", alice.session_cookie()).await {
            Ok(socket) => break socket,
            Err(status) => assert!(std::time::Instant::now() < deadline, "never given back: {status}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    drop(reopened);
    let endpoint = app.api().create_endpoint(&key, "lobby", "read", None).await;
    let _reader = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    assert_eq!(next_count(&mut live).await, 1, "sent again when it changes");

    live.send(tungstenite::Message::text("x".repeat(2048))).await.unwrap();
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(Ok(frame)) = live.next().await {
            if let tungstenite::Message::Close(close) = frame {
                return close.map(|close| u16::from(close.code));
            }
        }
        None
    })
    .await
    .expect("ended in time");
    assert!(matches!(ended, Some(1009) | None), "a frame over 1 KiB ends it: {ended:?}");
}
