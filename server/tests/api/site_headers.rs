//! The site's pages carry the security headers; the API does not need them.

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn pages_carry_a_content_security_policy_and_friends() {
    let app = spawn_app().await;
    let page = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| page.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let policy = header("content-security-policy").expect("a CSP");
    for directive in ["default-src 'self'", "'wasm-unsafe-eval'", "frame-ancestors 'none'", "connect-src 'self'"] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert_eq!(header("referrer-policy").as_deref(), Some("same-origin"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("strict-transport-security"), None, "no HSTS outside prod over https");

    let key = app.create_app("acme").await;
    let api = app.get("/api/v1/rooms", &key).await;
    assert!(api.headers().get("content-security-policy").is_none(), "the API is for programs");
}

#[tokio::test]
async fn production_over_https_adds_hsts() {
    let app = spawn_app_with(|config| {
        config.profile = "prod".into();
        config.server.public_url = "https://comms.example.com".into();
    })
    .await;
    let page = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    let hsts = page.headers().get("strict-transport-security").expect("HSTS in prod over https");
    assert!(hsts.to_str().unwrap().starts_with("max-age="));
}
