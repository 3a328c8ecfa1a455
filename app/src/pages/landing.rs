//! `/` and `/main/` (the original server's home): what comms is, a
//! 30-second quickstart, and where to go next.

use leptos::prelude::*;
use leptos_meta::Title;

mod samples {
    include!(concat!(env!("OUT_DIR"), "/samples.rs"));
}

/// The landing page.
#[component]
pub fn Landing() -> impl IntoView {
    view! {
        <Title text="comms — real-time rooms for your app" />
        <h1>"comms"</h1>
        <p class="lead">
            "A self-hostable real-time communication server: rooms, endpoints and chat over WebSocket."
        </p>
        <p>
            "An app creates " <strong>"rooms"</strong> " and " <strong>"endpoints"</strong>
            " with its API key. An endpoint is an unguessable code with a permission ("
            <code>"read"</code> " or " <code>"read_and_write"</code>
            ") and optional meta that the server stamps on every message sent through it, so clients cannot forge who said what."
        </p>
        <h2>"Quickstart"</h2>
        <p>"With the server running and an app's key in " <code>"$KEY"</code> ", make a room and an endpoint:"</p>
        <pre>{samples::CURL}</pre>
        <p>"Then, in a browser, chat through the endpoint's " <code>"ws_url"</code> ":"</p>
        <pre>{samples::JS}</pre>
        <p><a href="/docs/quickstart">"The whole quickstart"</a></p>
        <h2>"Where next"</h2>
        <ul>
            <li><a href="/portal">"Developer portal"</a>": sign up and request an API key for your app"</li>
            <li><a href="/demo">"Live demo"</a>": running rooms and their endpoints"</li>
            <li><a href="/docs">"Documentation"</a>": quickstart, concepts, REST and WebSocket reference, configuration"</li>
            <li><a href="/api/v1/openapi.json">"REST API (OpenAPI 3 document)"</a></li>
            <li>"WebSocket: " <code>"/ws/endpoint/{code}/"</code> ", optionally " <code>"?after_seq=N"</code> " to resume"</li>
            <li>"The original API keeps working under " <code>"/main/…"</code></li>
            <li>
                "Operations: " <a href="/healthz">"/healthz"</a> ", " <a href="/readyz">"/readyz"</a> ", "
                <a href="/metrics">"/metrics"</a>
            </li>
        </ul>
    }
}
