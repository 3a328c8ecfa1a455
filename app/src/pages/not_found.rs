//! The page for any path the site does not have, served with status 404.

use leptos::prelude::*;
use leptos_meta::Title;

/// The 404 page.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found — comms" />
        <h1>"Not found"</h1>
        <p>"There is no page here. " <a href="/">"Back to the start"</a> "."</p>
    }
}
