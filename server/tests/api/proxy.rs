//! Behind a proxy: forwarding headers decide `wss://` URLs and `Secure`
//! cookies only when the peer is in `server.trusted_proxies`.

use comms_core::forwarded::TrustedProxies;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{body, spawn_app, spawn_app_with, Browser, TestApp, PASSWORD};

const VIA_HTTPS: [(&str, &str); 3] =
    [("x-forwarded-proto", "https"), ("x-forwarded-host", "comms.example.com"), ("x-forwarded-for", "203.0.113.7")];

async fn ws_url_through_proxy(app: &TestApp) -> String {
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let mut request = app.api().request(Method::POST, "/api/v1/rooms/lobby/endpoints", Some(&key));
    for (name, value) in VIA_HTTPS {
        request = request.header(name, value);
    }
    let endpoint = body(request.json(&json!({ "permission": "read" })).send().await.unwrap()).await;
    endpoint["ws_url"].as_str().expect("a ws_url").to_owned()
}

/// The cookie a visitor gets (the signed form cookie; sessions come at
/// login, through the same middleware).
async fn visitor_cookie_through_proxy(app: &TestApp) -> String {
    let mut request = app.api().client.post(format!("{}/portal/fn/session", app.api().base));
    for (name, value) in VIA_HTTPS {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success());
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    cookies.into_iter().find(|cookie| cookie.starts_with("comms_form=")).expect("a form cookie")
}

#[tokio::test]
async fn a_trusted_proxy_decides_wss_and_the_public_host() {
    let app =
        spawn_app_with(|config| config.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap()).await;
    let url = ws_url_through_proxy(&app).await;
    assert!(url.starts_with("wss://comms.example.com/ws/endpoint/"), "{url}");
    let cookie = visitor_cookie_through_proxy(&app).await;
    assert!(cookie.contains("; Secure"), "HTTPS at the proxy makes the cookie Secure: {cookie}");
}

#[tokio::test]
async fn forwarding_headers_from_anyone_else_are_ignored() {
    let app = spawn_app().await;
    let url = ws_url_through_proxy(&app).await;
    assert!(url.starts_with(&format!("ws://{}/ws/endpoint/", app.api().addr)), "{url}");
    let cookie = visitor_cookie_through_proxy(&app).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
}

/// Five sign-ups a minute per client (`logins_per_minute = 1`): five from
/// one client behind the proxy, then one from another.
async fn sign_up_of_a_second_client(trusted: bool) -> Result<serde_json::Value, String> {
    let app = spawn_app_with(|config| {
        config.portal.logins_per_minute = 1;
        // Enough hashes at once that only the per-client limit refuses.
        config.portal.max_concurrent_hashes = 16;
        if trusted {
            config.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        }
    })
    .await;
    let browser = Browser::open(&app).await;
    let emails: Vec<String> = (0..5).map(|n| format!("dev{n}@example.com")).collect();
    let first_client = emails.iter().map(|email| {
        let browser = &browser;
        async move {
            let form = [("email", email.as_str()), ("password", PASSWORD)];
            browser.act_from(Some("203.0.113.1"), "/portal/fn/sign_up", &form).await
        }
    });
    for result in futures_util::future::join_all(first_client).await {
        result.expect("within the first client's five");
    }
    let form = [("email", "other@example.com"), ("password", PASSWORD)];
    browser.act_from(Some("203.0.113.2"), "/portal/fn/sign_up", &form).await
}

#[tokio::test]
async fn per_client_limits_count_the_forwarded_client_only_behind_a_trusted_proxy() {
    sign_up_of_a_second_client(true).await.expect("another client behind the proxy has its own limit");
    let spoofed = sign_up_of_a_second_client(false).await.expect_err("a header from anyone else changes nothing");
    assert!(spoofed.contains("too many attempts"), "{spoofed}");
}

#[tokio::test]
async fn a_guesser_does_not_lock_the_owner_out_from_another_address() {
    let app = spawn_app_with(|config| {
        config.portal.logins_per_minute = 2;
        config.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let browser = Browser::open(&app).await;
    let owner = [("email", "owner@example.com"), ("password", PASSWORD)];
    browser.act_from(Some("198.51.100.7"), "/portal/fn/sign_up", &owner).await.unwrap();
    let guess = [("email", "owner@example.com"), ("password", "a wrong guess!")];
    for _ in 0..2 {
        let wrong = browser.act_from(Some("203.0.113.66"), "/portal/fn/log_in", &guess).await.unwrap_err();
        assert!(wrong.contains("wrong"), "{wrong}");
    }
    let throttled = browser.act_from(Some("203.0.113.66"), "/portal/fn/log_in", &owner).await.unwrap_err();
    assert!(throttled.contains("too many attempts"), "the guesser's address is throttled: {throttled}");
    browser.act_from(Some("198.51.100.7"), "/portal/fn/log_in", &owner).await.expect("the owner logs in from home");
}
