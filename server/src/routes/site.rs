//! The site: Leptos pages rendered on the server (and hydrated by the wasm
//! bundle), the files cargo-leptos builds (served from `site.root`), and an
//! HTML 404 page for any other path outside the APIs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use comms_app::pages::demo::DemoContext;
use comms_app::{shell, App};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::error::ApiError;
use crate::state::AppState;

/// The site's page routes.
pub fn router(state: &AppState) -> Router<AppState> {
    let options = state.leptos.clone();
    let for_server_functions = state.clone();
    // The demo's server functions reach the service through this context.
    let demo_context = move || {
        if let Some(demo) = for_server_functions.demo.get() {
            provide_context(DemoContext {
                service: for_server_functions.service.clone(),
                app: demo.app.clone(),
                throwaways: Arc::clone(&demo.throwaways),
            });
        }
    };
    Router::new()
        .leptos_routes_with_context(state, generate_route_list(App), demo_context, move || shell(options.clone()))
        // The original server's home was `/main/`.
        .route("/main/", get(|| async { Redirect::permanent("/main") }))
}

/// Anything no route matched: JSON for the API and WebSocket paths, else a
/// file of the built site, else the site's 404 page.
pub async fn fallback(State(state): State<AppState>, uri: Uri, request: Request<Body>) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/ws/") {
        return ApiError::not_found("no such route").into_response();
    }
    leptos_axum::file_and_error_handler::<AppState, _>(shell)(uri, State(state), request).await
}
