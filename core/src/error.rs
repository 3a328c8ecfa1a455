//! [`ServiceError`]: what a service call can answer instead of a result.
//! Each client-facing variant maps to one of the error codes of
//! `docs/protocol.md#error-codes`; the server turns it into the error JSON
//! with the matching status.

use std::time::Duration;

use comms_protocol::ErrorCode;

use crate::broker::BrokerError;
use crate::names::InvalidName;
use crate::origins::InvalidOrigin;
use crate::quotas::QuotaExceeded;
use crate::store::StoreError;
use crate::usage::Refusal;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input; the text says what was wrong.
    #[error("{0}")]
    Invalid(String),
    /// JSON nested deeper than `limits.max_json_depth`: `invalid` to the
    /// client, told apart for usage.
    #[error("{0}")]
    TooDeep(String),
    /// Missing, unknown or revoked key, or an app that is not approved.
    #[error("a valid API key of an approved app is required")]
    Forbidden,
    /// The request's `Origin` is not in the app's allow-list.
    #[error("origin {0} is not allowed for this app")]
    OriginNotAllowed(String),
    /// A portal or admin action this account may not take (wrong
    /// password, not an admin, app not approved); the text says which.
    #[error("{0}")]
    Denied(String),
    /// The room or endpoint does not exist for this app.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// A body, message or frame over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// A `read` endpoint tried to publish.
    #[error("this endpoint has read permission only")]
    ReadOnly,
    /// The endpoint published its `max_messages` already.
    #[error("this endpoint has sent its max_messages ({0}) already")]
    BudgetExhausted(u64),
    /// A count quota is full; nothing was created.
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
    /// Over a configured rate; retry after the given time.
    #[error("rate limit exceeded, retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// How long until the next request would be allowed.
        retry_after: Duration,
    },
    /// The database or broker cannot be reached right now.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; logged, never shown to clients.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ServiceError {
    /// The error code for this error (`docs/protocol.md#error-codes`).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) | Self::TooDeep(_) => ErrorCode::Invalid,
            Self::Forbidden | Self::OriginNotAllowed(_) | Self::Denied(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::ReadOnly => ErrorCode::ReadOnly,
            Self::BudgetExhausted(_) => ErrorCode::BudgetExhausted,
            Self::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl ServiceError {
    /// How usage counts the error against the app, if it is a refusal.
    /// `Forbidden` counts only where the app is known (its key works no
    /// longer, its code expired).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::QuotaExceeded(_) => Some(Refusal::Quota),
            Self::RateLimited { .. } => Some(Refusal::Rate),
            Self::TooDeep(_) => Some(Refusal::Depth),
            Self::Forbidden => Some(Refusal::Credentials),
            _ => None,
        }
    }
}

impl From<InvalidName> for ServiceError {
    fn from(err: InvalidName) -> Self {
        Self::Invalid(err.to_string())
    }
}

impl From<InvalidOrigin> for ServiceError {
    fn from(err: InvalidOrigin) -> Self {
        Self::Invalid(err.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => Self::Conflict("already exists".into()),
            StoreError::ParentMissing => Self::NotFound("the room does not exist".into()),
            StoreError::Unavailable => Self::Unavailable("the database is unavailable, retry later".into()),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<BrokerError> for ServiceError {
    fn from(err: BrokerError) -> Self {
        match err {
            BrokerError::Store(err) => err.into(),
            BrokerError::ShuttingDown => Self::Unavailable("the server is shutting down, retry elsewhere".into()),
            BrokerError::RoomGone => Self::NotFound("the room does not exist".into()),
            BrokerError::StoreTimeout => {
                Self::Unavailable("the message was delivered but storing it is slow; it will be stored".into())
            }
            BrokerError::Unavailable(reason) => {
                tracing::warn!(%reason, "broker unavailable");
                Self::Unavailable("the message broker is unavailable, retry later".into())
            }
            other => Self::Internal(other.into()),
        }
    }
}
