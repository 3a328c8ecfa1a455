//! [`ApiError`]: how any failure of a request becomes the error JSON of
//! `docs/protocol.md#errors` with the matching status. Internal errors are logged here, with their chain,
//! and answered with a generic text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use comms_core::error::ServiceError;
use comms_core::names::InvalidName;
use comms_protocol::ErrorBody;

/// A failed API request.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl ApiError {
    /// `400 invalid` with the given text.
    pub fn invalid(text: impl Into<String>) -> Self {
        Self(ServiceError::Invalid(text.into()))
    }

    /// `413 too_large` with the given text.
    pub fn too_large(text: impl Into<String>) -> Self {
        Self(ServiceError::TooLarge(text.into()))
    }

    /// `404 not_found` with the given text.
    pub fn not_found(text: impl Into<String>) -> Self {
        Self(ServiceError::NotFound(text.into()))
    }

    /// The HTTP status for the error.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The error body; internal details never leave the server.
    pub fn body(&self) -> ErrorBody {
        let message = match &self.0 {
            ServiceError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                "internal server error".to_string()
            }
            other => other.to_string(),
        };
        ErrorBody::new(self.0.code(), message)
    }

    /// Adds what the response needs beside its body: `Retry-After` when
    /// rate limited, and the [`Refusal`](comms_core::usage::Refusal) it is for usage (see
    /// [`crate::refusals`]).
    pub fn finish(&self, response: &mut Response) {
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        if let Some(why) = self.0.refusal() {
            response.extensions_mut().insert(why);
        }
    }

    /// Headers the error adds: `Retry-After` when rate limited.
    fn retry_after(&self) -> Option<HeaderValue> {
        match &self.0 {
            ServiceError::RateLimited { retry_after } => {
                let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                Some(HeaderValue::from(seconds))
            }
            _ => None,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        Self(err)
    }
}

impl From<InvalidName> for ApiError {
    fn from(err: InvalidName) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        self.finish(&mut response);
        response
    }
}
