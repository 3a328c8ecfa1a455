//! Health, readiness, metrics and unknown routes.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use comms_core::forwarded::TrustedProxies;

use crate::helpers::{assert_error, body, spawn_app, spawn_app_with, WAIT};

#[tokio::test]
async fn health_and_readiness_need_no_key() {
    let app = spawn_app().await;
    let health = app.api().request(Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.api().request(Method::GET, "/readyz", None).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(body(ready).await["status"], "ready");
}

#[tokio::test]
async fn metrics_answer_allowed_addresses_and_the_token_only() {
    let app = spawn_app_with(|config| {
        config.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        config.metrics.bearer_token = "scrape-me".into();
    })
    .await;
    let from = |client: &str| app.api().request(Method::GET, "/metrics", None).header("x-forwarded-for", client);
    assert_eq!(app.api().request(Method::GET, "/metrics", None).send().await.unwrap().status(), 200, "loopback");
    assert_error(from("203.0.113.5").send().await.unwrap(), 403, "forbidden").await;
    let wrong = from("203.0.113.5").header("authorization", "Bearer scrape-you").send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    let right = from("203.0.113.5").header("authorization", "Bearer scrape-me").send().await.unwrap();
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn metrics_count_connections_and_messages() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut ws = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    ws.next_json().await;
    ws.send_message(json!("hi")).await;
    ws.next_message().await;

    let response = app.api().request(Method::GET, "/metrics", None).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in ["comms_connections 1", "comms_live_rooms 1", "comms_messages_in_total 1", "comms_messages_out_total 1"]
    {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("comms_http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("route=\"/api/v1/rooms\""), "{text}");
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = spawn_app().await;
    let response = app.api().request(Method::GET, "/api/v1/nothing-here", None).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_rest_route() {
    let app = spawn_app().await;
    let response = app.api().request(Method::GET, "/api/v1/openapi.json", None).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let document = body(response).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/rooms", &["get", "post"][..]),
        ("/api/v1/rooms/{room}", &["get", "delete"]),
        ("/api/v1/rooms/{room}/endpoints", &["get", "post"]),
        ("/api/v1/rooms/{room}/endpoints/{code}", &["delete"]),
        ("/api/v1/rooms/{room}/messages", &["get", "post"]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path} missing");
        }
    }
    let schemas = &document["components"]["schemas"];
    for schema in ["Room", "Endpoint", "Message", "ErrorBody"] {
        assert!(schemas[schema].is_object(), "schema {schema} missing");
    }
    assert_eq!(document["components"]["securitySchemes"]["api_key"]["name"], "X-API-Key");
}

#[tokio::test]
async fn the_landing_page_needs_no_key() {
    let app = spawn_app().await;
    for path in ["/", "/main/", "/main"] {
        let response = app.api().request(Method::GET, path, None).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = response.text().await.unwrap();
        assert!(page.contains("<title>comms — real-time rooms for your app</title>"), "{page}");
        assert!(page.contains("Quickstart"), "{page}");
    }
}

#[tokio::test]
async fn unknown_pages_get_the_site_404_page() {
    let app = spawn_app().await;
    let response = app.api().request(Method::GET, "/no-such-page", None).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("Not found"));
}

#[tokio::test]
async fn the_docs_pages_render_and_unknown_ones_are_404() {
    let app = spawn_app().await;
    for (path, expected) in [
        ("/docs", "Quickstart"),
        ("/docs/concepts", "Endpoint."),
        ("/docs/rest", "<code>POST /api/v1/rooms/{room}/endpoints</code>"),
        ("/docs/protocol", "<h3 id=\"close-codes\">Close codes</h3>"),
        ("/docs/protocol", "after_seq"),
        ("/docs/protocol", "/main/create_room/{room}/"),
        ("/docs/configuration", "max_message_bytes"),
    ] {
        let response = app.api().request(Method::GET, path, None).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains(expected), "{path} lacks {expected:?}");
        assert!(page.contains("aria-label=\"Documentation\""), "{path} has the menu");
    }
    let response = app.api().request(Method::GET, "/docs/no-such-page", None).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_old_websocket_and_legacy_docs_pages_lead_to_the_protocol_reference() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(WAIT).build().unwrap();
    for (old, new) in [("/docs/websocket", "/docs/protocol#websocket"), ("/docs/legacy", "/docs/protocol#legacy-api")] {
        let response = client.get(format!("{}{old}", app.api().base)).send().await.unwrap();
        assert_eq!(response.status(), 308, "{old}");
        assert_eq!(response.headers()["location"], new);
    }
}

#[tokio::test]
async fn the_browser_gets_a_docs_pages_html_from_the_server() {
    // The wasm ships the menu only; after a link, it asks for the page.
    let app = spawn_app().await;
    let response = app.api().request(Method::GET, "/docs/fn/page?slug=concepts", None).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html: String = response.json().await.unwrap();
    assert!(html.contains("Endpoint."), "{html}");
    let unknown = app.api().request(Method::GET, "/docs/fn/page?slug=no-such-page", None).send().await.unwrap();
    assert!(!unknown.status().is_success());
}

#[tokio::test]
async fn the_demo_is_made_at_start_and_its_bot_posts() {
    let mut app = crate::helpers::spawn_app_with(|config| {
        config.demo.enabled = true;
        config.demo.bot_interval = Duration::from_secs(1);
    })
    .await;
    let key = app.rotate_key("demo").await;
    let rooms = body(app.api().get("/api/v1/rooms", &key).await).await;
    let names: Vec<_> = rooms["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lobby", "quiet"]);
    let endpoints = body(app.api().get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    let metas: Vec<_> = endpoints["endpoints"].as_array().unwrap().iter().map(|e| e["meta"]["name"].clone()).collect();
    assert_eq!(metas, [json!("Ann"), json!("Bob"), json!("Watcher"), json!("Moderator")]);
    assert_eq!(endpoints["endpoints"][3]["permission"], "moderate");

    let page = app.api().request(Method::GET, "/demo", None).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for endpoint in endpoints["endpoints"].as_array().unwrap() {
        assert!(page.contains(endpoint["code"].as_str().unwrap()), "the demo page shows every code");
    }

    let mut ws = app.api().connect_ws(endpoints["endpoints"][2]["code"].as_str().unwrap(), None).await;
    ws.next_json().await;
    let message = ws.next_message().await;
    assert_eq!(message["sender"], json!({ "id": "app", "meta": { "name": "demo bot" } }));

    // A restart keeps the demo as it is instead of adding to it.
    app.stop().await;
    let app = app.restart().await;
    let key = app.rotate_key("demo").await;
    let endpoints = body(app.api().get("/api/v1/rooms/lobby/endpoints", &key).await).await;
    assert_eq!(endpoints["endpoints"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_demo_page_says_when_the_demo_is_off() {
    let app = spawn_app().await;
    let page = app.api().request(Method::GET, "/demo", None).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("the demo is off on this server"), "{page}");
}

#[tokio::test]
async fn throwaway_rooms_are_bounded_and_expire() {
    use comms_core::config::DemoConfig;
    use comms_core::demo::{spawn_sweeper, Throwaways, THROWAWAY_PREFIX};

    let app = crate::helpers::spawn_app_with(|config| config.demo.enabled = true).await;
    let service = app.state().service.clone();
    let demo = app.state().demo.get().expect("the demo runs").app.clone();
    let throwaways =
        Throwaways::new(&DemoConfig { max_throwaway_rooms: 2, throwaways_per_minute: 10, ..DemoConfig::default() });
    let first = throwaways.create(&service, &demo).await.unwrap();
    assert!(first.room.starts_with(THROWAWAY_PREFIX));
    assert_ne!(first.writer, first.reader);
    throwaways.create(&service, &demo).await.unwrap();
    assert!(throwaways.create(&service, &demo).await.is_err(), "at most two at once");

    let sweeper = spawn_sweeper(service.clone(), demo.clone(), std::time::Duration::from_millis(300));
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    sweeper.abort();
    let rooms = service.list_rooms(&demo).await.unwrap();
    assert!(rooms.iter().all(|room| !room.name.starts_with(THROWAWAY_PREFIX)), "expired rooms are deleted");
    assert!(rooms.iter().any(|room| room.name == "lobby"), "the demo's own rooms stay");
}

/// The throwaway rooms `demo_rooms` lists to `visitor`.
async fn throwaways_seen_by(visitor: &crate::helpers::Browser) -> Vec<String> {
    let rooms = visitor.call("/demo/fn/demo_rooms", &[]).await.expect("the demo lists its rooms");
    let names = rooms.as_array().unwrap().iter().map(|room| room["name"].as_str().unwrap().to_owned());
    names.filter(|name| name.starts_with(comms_core::demo::THROWAWAY_PREFIX)).collect()
}

#[tokio::test]
async fn a_visitor_sees_only_the_throwaway_rooms_they_made() {
    use crate::helpers::Browser;

    let app = crate::helpers::spawn_app_with(|config| config.demo.enabled = true).await;
    let (ann, bob) = (Browser::open(&app).await, Browser::open(&app).await);
    let made = ann.call("/demo/fn/create_throwaway_room", &[]).await.unwrap();
    let room = made["room"].as_str().unwrap().to_owned();
    let second = ann.call("/demo/fn/create_throwaway_room", &[]).await.unwrap()["room"].as_str().unwrap().to_owned();
    assert_eq!(throwaways_seen_by(&ann).await, [room.clone(), second], "the maker sees both");
    assert!(throwaways_seen_by(&bob).await.is_empty(), "nobody else sees them, nor their codes");
    let listed = bob.call("/demo/fn/demo_rooms", &[]).await.unwrap().to_string();
    assert!(!listed.contains(made["writer"].as_str().unwrap()), "the write code is not shown to others");
    assert!(listed.contains("lobby"), "the demo's own rooms are shown to all");
}

#[tokio::test]
async fn the_maker_of_a_throwaway_room_invites_a_guest_once() {
    use crate::helpers::Browser;
    use comms_core::demo::INVITES_PER_MINUTE;

    let app = crate::helpers::spawn_app_with(|config| config.demo.enabled = true).await;
    let (maker, stranger) = (Browser::open(&app).await, Browser::open(&app).await);
    let made = maker.call("/demo/fn/create_throwaway_room", &[]).await.unwrap();
    let room = made["room"].as_str().unwrap();

    let refused = stranger.call("/demo/fn/create_invite", &[("room", room)]).await.unwrap_err();
    assert!(refused.contains("only the visitor who made"), "{refused}");
    let refused = maker.call("/demo/fn/create_invite", &[("room", "lobby")]).await.unwrap_err();
    assert!(refused.contains("only the visitor who made"), "the demo's own rooms take no invites: {refused}");

    let invite = maker.call("/demo/fn/create_invite", &[("room", room)]).await.unwrap();
    let code = invite["code"].as_str().unwrap();
    let expires_at = comms_core::input::parse_time("expires_at", invite["expires_at"].as_str().unwrap()).unwrap();
    let left = Duration::from_millis(u64::try_from(expires_at - comms_core::time::now_ms()).unwrap());
    assert!(left > Duration::from_secs(9 * 60) && left <= Duration::from_secs(10 * 60), "{left:?}");
    let mut guest = app.api().connect_ws(code, None).await;
    let welcome = guest.next_json().await;
    assert_eq!(welcome["room"], room);
    let endpoint = &welcome["endpoint"];
    assert_eq!((&endpoint["permission"], &endpoint["meta"]["name"]), (&json!("read_and_write"), &json!("Guest")));
    guest.send_message(json!("hi")).await;
    let message = guest.next_json().await;
    let demo = app.state().demo.get().expect("the demo runs").app.clone();
    let room_name = comms_core::names::RoomName::parse(room).unwrap();
    let endpoints = app.state().service.list_endpoints(&demo, &room_name).await.unwrap();
    let writer = endpoints.iter().find(|endpoint| endpoint.code == made["writer"].as_str().unwrap()).unwrap();
    assert_eq!(message["sender"]["parent"], writer.public_id.as_str(), "a child of the writer: {message}");
    assert_eq!(app.api().connect_ws_from(code, None).await.err(), Some(404), "the invite works once");

    // A minute's worth at once (one more if a slow machine let the bucket
    // refill meanwhile), then no more.
    let mut made = 1;
    let refused = loop {
        match maker.call("/demo/fn/create_invite", &[("room", room)]).await {
            Ok(_) => made += 1,
            Err(refused) => break refused,
        }
        assert!(made <= INVITES_PER_MINUTE + 1, "the rate holds");
    };
    assert!(made >= INVITES_PER_MINUTE, "{made} invites before the limit");
    assert!(refused.contains("try again in a minute"), "{refused}");
}

#[tokio::test]
async fn the_throwaway_cap_and_rate_hold_under_concurrent_clicks() {
    use crate::helpers::Browser;

    let app = crate::helpers::spawn_app_with(|config| {
        config.demo.enabled = true;
        config.demo.max_throwaway_rooms = 3;
        config.demo.throwaways_per_minute = 1000;
    })
    .await;
    let visitor = Browser::open(&app).await;
    let clicks = (0..20).map(|_| visitor.call("/demo/fn/create_throwaway_room", &[]));
    let made = futures_util::future::join_all(clicks).await.into_iter().filter(Result::is_ok).count();
    assert_eq!(made, 3, "max_throwaway_rooms holds");

    let app = crate::helpers::spawn_app_with(|config| {
        config.demo.enabled = true;
        config.demo.max_throwaway_rooms = 100;
        config.demo.throwaways_per_minute = 2;
    })
    .await;
    let visitor = Browser::open(&app).await;
    let clicks = (0..20).map(|_| visitor.call("/demo/fn/create_throwaway_room", &[]));
    let made = futures_util::future::join_all(clicks).await.into_iter().filter(Result::is_ok).count();
    assert_eq!(made, 2, "throwaways_per_minute holds");
}
