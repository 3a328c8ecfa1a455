//! The wasm entry point: hydrates the server-rendered site.

use wasm_bindgen::prelude::wasm_bindgen;

/// Called by the hydration script cargo-leptos generates.
#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(comms_app::App);
}
