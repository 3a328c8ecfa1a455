//! [`Error`]: what an SDK call can fail with. API errors carry the server's
//! error code (`docs/protocol.md#error-codes`), so callers match on
//! [`ErrorCode`] rather than on texts.

use std::time::Duration;

use crate::generated::ErrorCode;

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error (its error JSON, `docs/protocol.md#errors`).
    #[error("{status} {code:?}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code, e.g. [`ErrorCode::NotFound`].
        code: ErrorCode,
        /// The server's explanation.
        message: String,
        /// With [`ErrorCode::RateLimited`]: the `Retry-After` the server sent.
        retry_after: Option<Duration>,
    },
    /// The server could not be reached, or the connection broke.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The server's answer was not what the API describes.
    #[error("unexpected answer ({status}): {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The body, for the log.
        body: String,
    },
    /// A URL, code or base address could not be used.
    #[error("invalid address: {0}")]
    InvalidUrl(String),
    /// The WebSocket failed.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The endpoint's code is unknown, deleted, expired or already used
    /// (`single_use`), or its app is not approved (the upgrade was refused
    /// with 404).
    #[error("the endpoint does not exist or cannot be joined")]
    EndpointGone,
    /// The connection is not open right now (it is reconnecting, or it
    /// ended); the signal or redaction was not sent.
    #[error("not connected")]
    NotConnected,
    /// The server refused a message sent through a connection (its error
    /// frame for that send): nothing was published.
    #[error("refused {code:?}: {message}")]
    Refused {
        /// E.g. [`ErrorCode::ReadOnly`] or [`ErrorCode::BudgetExhausted`].
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// As many sends as the connection's `max_pending_sends` are waiting
    /// for their ack already; this one was not sent.
    #[error("too many sends waiting for their ack")]
    QueueFull,
    /// The connection ended for good before the server acknowledged the
    /// send: it may or may not have been published.
    #[error("the connection is closed")]
    Closed,
    /// A payload could not be serialized.
    #[error("payload: {0}")]
    Payload(#[from] serde_json::Error),
}

impl Error {
    /// The API error code, when the server answered with one (an API call's
    /// error or a refused send).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } | Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}
