//! The admin area: every app, the audit log, the failing webhooks, the
//! busiest apps and each node's connections, and deciding an app's status
//! and quotas. Only admins (accounts made with
//! `comms admin create`) pass the guard.

use leptos::prelude::*;

use crate::pages::portal::error::PortalError;
#[cfg(feature = "ssr")]
use crate::pages::portal::guards;
use crate::pages::portal::views::AdminView;

/// Audit entries shown to admins.
#[cfg(feature = "ssr")]
const AUDIT_ENTRIES: usize = 200;

/// Failing webhooks shown to admins: the worst ones, enough to act on.
#[cfg(feature = "ssr")]
const FAILING_WEBHOOKS: u64 = 50;

/// Busiest apps shown to admins.
#[cfg(feature = "ssr")]
const BUSIEST_APPS: u64 = 20;

/// Every app, the newest audit entries, the webhooks whose deliveries are
/// failing, the busiest apps of the last 24 hours and each node's
/// connections, for admins.
#[server(prefix = "/admin/fn", endpoint = "overview")]
pub async fn admin_overview() -> Result<AdminView, PortalError> {
    use crate::pages::portal::views::{AppRow, AuditRow, BusyAppRow, FailingWebhookRow, NodeRow};
    guards::admin(None).await?;
    let context = guards::context()?;
    let all = context.apps.list(comms_core::store::AppFilter::All).await?;
    let audit = context.apps.audit_log(AUDIT_ENTRIES).await?;
    let failing = context.service.failing_webhooks(FAILING_WEBHOOKS).await?;
    let busiest = context.service.busiest_apps(24, BUSIEST_APPS).await?;
    let nodes = context.service.connections_by_node().await?;
    Ok(AdminView {
        apps: all.into_iter().map(AppRow::from).collect(),
        audit: audit.into_iter().map(AuditRow::from).collect(),
        failing_webhooks: failing.into_iter().map(FailingWebhookRow::from).collect(),
        busiest: busiest.into_iter().map(BusyAppRow::from).collect(),
        nodes: nodes.into_iter().map(NodeRow::from).collect(),
    })
}

/// Approves, rejects, suspends or reinstates an app (`status` is the new
/// status: `approved`, `rejected` or `suspended`).
#[server(prefix = "/admin/fn", endpoint = "set_status")]
pub async fn set_app_status(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The new status.
    status: String,
) -> Result<(), PortalError> {
    use comms_core::error::ServiceError;
    use comms_core::store::AppStatus;
    let admin = guards::admin(Some(&csrf)).await?;
    let status = match AppStatus::parse(&status) {
        Some(status @ (AppStatus::Approved | AppStatus::Rejected | AppStatus::Suspended)) => status,
        _ => return Err(ServiceError::Invalid("status must be approved, rejected or suspended".into()).into()),
    };
    guards::context()?.apps.set_status(&app, status, &admin.email).await?;
    Ok(())
}

/// Sets one of an app's count quotas (`value`: a whole number, 0 for
/// unlimited, or `default` for the configured default).
#[server(prefix = "/admin/fn", endpoint = "set_quota")]
pub async fn set_app_quota(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The quota's key, e.g. `rooms_per_app`.
    quota: String,
    /// The new value.
    value: String,
) -> Result<(), PortalError> {
    use comms_core::error::ServiceError;
    use comms_core::quotas::Quota;
    let admin = guards::admin(Some(&csrf)).await?;
    let quota = Quota::parse(&quota).ok_or_else(|| ServiceError::Invalid(format!("unknown quota {quota:?}")))?;
    let value = match value.trim() {
        "default" | "" => None,
        number => Some(
            number
                .parse::<u64>()
                .map_err(|_| ServiceError::Invalid("a quota is a whole number (0: unlimited) or default".into()))?,
        ),
    };
    let apps = &guards::context()?.apps;
    apps.set_quota(&apps.find(&app).await?, quota, value, &admin.email).await?;
    Ok(())
}
