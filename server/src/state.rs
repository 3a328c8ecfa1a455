//! The state every handler receives: a bundle of `Arc`s, cheap to clone.

use std::sync::Arc;

use comms_core::auth::KeyAuthenticator;
use comms_core::broker::Broker;
use comms_core::config::Config;
use comms_core::hub::Hub;
use comms_core::limits::ApiRateLimiter;
use comms_core::metrics::Metrics;
use comms_core::service::Service;
use comms_core::store::Store;
use tokio_util::task::TaskTracker;

/// Shared handles of a running server.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub service: Service,
    pub authenticator: Arc<KeyAuthenticator>,
    pub api_limiter: Arc<ApiRateLimiter>,
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Live WebSocket tasks, awaited on shutdown so their close frames go out.
    pub sockets: TaskTracker,
}
