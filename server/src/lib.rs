//! The `comms` binary: CLI, HTTP API, legacy routes and WebSocket, wired
//! around the product in `comms-core`.
//!
//! # Layout
//!
//! - [`cli`]: the `comms` command line (`serve`, `migrate`, `app …`).
//! - [`startup`]: builds the application from a config and runs it until
//!   SIGTERM, draining connections and history on the way out.
//! - [`state`]: [`state::AppState`], the handle every handler gets.
//! - [`portal_sessions`]: the portal's login session store, in the SQLite
//!   or PostgreSQL database the rest of the data is in.
//! - [`form_cookie`]: the form token of a visitor who is not signed in, in
//!   a signed cookie instead of a session.
//! - [`cors`]: cross-origin access to the API (per-app origin lists are
//!   checked with the key, in [`extract`]).
//! - [`error`]: [`error::ApiError`], service errors as the error JSON of
//!   `docs/protocol.md#errors`.
//! - [`extract`]: the API-key check, JSON/query extractors with our errors,
//!   and the public WebSocket base URL.
//! - [`refusals`]: the API's refusals counted in the usage of the app
//!   that made the request.
//! - [`routes`]: one router per resource: `rooms`, `endpoints`, `messages`,
//!   `webhooks`, `usage`, the original `/main/…` API in `legacy`, and `ops`
//!   (health, metrics).
//! - [`security_headers`]: CSP, referrer policy, HSTS… on the site's pages.
//! - [`live_count`]: the portal's live connection count of an app, a
//!   WebSocket opened only by its signed-in developer.
//! - [`ws`]: the WebSocket connection: protocol frames in and out of a
//!   socket; room membership and fan-out live in `comms_core::hub`.
//! - [`http_server`]: the listeners' accept loop: the bound on open
//!   connections, request-head and keep-alive deadlines, draining.
//! - [`tls`]: built-in HTTPS (rustls) and the HTTP-to-HTTPS redirect, for
//!   a machine without nginx.
//! - [`telemetry`]: logging and the HTTP metrics middleware.

#![warn(missing_docs)]

pub mod cli;
pub mod cors;
pub mod error;
pub mod extract;
pub mod form_cookie;
pub mod http_server;
pub mod live_count;
pub mod portal_sessions;
pub mod refusals;
pub mod routes;
pub mod security_headers;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod ws;
