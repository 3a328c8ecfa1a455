//! The wasm entry point: hydrates the server-rendered site.

use wasm_bindgen::prelude::wasm_bindgen;

/// Called by the hydration script cargo-leptos generates.
#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Async hydration: the portal's and admin's routes are lazy (their code
    // is a separate wasm chunk in `--split` builds).
    leptos::mount::hydrate_lazy(comms_app::App);
}
