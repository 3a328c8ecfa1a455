//! Wire types of comms, shared by the server, the site and the SDKs.
//!
//! Everything here is plain data with serde derives, so it compiles to wasm
//! and can be used by any client. The shapes are the contract of
//! `docs/protocol.md`; a change here is a change of that document.
//!
//! # Layout
//!
//! - [`rest`]: bodies of the REST API (`Room`, `Endpoint`, `Member`, requests, lists).
//! - [`ws`]: WebSocket frames, both directions, and the close codes.
//! - [`error`]: the error body every API error answers with.
//! - [`quota`]: the names of the count quotas.
//! - [`legacy`]: the `{"status": …}` envelope of the original `/main/…` API.
//! - [`webhook`]: webhooks, their event types and deliveries.
//! - [`usage`]: what an app did per period (`GET /api/v1/usage`).

#![warn(missing_docs)]

pub mod error;
pub mod legacy;
pub mod quota;
pub mod rest;
pub mod usage;
pub mod webhook;
pub mod ws;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use quota::Quota;
pub use rest::{Endpoint, Member, Message, Permission, Presence, Room, Sender};
