//! The landing page at `/` and `/main/` (the original server's home): what
//! comms is and where its reference lives. Needs no key.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const PAGE: &str = include_str!("landing.html");

/// The landing routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(landing)).route("/main/", get(landing)).route("/main", get(landing))
}

async fn landing() -> Html<&'static str> {
    Html(PAGE)
}
