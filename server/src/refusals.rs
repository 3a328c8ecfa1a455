//! Counts the API's refusals (quota, rate, depth, credentials) in the
//! usage of the app that made the request, for every REST and legacy
//! route at once: the API-key check names the app in [`RequestApp`], and
//! [`ApiError`](crate::error::ApiError) marks its response with the
//! [`Refusal`] it is.

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use comms_core::usage::Refusal;

use crate::state::AppState;

/// The app a request turned out to come from, once its key is checked.
/// Cheap to clone: the middleware and the key check share one slot.
#[derive(Clone, Default)]
pub struct RequestApp(Arc<OnceLock<i64>>);

impl RequestApp {
    /// Names the request's app.
    pub fn set(&self, app_id: i64) {
        let _ = self.0.set(app_id);
    }
}

/// The middleware: gives the request its [`RequestApp`] slot, and counts
/// the response's refusal against the app named in it, if any.
pub async fn count(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let app = RequestApp::default();
    request.extensions_mut().insert(app.clone());
    let response = next.run(request).await;
    if let (Some(app_id), Some(why)) = (app.0.get(), response.extensions().get::<Refusal>()) {
        state.service.usage().refused(*app_id, *why);
    }
    response
}
