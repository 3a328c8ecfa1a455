//! The server functions of the portal (`/portal/fn/…`) and of the admin
//! area (`/admin/fn/…`), grouped by what they act on. Each is a few lines:
//! a guard from [`super::guards`] finds out who is asking, then the same
//! `comms_core` service the REST API uses does the work, and `?` turns its
//! errors into [`PortalError`](super::error::PortalError)s.
//!
//! - [`account`]: the session, sign-up, confirming the address, login,
//!   logout and password resets.
//! - [`apps`]: a developer's apps, their keys and allowed origins.
//! - [`rooms`]: rooms, endpoints (creating, changing, deleting) and
//!   redacting messages, in a developer's approved app.
//! - [`webhooks`]: webhooks and their deliveries (sending one again), in a
//!   developer's approved app.
//! - [`usage`]: an approved app's usage charts, quotas and CSV.
//! - [`admin`]: every app, the audit log and failing webhooks, app status
//!   and quotas, for admins.

pub mod account;
pub mod admin;
pub mod apps;
pub mod rooms;
pub mod usage;
pub mod webhooks;

pub use account::{
    portal_session, signed_in_admin, ConfirmEmail, LogIn, LogOut, PortalSession, RequestPasswordReset,
    ResendConfirmation, ResetPassword, SignUp,
};
pub use admin::{admin_overview, AdminOverview, SetAppQuota, SetAppStatus};
pub use apps::{
    app_overview, my_apps, AppOverview, DeleteApp, IssueKey, MyApps, RegisterApp, RevokeKeys, SetAllowedOrigins,
};
pub use rooms::{
    CreateEndpoint, CreateRoom, DeleteEndpoint, DeleteRoom, EndpointChange, RedactMessage, UpdateEndpoint,
};
pub use usage::app_usage;
pub use webhooks::{CreateWebhook, DeleteWebhook, Redeliver};
