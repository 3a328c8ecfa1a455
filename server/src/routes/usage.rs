//! `/api/v1/usage`: what the app did, per period, over every node.

use axum::extract::State;
use axum::Json;
use comms_core::time::now_ms;
use comms_core::usage::UsageWindow;
use comms_protocol::usage::UsageReport;
use comms_protocol::ErrorBody;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiQuery, AuthApp};
use crate::state::AppState;

/// Routes of the usage resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_usage))
}

/// Which periods to answer for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    /// Start of the time asked for, RFC 3339 (default: 24 hours before
    /// `to`); its period is included from its start.
    from: Option<String>,
    /// End of the time asked for, RFC 3339 (default: now), not included.
    to: Option<String>,
    /// `minute`, `hour` (default) or `day`; at most `usage.max_periods`
    /// periods (10080 by default: a week of minutes).
    granularity: Option<String>,
}

/// The app's usage: one point per period with any activity, oldest first,
/// summed over every node. The current period is included and may still
/// grow.
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "Usage per period, oldest first", body = UsageReport),
        (status = 400, description = "Bad time or granularity, from not before to, or too many periods",
            body = ErrorBody),
        (status = 403, description = "Missing or bad API key", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(app = %app.name))]
async fn get_usage(
    State(state): State<AppState>,
    AuthApp { app, .. }: AuthApp,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let UsageQuery { from, to, granularity } = query;
    let (from, to, granularity) = (from.as_deref(), to.as_deref(), granularity.as_deref());
    let window = UsageWindow::parse(from, to, granularity, now_ms(), &state.config.usage)?;
    Ok(Json(state.service.usage().report(app.id, window).await?))
}
