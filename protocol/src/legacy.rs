//! The envelope of the original `/main/…` API:
//! `{"status": "success" | "failure", "message": "<text>", …data}`.

use serde::{Deserialize, Serialize};

use crate::error::ErrorDetail;

/// Whether a legacy call worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyStatus {
    /// The call worked.
    Success,
    /// The call failed; `error` says why.
    Failure,
}

/// A legacy answer; `data` is flattened into the top-level object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegacyResponse<T> {
    /// Whether the call worked.
    pub status: LegacyStatus,
    /// Human-readable outcome.
    pub message: String,
    /// On failure, the same error object the REST API answers with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    #[serde(flatten)]
    /// The call's data, flattened into the top-level object.
    pub data: T,
}
