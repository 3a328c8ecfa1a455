//! Security headers on the site's pages (not on the API, whose clients are
//! programs, nor on the WebSocket).
//!
//! - `Content-Security-Policy`: scripts, styles, images and fetches from this
//!   origin only, plus WebAssembly compilation for the site's wasm bundle
//!   and inline scripts for Leptos's hydration bootstrap; WebSockets to this
//!   origin and to `server.public_url`'s; no framing (`frame-ancestors
//!   'none'`), no plugins, forms posting only here.
//! - `Referrer-Policy: same-origin`: pages' paths (a demo room, an app's
//!   name) never leak to other sites.
//! - `X-Content-Type-Options: nosniff`, and `X-Frame-Options: DENY` for
//!   browsers older than `frame-ancestors`.
//! - `Strict-Transport-Security` in the `prod` profile when the public URL
//!   is `https://`: browsers then refuse plain HTTP for two years.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use comms_core::config::Config;

use crate::state::AppState;

/// The headers every page gets; computed once from the config.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    policy: HeaderValue,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// The headers for `config`.
    ///
    /// # Panics
    ///
    /// Never: `public_url` is validated to be a plain `http(s)://` URL.
    pub fn new(config: &Config) -> Self {
        let public = config.server.public_url.trim_end_matches('/');
        let public_ws = public
            .strip_prefix("https://")
            .map(|rest| format!(" wss://{rest}"))
            .or_else(|| public.strip_prefix("http://").map(|rest| format!(" ws://{rest}")))
            .unwrap_or_default();
        let policy = format!(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'{public_ws}; \
             frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
        );
        let hsts = (config.profile == "prod" && public.starts_with("https://"))
            .then(|| HeaderValue::from_static("max-age=63072000; includeSubDomains"));
        Self { policy: HeaderValue::from_str(&policy).expect("a validated public URL is a valid header"), hsts }
    }
}

/// Adds the headers to a page's response.
pub async fn add(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let security = &state.security_headers;
    headers.insert(CONTENT_SECURITY_POLICY, security.policy.clone());
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Some(hsts) = &security.hsts {
        headers.insert(STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_public_websocket_origin_and_hsts_is_for_prod_over_https() {
        let mut config = Config::default();
        let dev = SecurityHeaders::new(&config);
        assert!(dev.policy.to_str().unwrap().contains("connect-src 'self';"));
        assert!(dev.hsts.is_none());

        config.profile = "prod".into();
        config.server.public_url = "https://comms.example.com/".into();
        let prod = SecurityHeaders::new(&config);
        assert!(prod.policy.to_str().unwrap().contains("connect-src 'self' wss://comms.example.com;"));
        assert!(prod.hsts.is_some());
    }
}
