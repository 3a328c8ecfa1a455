//! [`PortalError`]: what a portal or admin server function answers instead
//! of a result, so the functions can use `?` on every service call.
//!
//! The error carries the API's error code (`docs/protocol.md#errors`) and
//! a message meant for the person at the page. On the server it comes from
//! a [`ServiceError`] (client errors keep their text; database and other
//! internal failures are logged and become a generic sentence, so their
//! details never reach the browser), and its HTTP answer has the status of
//! its code (400, 403, 404, 409, 429 with `Retry-After`…), set where the
//! error is encoded into the response ([`FromServerFnError::ser`]), so no
//! call site can forget it.
//!
//! [`ServiceError`]: comms_core::error::ServiceError

use std::fmt;

use comms_protocol::ErrorCode;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::{Bytes, Encodes};
use serde::{Deserialize, Serialize};

/// What the browser is told when a server function fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalError {
    /// The API's error code; the HTTP status of the answer is this code's.
    pub code: ErrorCode,
    /// What went wrong, for the person at the page.
    pub message: String,
    /// With `rate_limited`: seconds until another attempt may succeed
    /// (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Said for failures whose details stay in the server's log.
const SERVER_FAILED: &str = "something went wrong on the server; try again";

impl PortalError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }

    /// A failure on the server, without details.
    pub fn server_failed() -> Self {
        Self::new(ErrorCode::Internal, SERVER_FAILED)
    }
}

impl fmt::Display for PortalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PortalError {}

impl FromServerFnError for PortalError {
    type Encoder = JsonEncoding;

    /// Failures of the server-function machinery itself: arguments the
    /// server could not read (a bad form), no answer from the server, an
    /// answer the browser could not read.
    fn from_server_fn_error(err: ServerFnErrorErr) -> Self {
        match err {
            ServerFnErrorErr::Args(detail) | ServerFnErrorErr::MissingArg(detail) => {
                Self::new(ErrorCode::Invalid, format!("this form was not filled in as expected: {detail}"))
            }
            ServerFnErrorErr::Request(_) => {
                Self::new(ErrorCode::Unavailable, "the server could not be reached; check the connection and try again")
            }
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "portal server function failed");
                #[cfg(not(feature = "ssr"))]
                let _ = other;
                Self::server_failed()
            }
        }
    }

    /// Encodes the error as the body of the answer, and gives the answer
    /// the status of the error's code.
    fn ser(&self) -> Bytes {
        #[cfg(feature = "ssr")]
        server::answer_with_status(self);
        // A struct of a code, a string and a number always encodes.
        Self::Encoder::encode(self).unwrap_or_else(|_| Bytes::from_static(b"{}"))
    }
}

#[cfg(feature = "ssr")]
mod server {
    use comms_core::error::ServiceError;
    use comms_core::names::InvalidName;
    use http::header::{ACCEPT, RETRY_AFTER};
    use http::{HeaderValue, StatusCode};
    use leptos::prelude::use_context;
    use leptos_axum::ResponseOptions;

    use super::PortalError;

    impl From<ServiceError> for PortalError {
        fn from(err: ServiceError) -> Self {
            match err {
                ServiceError::Internal(_) | ServiceError::Unavailable(_) => {
                    tracing::error!(error = %err, "portal request failed");
                    Self { code: err.code(), ..Self::server_failed() }
                }
                ServiceError::RateLimited { retry_after } => {
                    let seconds = retry_after.as_secs().max(1);
                    Self {
                        retry_after: Some(seconds),
                        ..Self::new(err.code(), format!("too many attempts: wait {seconds} seconds"))
                    }
                }
                other => Self::new(other.code(), other.to_string()),
            }
        }
    }

    impl From<InvalidName> for PortalError {
        fn from(err: InvalidName) -> Self {
            ServiceError::from(err).into()
        }
    }

    impl From<tower_sessions::session::Error> for PortalError {
        fn from(err: tower_sessions::session::Error) -> Self {
            tracing::error!(error = %err, "portal session failed");
            Self::server_failed()
        }
    }

    /// Gives this server function's answer the status of `err`'s code and,
    /// when rate limited, `Retry-After`. A plain form post (no script yet,
    /// `Accept: text/html`) keeps the redirect back to its page that Leptos
    /// answers it with.
    pub(super) fn answer_with_status(err: &PortalError) {
        let Some(response) = use_context::<ResponseOptions>() else { return };
        if let Some(seconds) = err.retry_after {
            response.insert_header(RETRY_AFTER, HeaderValue::from(seconds));
        }
        let plain_form_post = use_context::<http::request::Parts>().is_some_and(|parts| {
            let accept = parts.headers.get(ACCEPT).and_then(|value| value.to_str().ok());
            accept.is_some_and(|accept| accept.contains("text/html"))
        });
        if !plain_form_post {
            response
                .set_status(StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
    }
}
