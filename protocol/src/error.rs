//! The error body: `{"error": {"code": "<code>", "message": "<human text>"}}`.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes (docs/protocol.md#error-codes).
///
/// The same codes appear in WebSocket `error` frames (`read_only`, `budget_exhausted`,
/// `invalid`, `too_large`, `rate_limited`, `forbidden`, `not_found`, `unavailable`, `internal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Bad room name, bad permission, malformed JSON, bad meta.
    Invalid,
    /// API key missing, unknown, revoked, or its app is not approved.
    Forbidden,
    /// The room or endpoint does not exist for this app.
    NotFound,
    /// The room name is already taken in this app.
    Conflict,
    /// A body or message is over its limit.
    TooLarge,
    /// A count quota is full (rooms per app, endpoints per room, apps per
    /// account); the message names the quota and its value.
    QuotaExceeded,
    /// Over a configured rate.
    RateLimited,
    /// A `read` endpoint tried to publish (WebSocket only).
    ReadOnly,
    /// The endpoint has published its `max_messages` already (WebSocket
    /// only); the connection stays open for reading.
    BudgetExhausted,
    /// The database or broker is unreachable.
    Unavailable,
    /// Anything else; details are in the server log only.
    Internal,
}

impl ErrorCode {
    /// The HTTP status an answer with this code has (`docs/protocol.md#error-codes`).
    pub fn http_status(self) -> u16 {
        match self {
            Self::Invalid | Self::ReadOnly | Self::BudgetExhausted => 400,
            Self::Forbidden | Self::QuotaExceeded => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooLarge => 413,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

/// The inner object of an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

/// Every API error answers with this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// Builds an error body from a code and a human-readable message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code, message: message.into() } }
    }
}
