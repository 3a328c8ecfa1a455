//! Browser origins: CORS on the API, and the per-app allow-lists of origins
//! the REST API, the legacy API and the WebSocket check (any origin until
//! an app lists some).

use comms_core::origins::AllowedOrigins;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app, spawn_app_with, Browser, TestApp};

const PAGE: &str = "https://chat.example.com";
const ELSEWHERE: &str = "https://elsewhere.example.net";

/// An app with a room and a `read_and_write` endpoint; its key and the code.
async fn app_with_endpoint(app: &TestApp, name: &str) -> (String, String) {
    let key = app.create_app(name).await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    (key, endpoint["code"].as_str().unwrap().to_owned())
}

async fn allow(app: &TestApp, name: &str, origins: &[&str]) {
    let record = app.apps().find(name).await.unwrap();
    let origins = AllowedOrigins::parse(origins.iter().copied()).unwrap();
    app.apps().set_allowed_origins(&record, origins, "test").await.unwrap();
}

async fn get_from(app: &TestApp, path: &str, key: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = app.api().request(Method::GET, path, Some(key));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn preflights_from_any_origin_are_answered() {
    let app = spawn_app().await;
    for path in ["/api/v1/rooms", "/api/v1/rooms/lobby/endpoints", "/main/create_room/lobby/", "/api/v1/openapi.json"] {
        let response = app
            .api()
            .client
            .request(Method::OPTIONS, format!("{}{path}", app.api().base))
            .header("origin", ELSEWHERE)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-api-key, content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("x-api-key") && allowed.contains("authorization"), "{path}: {allowed}");
        assert!(allowed.contains("idempotency-key"), "a browser may retry a publish safely: {allowed}");
        assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("DELETE"), "{path}");
    }
}

#[tokio::test]
async fn apps_without_a_list_accept_every_origin() {
    let app = spawn_app().await;
    let (key, code) = app_with_endpoint(&app, "open").await;
    let response = get_from(&app, "/api/v1/rooms", &key, Some(ELSEWHERE)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(get_from(&app, "/main/list_rooms/", &key, Some("null")).await.status(), 200);
    let mut socket = app.api().connect_ws_from(&code, Some(ELSEWHERE)).await.expect("any origin may connect");
    assert_eq!(socket.next_json().await["type"], "welcome");
}

#[tokio::test]
async fn a_listed_app_refuses_other_pages_on_the_api_at_once() {
    let app = spawn_app().await;
    let (key, _) = app_with_endpoint(&app, "listed").await;
    assert_eq!(get_from(&app, "/api/v1/rooms", &key, Some(ELSEWHERE)).await.status(), 200, "cached as allowed");
    allow(&app, "listed", &[PAGE, "http://localhost:3000"]).await;

    let refused = get_from(&app, "/api/v1/rooms", &key, Some(ELSEWHERE)).await;
    assert_eq!(refused.headers()["access-control-allow-origin"], "*", "the page can read why");
    assert_error(refused, 403, "forbidden").await;
    assert_error(get_from(&app, "/api/v1/rooms", &key, Some("null")).await, 403, "forbidden").await;
    let legacy = get_from(&app, "/main/list_rooms/", &key, Some(ELSEWHERE)).await;
    assert_eq!(legacy.status(), 403);
    let legacy = body(legacy).await;
    assert_eq!((legacy["status"].as_str(), legacy["error"]["code"].as_str()), (Some("failure"), Some("forbidden")));

    for allowed in [Some(PAGE), Some("https://CHAT.example.com:443"), Some("http://localhost:3000"), None] {
        assert_eq!(get_from(&app, "/api/v1/rooms", &key, allowed).await.status(), 200, "{allowed:?}");
    }
    let created = app
        .api()
        .request(Method::POST, "/api/v1/rooms", Some(&key))
        .header("origin", PAGE)
        .json(&json!({"name": "from-the-page"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn a_listed_app_refuses_sockets_from_other_pages() {
    let app = spawn_app().await;
    let (_, code) = app_with_endpoint(&app, "sockets").await;
    allow(&app, "sockets", &["https://*.example.com"]).await;

    assert_eq!(app.api().connect_ws_from(&code, Some(ELSEWHERE)).await.err(), Some(403));
    assert_eq!(app.api().connect_ws_from(&code, Some("https://example.com")).await.err(), Some(403), "not the apex");
    assert_eq!(app.api().connect_ws_from("no-such-code", Some(PAGE)).await.err(), Some(404));
    let own_site = format!("http://{}", app.api().addr);
    for origin in [Some(PAGE), None, Some(own_site.as_str())] {
        let mut socket = app.api().connect_ws_from(&code, origin).await.expect("an allowed page connects");
        assert_eq!(socket.next_json().await["type"], "welcome", "{origin:?}");
    }

    allow(&app, "sockets", &[]).await;
    assert!(app.api().connect_ws_from(&code, Some(ELSEWHERE)).await.is_ok(), "an emptied list allows any again");
}

#[tokio::test]
async fn developers_set_their_apps_origins_in_the_portal() {
    let app = spawn_app().await;
    let mut developer = Browser::open(&app).await;
    developer.sign_up_and_log_in("dev@example.com").await;
    developer.register("mine").await.unwrap();
    let set = |origins: &'static str| {
        let developer = &developer;
        async move { developer.act("/portal/fn/set_allowed_origins", &[("app", "mine"), ("origins", origins)]).await }
    };

    let saved = set("HTTPS://Chat.Example.com/\nhttp://localhost:3000, https://chat.example.com").await.unwrap();
    assert_eq!(saved, json!([PAGE, "http://localhost:3000"]), "normalized, each once");
    let overview = developer.call("/portal/fn/app_overview", &[("app", "mine")]).await.unwrap();
    assert_eq!(overview["app"]["allowed_origins"], saved);

    let refused = set("chat.example.com").await.unwrap_err();
    assert!(refused.contains("is not an origin"), "{refused}");
    let form = [("app", "mine"), ("origins", "chat.example.com")];
    assert_eq!(developer.act_raw("/portal/fn/set_allowed_origins", &form).await.status(), 400, "bad input, not a 500");
    assert_eq!(app.apps().find("mine").await.unwrap().allowed_origins.entries(), [PAGE, "http://localhost:3000"]);

    assert_eq!(set("  ").await.unwrap(), json!([]), "empty allows any");
    assert!(app.apps().find("mine").await.unwrap().allowed_origins.allows_any());

    let mut other = Browser::open(&app).await;
    other.sign_up_and_log_in("other@example.com").await;
    let foreign = other.act("/portal/fn/set_allowed_origins", &[("app", "mine"), ("origins", PAGE)]).await;
    assert!(foreign.unwrap_err().contains("you have no app mine"));
    assert_eq!(
        other.act_raw("/portal/fn/set_allowed_origins", &[("app", "mine"), ("origins", PAGE)]).await.status(),
        404
    );
    let signed_out = Browser::open(&app).await;
    assert_eq!(
        signed_out.act_raw("/portal/fn/set_allowed_origins", &[("app", "mine"), ("origins", "")]).await.status(),
        403
    );
    assert!(app.apps().find("mine").await.unwrap().allowed_origins.allows_any());
}

#[tokio::test]
async fn the_public_sites_own_pages_may_open_a_listed_apps_sockets() {
    let app = spawn_app_with(|config| config.server.public_url = "https://comms.example.com".into()).await;
    let (_, code) = app_with_endpoint(&app, "public").await;
    allow(&app, "public", &[PAGE]).await;
    let mut socket =
        app.api().connect_ws_from(&code, Some("https://comms.example.com")).await.expect("comms' own site");
    assert_eq!(socket.next_json().await["type"], "welcome");
    let request_host = format!("http://{}", app.api().addr);
    assert_eq!(
        app.api().connect_ws_from(&code, Some(&request_host)).await.err(),
        Some(403),
        "public_url names the site"
    );
}
