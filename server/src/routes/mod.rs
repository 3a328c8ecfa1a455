//! One router per resource, merged in [`router`]. The REST resources are
//! described with utoipa as they are routed, so the OpenAPI document served
//! at `/api/v1/openapi.json` is derived from the handlers themselves.

pub mod endpoints;
pub mod legacy;
pub mod messages;
pub mod ops;
pub mod rooms;
pub mod site;
pub mod usage;
pub mod webhooks;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "comms REST API",
        description = "Rooms, endpoints and messages of a comms server. Authenticate with the app's API key \
                       in `X-API-Key` or `Authorization: Bearer`. Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&KeySecurity),
    security(("api_key" = []), ("bearer" = [])),
    tags(
        (name = "rooms", description = "Named channels owned by one app"),
        (name = "endpoints", description = "Codes that let a WebSocket client join a room"),
        (name = "messages", description = "History and server-side publishing"),
        (name = "webhooks", description = "Signed events posted to the app's backend"),
        (name = "usage", description = "What the app did, per minute, hour or day"),
    )
)]
struct ApiDoc;

/// Declares the two ways to present an API key.
struct KeySecurity;

impl Modify for KeySecurity {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn rest() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(rooms::router())
        .merge(endpoints::router())
        .merge(messages::router())
        .merge(webhooks::router())
        .merge(usage::router())
}

/// The OpenAPI 3 document of the REST API.
pub fn openapi() -> OpenApiDocument {
    rest().into_openapi()
}

/// Every HTTP route of the server: REST, legacy (both open to other
/// origins, see [`crate::cors`]), WebSocket, operations and the site.
pub fn router(state: &AppState) -> Router<AppState> {
    let (rest, document) = rest().split_for_parts();
    let document = Bytes::from(document.to_json().expect("the OpenAPI document serializes"));
    let serve_document = move || async move { ([(header::CONTENT_TYPE, "application/json")], document.clone()) };
    let api = Router::new()
        .merge(rest)
        .route("/api/v1/openapi.json", get(serve_document))
        .merge(legacy::router())
        // Set before the layer, so the layer answers preflights (OPTIONS)
        // first; set later, it would replace the layered fallback.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::refusals::count))
        .layer(crate::cors::api_layer());
    Router::new()
        .merge(api)
        .merge(site::router(state))
        .merge(crate::ws::router())
        .merge(ops::router())
        .fallback(site::fallback)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut response = ApiError::invalid("method not allowed on this route").into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

#[cfg(test)]
mod tests {
    /// The site's REST reference is rendered from `docs/openapi.json`, so the
    /// checked-in document must be the one the handlers describe.
    #[test]
    fn the_checked_in_openapi_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        let current = super::openapi().to_pretty_json().expect("the document serializes");
        assert!(
            checked_in.trim_end() == current.trim_end(),
            "docs/openapi.json is out of date: run `cargo run -p comms-server -- openapi > docs/openapi.json`"
        );
    }
}
