//! The state every handler receives: one `Arc` around the shared handles,
//! so cloning it per request (axum does, for every extractor and
//! middleware) is a single reference-count increment.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use axum::extract::FromRef;
use comms_core::accounts::Accounts;
use comms_core::apps::Apps;
use comms_core::auth::KeyAuthenticator;
use comms_core::broker::Broker;
use comms_core::config::Config;
use comms_core::demo::Throwaways;
use comms_core::email::Mailer;
use comms_core::hub::Hub;
use comms_core::limits::{ApiRateLimiter, FailedAuthLimiter};
use comms_core::metrics::Metrics;
use comms_core::portal::Portal;
use comms_core::service::Service;
use comms_core::store::{AppRecord, Store};
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::form_cookie::FormCookies;
use crate::portal_sessions::PortalSessionStore;
use crate::security_headers::SecurityHeaders;

/// A handle to the running server's [`Shared`] state.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared handles.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Shared handles of a running server.
pub struct Shared {
    /// App administration (admin area, demo).
    pub apps: Arc<Apps>,
    /// Portal accounts.
    pub accounts: Arc<Accounts>,
    /// What developers may do with their apps.
    pub portal: Arc<Portal>,
    /// Portal and admin sessions, in the same database.
    pub sessions: PortalSessionStore,
    /// Visitors' signed form-token cookies.
    pub form_cookies: FormCookies,
    /// The portal's outgoing email, flushed on shutdown.
    pub mailer: Mailer,
    /// The effective configuration.
    pub config: Arc<Config>,
    /// Rooms, endpoints, messages and WebSocket sessions.
    pub service: Service,
    /// The API-key check.
    pub authenticator: Arc<KeyAuthenticator>,
    /// REST rate limits per app.
    pub api_limiter: Arc<ApiRateLimiter>,
    /// Failed credentials per client address.
    pub failed_auth: Arc<FailedAuthLimiter>,
    /// The store, for readiness checks.
    pub store: Arc<dyn Store>,
    /// The broker, for readiness checks and shutdown.
    pub broker: Arc<dyn Broker>,
    /// Live connections, closed on shutdown.
    pub hub: Arc<Hub>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Live WebSocket tasks, awaited on shutdown so their close frames go out.
    pub sockets: TaskTracker,
    /// Where the site's files are, for rendering and serving them.
    pub leptos: LeptosOptions,
    /// The demo, once made at start (never, when `demo.enabled` is off).
    pub demo: OnceLock<DemoState>,
    /// The headers the site's pages carry.
    pub security_headers: SecurityHeaders,
    /// Cancelled when shutdown begins, for answers that would otherwise
    /// stream until their client leaves.
    pub stopping: CancellationToken,
    /// The portal's live-count sockets per account, on this node.
    pub live_counts: Arc<crate::live_count::LiveCounts>,
}

/// The running demo.
pub struct DemoState {
    /// The demo app.
    pub app: AppRecord,
    /// Makes visitors' throwaway rooms within bounds.
    pub throwaways: Arc<Throwaways>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
