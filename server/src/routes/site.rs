//! The site: Leptos pages rendered on the server (and hydrated by the wasm
//! bundle) with their server functions, the files cargo-leptos builds
//! (served from `site.root`), and an HTML 404 page for any other path
//! outside the APIs.
//!
//! The pages and server functions run inside the portal's session layer:
//! an HttpOnly, `SameSite=Lax` cookie (`Secure` with
//! `portal.secure_cookies`) naming a session stored in the database, made
//! at login only; a visitor's form token is in a signed cookie of its own
//! ([`crate::form_cookie`]). The REST API and the WebSocket stay outside
//! both.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use comms_app::pages::demo::DemoContext;
use comms_app::pages::portal::guards::PortalContext;
use comms_app::{shell, App};
use comms_core::forwarded::ClientAddr;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_sessions::cookie::time::Duration;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::error::ApiError;
use crate::extract::client_addr;
use crate::form_cookie;
use crate::security_headers;
use crate::state::AppState;

/// The site's page routes.
pub fn router(state: &AppState) -> Router<AppState> {
    let options = state.leptos.clone();
    let for_server_functions = state.clone();
    let portal = PortalContext {
        accounts: Arc::clone(&state.accounts),
        portal: Arc::clone(&state.portal),
        apps: Arc::clone(&state.apps),
        service: state.service.clone(),
        server: Arc::new(state.config.server.clone()),
        limits: Arc::new(state.config.limits.clone()),
    };
    // Server functions reach the services through these contexts.
    let contexts = move || {
        provide_context(portal.clone());
        if let Some(demo) = for_server_functions.demo.get() {
            provide_context(DemoContext {
                service: for_server_functions.service.clone(),
                app: demo.app.clone(),
                throwaways: Arc::clone(&demo.throwaways),
            });
        }
    };
    let config = &state.config.portal;
    let sessions = SessionManagerLayer::new(state.sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(Duration::try_from(config.session_lifetime).unwrap_or(Duration::DAY)));
    Router::new()
        .leptos_routes_with_context(state, generate_route_list(App), contexts, move || shell(options.clone()))
        .route("/portal/live/{app}", get(crate::live_count::connect))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(state.clone(), form_cookie::attach))
        .layer(axum::middleware::from_fn(secure_cookies_over_https))
        .layer(axum::middleware::from_fn_with_state(state.clone(), resolve_client_addr))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security_headers::add))
        // The original server's home was `/main/`.
        .route("/main/", get(|| async { Redirect::permanent("/main") }))
        .route("/portal/", get(|| async { Redirect::permanent("/portal") }))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        // Pages that became sections of the protocol reference.
        .route("/docs/websocket", get(|| async { Redirect::permanent("/docs/protocol#websocket") }))
        .route("/docs/legacy", get(|| async { Redirect::permanent("/docs/protocol#legacy-api") }))
}

/// Resolves where the request comes from (see [`client_addr`]) once,
/// into the request's extensions, where the middleware below and the
/// portal's server functions (throttling, endpoints' URLs) read it.
async fn resolve_client_addr(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let client = client_addr(&parts, &state.config.server);
    parts.extensions.insert(client);
    next.run(Request::from_parts(parts, body)).await
}

/// Marks cookies `Secure` when the client came over HTTPS through a
/// trusted proxy, even with `portal.secure_cookies` off: such a cookie must
/// never travel over plain HTTP afterwards.
async fn secure_cookies_over_https(request: Request<Body>, next: Next) -> Response {
    let https = request.extensions().get::<ClientAddr>().is_some_and(|client| client.https);
    let mut response = next.run(request).await;
    if https {
        let cookies: Vec<HeaderValue> = response.headers().get_all(SET_COOKIE).iter().cloned().collect();
        response.headers_mut().remove(SET_COOKIE);
        for cookie in cookies {
            let text = cookie.to_str().unwrap_or_default();
            let secured = if text.is_empty() || text.to_ascii_lowercase().contains("; secure") {
                cookie
            } else {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            };
            response.headers_mut().append(SET_COOKIE, secured);
        }
    }
    response
}

/// Name of the portal's session cookie.
pub const SESSION_COOKIE: &str = "comms_session";

/// Anything no route matched: JSON for the API and WebSocket paths, else a
/// file of the built site (with its caching rule), else the site's 404 page.
pub async fn fallback(State(state): State<AppState>, uri: Uri, request: Request<Body>) -> Response {
    let path = uri.path().to_owned();
    if path.starts_with("/api/") || path.starts_with("/ws/") {
        return ApiError::not_found("no such route").into_response();
    }
    let mut response = leptos_axum::file_and_error_handler::<AppState, _>(shell)(uri, State(state), request).await;
    if response.status().is_success() && path.starts_with("/pkg/") {
        response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(pkg_cache_control(&path)));
    }
    response
}

/// How long browsers may keep a file of `/pkg/` (nginx serves the same
/// rules, see `deploy/nginx.conf`): for good when its name is the hash of
/// its final content, else they ask again each time (a cheap 304).
///
/// cargo-leptos (`hash-files`) names the entry script, the main wasm and
/// the lazy routes' manifest *before* it rewrites the names inside them,
/// so those can change under the same name; only the stylesheet, the
/// split loader and the lazy routes' chunks are named by what they hold.
fn pkg_cache_control(path: &str) -> &'static str {
    let Some((prefix, hash, extension)) = path.strip_prefix("/pkg/").and_then(split_hashed_name) else {
        return REVALIDATE;
    };
    let named_by_content = !prefix.contains('/')
        && hash.len() == CONTENT_HASH_CHARS
        && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && match extension {
            "css" => prefix == "comms",
            "js" => prefix == "__wasm_split",
            "wasm" => prefix.starts_with("chunk_") || prefix.starts_with("split_"),
            _ => false,
        };
    if named_by_content {
        "public, max-age=31536000, immutable"
    } else {
        REVALIDATE
    }
}

/// `name.hash.ext` as its three parts.
fn split_hashed_name(file: &str) -> Option<(&str, &str, &str)> {
    let (stem, extension) = file.rsplit_once('.')?;
    let (prefix, hash) = stem.rsplit_once('.')?;
    Some((prefix, hash, extension))
}

/// Cached, but checked with the server before each use.
const REVALIDATE: &str = "no-cache";

/// Length of cargo-leptos's content hashes (an MD5, base64url).
const CONTENT_HASH_CHARS: usize = 22;

#[cfg(test)]
mod tests {
    use super::pkg_cache_control;

    #[test]
    fn only_files_named_by_their_final_content_are_kept_for_good() {
        let forever = "public, max-age=31536000, immutable";
        for kept in [
            "/pkg/comms.djLoCLZJ5rHPM4uR8Y8qvA.css",
            "/pkg/__wasm_split.1VVTRgCfrZwl1cdVksEabQ.js",
            "/pkg/chunk_4.VtTuKKG9kbE2TWlBU5fXrw.wasm",
            "/pkg/split___portal_route_view_15266673097338141445.EEJG5yIqF5mlT6AwYKRUUw.wasm",
        ] {
            assert_eq!(pkg_cache_control(kept), forever, "{kept}");
        }
        for revalidated in [
            "/pkg/comms.2UlNX2Q4dSvQkhp7Ef7JSA.js",
            "/pkg/comms.DuZYdXnecxfUXe_drX8keA.wasm",
            "/pkg/__wasm_split_manifest.8xSpR89IugzV568dR4bX4A.json",
            "/pkg/comms.wasm",
            "/pkg/comms.css",
            "/pkg/snippets/chunk_1.VtTuKKG9kbE2TWlBU5fXrw.wasm",
        ] {
            assert_eq!(pkg_cache_control(revalidated), "no-cache", "{revalidated}");
        }
    }
}
