//! The site's pages carry the security headers (the API does not need
//! them), and its built files the caching their names allow.

use comms_core::config::Profile;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn pages_carry_a_content_security_policy_and_friends() {
    let app = spawn_app().await;
    let page = app.api().client.get(format!("{}/", app.api().base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| page.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let policy = header("content-security-policy").expect("a CSP");
    for directive in ["default-src 'self'", "'wasm-unsafe-eval'", "frame-ancestors 'none'", "connect-src 'self'"] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert_eq!(header("referrer-policy").as_deref(), Some("same-origin"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("strict-transport-security"), None, "no HSTS outside prod over https");
    assert_eq!(header(comms_app::SCRIPT_NONCE_HEADER), None, "the page's note to the server stays inside");
    let nonce = policy.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a script nonce");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the inline scripts carry the policy's nonce");
    let again = app.api().client.get(format!("{}/", app.api().base)).send().await.unwrap();
    let policy_again = again.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(!policy_again.contains(&format!("'nonce-{nonce}'")), "a new nonce for every page");

    let key = app.create_app("acme").await;
    let api = app.api().get("/api/v1/rooms", &key).await;
    assert!(api.headers().get("content-security-policy").is_none(), "the API is for programs");
}

#[tokio::test]
async fn production_over_https_adds_hsts() {
    let app = spawn_app_with(|config| {
        config.profile = Profile::Prod;
        config.server.public_url = "https://comms.example.com".into();
    })
    .await;
    let page = app.api().client.get(format!("{}/", app.api().base)).send().await.unwrap();
    let hsts = page.headers().get("strict-transport-security").expect("HSTS in prod over https");
    assert!(hsts.to_str().unwrap().starts_with("max-age="));
}

#[tokio::test]
async fn hashed_site_files_are_named_in_pages_and_content_named_ones_cached_for_good() {
    let site = tempfile::tempdir().unwrap();
    let (js, wasm, css) = ("jsjsjsjsjsjsjsjsjsjs-_", "wasmwasmwasmwasmwasm12", "csscsscsscsscsscsscss3");
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("hash.txt"), format!("js: {js}\nwasm: {wasm}\ncss: {css}\n")).unwrap();
    std::fs::write(site.path().join(format!("pkg/comms.{js}.js")), "// the bundle").unwrap();
    std::fs::write(site.path().join(format!("pkg/comms.{css}.css")), "body {}").unwrap();
    std::fs::write(site.path().join("pkg/plain.js"), "// no hash").unwrap();
    let app = spawn_app_with(|config| config.site.root = site.path().to_owned()).await;

    let page = app.api().client.get(format!("{}/", app.api().base)).send().await.unwrap().text().await.unwrap();
    for name in [format!("/pkg/comms.{css}.css"), format!("/pkg/comms.{js}.js"), format!("comms.{wasm}.wasm")] {
        assert!(page.contains(&name), "{name} in the page");
    }
    let cache_control = |path: String| {
        let client = app.api().client.clone();
        let url = format!("{}{path}", app.api().base);
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.headers()["cache-control"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(cache_control(format!("/pkg/comms.{css}.css")).await, "public, max-age=31536000, immutable");
    assert_eq!(cache_control(format!("/pkg/comms.{js}.js")).await, "no-cache", "rewritten after it was named");
    assert_eq!(cache_control("/pkg/plain.js".into()).await, "no-cache");
}
