//! The Rust client of comms, a self-hostable real-time communication
//! server: the REST API with an app's key ([`Client`]), chat connections
//! through endpoints ([`EndpointConnection`]), and the check of webhook
//! deliveries ([`verify_webhook`]).
//!
//! ```no_run
//! use comms_sdk::{Client, CreateEndpointRequest, CreateRoomRequest, EndpointConnection, Event, Permission};
//!
//! # async fn run() -> Result<(), comms_sdk::Error> {
//! let client = Client::new("http://127.0.0.1:3000", "ck_…")?;
//! client.create_room(&CreateRoomRequest::new("lobby".into())).await?;
//! let meta = serde_json::json!({"name": "Ann"}).as_object().cloned();
//! let request = CreateEndpointRequest { meta, ..CreateEndpointRequest::new(Permission::ReadAndWrite) };
//! let endpoint = client.create_endpoint("lobby", &request).await?;
//! let mut chat = EndpointConnection::connect(&endpoint.ws_url).await?;
//! chat.send(&"hello").await?;
//! while let Some(event) = chat.next_event().await {
//!     if let Event::Message(message) = event {
//!         println!("{} {}", message.seq, message.message);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `generated`: the API's types and [`Client`]'s REST methods, generated
//!   from the server's OpenAPI document by `sdk-rust/codegen`.
//! - `client`: [`Client`] itself: address, key, answers and errors.
//! - `connection`: [`EndpointConnection`], reconnecting and resuming.
//! - `error`: [`Error`].
//! - `webhook`: [`verify_webhook`], the signature check and the events of
//!   webhook deliveries.

#![warn(missing_docs)]

mod client;
mod connection;
mod error;
#[rustfmt::skip]
mod generated;
mod webhook;

pub use client::Client;
pub use connection::{
    Closed, ConnectOptions, EndpointConnection, EndpointSender, ErrorFrame, Event, Reconnect, Redaction, SendReceipt,
    Signal, State, Welcome, WelcomeEndpoint,
};
pub use error::Error;
pub use generated::*;
pub use webhook::{verify_webhook, WebhookData, WebhookError, WebhookEvent, DEFAULT_WEBHOOK_TOLERANCE};
