//! Security headers on the site's pages (not on the API, whose clients are
//! programs, nor on the WebSocket).
//!
//! - `Content-Security-Policy`: scripts, styles, images and fetches from this
//!   origin only, plus WebAssembly compilation for the site's wasm bundle
//!   and the inline scripts Leptos writes (the hydration bootstrap, streamed
//!   resources), named by the response's nonce (`'unsafe-inline'` stays for
//!   browsers without nonces: the others ignore it next to a nonce);
//!   WebSockets to this origin and to `server.public_url`'s; no framing
//!   (`frame-ancestors 'none'`), no plugins, forms posting only here.
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
use comms_app::SCRIPT_NONCE_HEADER;
use comms_core::config::{Config, Profile};

use crate::state::AppState;

/// The headers every page gets; computed once from the config, but for
/// the script nonce each page brings.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    /// `connect-src` beyond `'self'`: the public URL's WebSocket origin.
    public_ws: String,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// The headers for `config`.
    pub fn new(config: &Config) -> Self {
        let public = config.server.public_url.trim_end_matches('/');
        let public_ws = public
            .strip_prefix("https://")
            .map(|rest| format!(" wss://{rest}"))
            .or_else(|| public.strip_prefix("http://").map(|rest| format!(" ws://{rest}")))
            .unwrap_or_default();
        let hsts = (config.profile == Profile::Prod && public.starts_with("https://"))
            .then(|| HeaderValue::from_static("max-age=63072000; includeSubDomains"));
        Self { public_ws, hsts }
    }

    /// The policy of a page whose inline scripts carry `nonce`, if any.
    fn policy(&self, nonce: Option<&str>) -> Option<HeaderValue> {
        let nonce = nonce.map(|nonce| format!(" 'nonce-{nonce}'")).unwrap_or_default();
        let public_ws = &self.public_ws;
        let policy = format!(
            "default-src 'self'; script-src 'self'{nonce} 'unsafe-inline' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'{public_ws}; \
             frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
        );
        HeaderValue::from_str(&policy).ok()
    }
}

/// Adds the headers to a page's response.
pub async fn add(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let security = &state.security_headers;
    let nonce = headers.remove(SCRIPT_NONCE_HEADER);
    // Only a nonce of base64 characters reaches the policy; anything else
    // (it cannot happen: Leptos makes it) leaves the policy without one.
    let nonce = nonce.as_ref().and_then(|value| value.to_str().ok()).filter(|nonce| {
        nonce.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
    });
    if let Some(policy) = security.policy(nonce) {
        headers.insert(CONTENT_SECURITY_POLICY, policy);
    }
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
        let policy = dev.policy(None).unwrap();
        assert!(policy.to_str().unwrap().contains("connect-src 'self';"));
        assert!(dev.hsts.is_none());
        let with_nonce = dev.policy(Some("abc+/=")).unwrap();
        assert!(with_nonce.to_str().unwrap().contains("script-src 'self' 'nonce-abc+/=' 'unsafe-inline'"));

        config.profile = Profile::Prod;
        config.server.public_url = "https://comms.example.com/".into();
        let prod = SecurityHeaders::new(&config);
        assert!(prod.policy(None).unwrap().to_str().unwrap().contains("connect-src 'self' wss://comms.example.com;"));
        assert!(prod.hsts.is_some());
    }
}
