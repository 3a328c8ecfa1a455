//! Building the application from a config, and running it until shutdown.
//!
//! The listener speaks plain HTTP, or HTTPS itself with `[server.tls]`
//! (see [`crate::tls`]); [`crate::http_server`] serves it, and the
//! redirect listener, within the `[server]` connection limits.
//!
//! Shutdown (SIGTERM or Ctrl-C): stop accepting, close every WebSocket with
//! 1001 so clients resume elsewhere, let in-flight requests finish, wait for
//! the socket tasks (up to `server.shutdown_grace_secs`), then write out the
//! history still queued.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use comms_core::account_mail::AccountMail;
use comms_core::accounts::Accounts;
use comms_core::apps::Apps;
use comms_core::auth::KeyAuthenticator;
use comms_core::broker::local::{LocalBroker, LocalSettings};
use comms_core::broker::redis::{RedisBroker, RedisSettings};
use comms_core::broker::writer::WriterSettings;
use comms_core::broker::Broker;
use comms_core::changes::AppChanges;
use comms_core::config::{Config, DatabaseKind, Profile, ServerConfig};
use comms_core::demo::{self, Throwaways};
use comms_core::email::Mailer;
use comms_core::error::ServiceError;
use comms_core::hub::{CloseReason, Hub};
use comms_core::limits::{ApiRateLimiter, FailedAuthLimiter};
use comms_core::metrics::Metrics;
use comms_core::portal::Portal;
use comms_core::presence::Observed;
use comms_core::service::Service;
use comms_core::store::postgres::{PostgresStore, CONNECT_TIMEOUT};
use comms_core::store::sqlite::SqliteStore;
use comms_core::store::{redact_url, Store, StoreError};
use comms_core::webhooks::delivery::{Dispatcher, Wake};
use comms_core::webhooks::destination::Destinations;
use comms_core::webhooks::{activity, expiry, Webhooks};
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::{PostgresStore as PostgresSessions, SqliteStore as SqliteSessions};

use crate::error::ApiError;
use crate::form_cookie::FormCookies;
use crate::http_server::{self, Connections, Listener};
use crate::portal_sessions::PortalSessionStore;
use crate::routes;
use crate::security_headers::SecurityHeaders;
use crate::state::{AppState, DemoState, Shared};
use crate::telemetry;
use crate::tls::{self, bind_redirect};

/// Opens the configured store and applies migrations.
///
/// # Errors
///
/// An unsupported database URL, or a database that cannot be opened or
/// migrated.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_database(config).await?.0)
}

/// Opens the database `DATABASE_URL` names (SQLite for `sqlite:`, PostgreSQL
/// for `postgres:` or `postgresql:`): the store, and the portal's session
/// store on the same database.
async fn open_database(config: &Config) -> anyhow::Result<(Arc<dyn Store>, PortalSessionStore)> {
    let url = config.database_url();
    let shown = redact_url(&url);
    let max_connections = config.database.max_connections;
    match config.database_kind() {
        Some(DatabaseKind::Sqlite) => {
            let store = SqliteStore::open(&url, max_connections, config.database.sqlite_writer_nice)
                .await
                .with_context(|| format!("opening the database at {shown}"))?;
            let sessions = PortalSessionStore::Sqlite(SqliteSessions::new(store.write_pool()));
            Ok((Arc::new(store), sessions))
        }
        Some(DatabaseKind::Postgres) => {
            let store = PostgresStore::open(&url, max_connections).await.map_err(|err| match err {
                StoreError::Unavailable => anyhow::anyhow!(
                    "PostgreSQL at {shown} did not accept a connection within {} s: is it running and reachable?",
                    CONNECT_TIMEOUT.as_secs()
                ),
                other => anyhow::anyhow!("opening the PostgreSQL database at {shown}: {other}"),
            })?;
            let sessions = PortalSessionStore::Postgres(PostgresSessions::new(store.pool()));
            Ok((Arc::new(store), sessions))
        }
        None => anyhow::bail!(
            "unsupported database URL {shown:?}: use sqlite://PATH for SQLite or \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE (or postgresql://…) for PostgreSQL"
        ),
    }
}

/// The broker the config asks for: Redis when `broker.redis_url` is set,
/// else the in-process one.
///
/// # Errors
///
/// A Redis URL that does not parse. (Redis with SQLite is refused by
/// [`Config::validate`].)
fn open_broker(
    config: &Config,
    store: &Arc<dyn Store>,
    hub: &Arc<Hub>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<dyn Broker>> {
    let writer = WriterSettings {
        keep_per_room: config.history.max_messages,
        max_age: config.history.max_age,
        batch: config.history.write_batch,
    };
    let (store, hub, metrics) = (Arc::clone(store), Arc::clone(hub), Arc::clone(metrics));
    if config.broker.redis_url.is_empty() {
        let settings =
            LocalSettings { writer, idle_room: config.history.idle_room, nonce_window: config.limits.nonce_window };
        return Ok(Arc::new(LocalBroker::new(store, hub, metrics, settings)));
    }
    let settings = RedisSettings {
        url: config.broker.redis_url.clone(),
        key_prefix: config.broker.key_prefix.clone(),
        writer,
        nonce_window: config.limits.nonce_window,
    };
    Ok(Arc::new(RedisBroker::new(store, hub, metrics, settings)?))
}

/// The list of the site's hashed file names cargo-leptos wrote (`hash.txt`,
/// with `hash-files`): in the site folder where a deployment copies it, else
/// next to the binary where cargo-leptos leaves it. `None` for a site built
/// without hashing, whose files keep their plain names.
fn site_hash_file(site_root: &Path) -> Option<PathBuf> {
    let beside_binary = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(HASH_FILE)));
    let found = [Some(site_root.join(HASH_FILE)), beside_binary].into_iter().flatten().find(|path| path.is_file())?;
    // Leptos joins it to the binary's folder: a relative path would move.
    Some(std::path::absolute(&found).unwrap_or(found))
}

/// What the service needs for webhooks: endpoints' `ws_url` in events start
/// from `server.public_url`, else the address bound; `prod` refuses
/// internal destinations.
fn webhooks(config: &Config, bound: SocketAddr, observed: mpsc::UnboundedSender<Observed>) -> Webhooks {
    let server = ServerConfig { addr: bound, ..config.server.clone() };
    let refuse_private = config.profile == Profile::Prod;
    Webhooks {
        ws_base: server.ws_base(None),
        destinations: Arc::new(Destinations::new(refuse_private, config.webhooks.allow_private.clone())),
        wake: Wake::default(),
        observed,
    }
}

/// The name cargo-leptos gives the list of hashed file names.
const HASH_FILE: &str = "hash.txt";

/// How often expired portal sessions are deleted from the database.
const SESSION_SWEEP: Duration = Duration::from_secs(3600);

/// A bound, ready-to-run server.
pub struct Application {
    /// Plain or (with `[server.tls]`) speaking HTTPS.
    listener: Listener,
    /// `server.tls.redirect_from`: plain HTTP redirecting to https.
    redirect: Option<Listener>,
    router: Router,
    state: AppState,
    /// The demo's bot and sweeper and the expired-session sweeper,
    /// stopped on shutdown.
    background: Vec<JoinHandle<()>>,
}

impl Application {
    /// Opens storage, wires the services and binds `addr` (port 0 picks a
    /// free port, see [`Application::local_addr`]).
    ///
    /// # Errors
    ///
    /// Storage cannot be opened or the address cannot be bound.
    pub async fn build(config: Config, addr: SocketAddr) -> anyhow::Result<Self> {
        config.validate()?;
        let (store, sessions) = open_database(&config).await?;
        sessions.migrate().await.context("creating the session table")?;
        http_server::raise_open_file_limit(config.server.max_connections);
        // Before any background task starts, so a refused address or
        // certificate leaves nothing running; and mailed links name the
        // address bound (without `server.public_url`).
        let (listener, redirect) = listen(&config.server, addr).await?;
        let mailer = Mailer::spawn(&config.email)?;
        let site = config.server.site_base(listener.local_addr().context("reading the bound address")?);
        let mail = AccountMail::new(Arc::clone(&store), mailer.clone(), site);
        let form_cookies = FormCookies::load(&*store, config.portal.secure_cookies).await?;
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(config.limits.connection_queue, Arc::clone(&metrics));
        let broker = open_broker(&config, &store, &hub, &metrics)?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let (observed, observations) = mpsc::unbounded_channel();
        let webhooks = webhooks(&config, bound, observed);
        let service =
            Service::new(Arc::clone(&store), Arc::clone(&broker), Arc::clone(&hub), &config, webhooks.clone());
        let dispatcher = Dispatcher::new(
            Arc::clone(&store),
            Arc::clone(service.usage()),
            config.webhooks.clone(),
            Arc::clone(&webhooks.destinations),
            webhooks.wake.clone(),
        )
        .context("building the webhooks' HTTP client")?;
        let (occupancy, occupancy_changes) = mpsc::unbounded_channel();
        hub.report_occupancy(occupancy);
        let recorder = activity::spawn_recorder(service.clone(), observations, occupancy_changes);
        let authenticator = Arc::new(KeyAuthenticator::new(Arc::clone(&store), config.auth.key_cache_ttl));
        let changes = AppChanges::new(Arc::clone(&store), service.clone(), Arc::clone(&authenticator)).await?;
        let hash_file = site_hash_file(&config.site.root);
        let leptos = LeptosOptions::builder()
            .output_name("comms")
            .site_root(config.site.root.display().to_string())
            .site_pkg_dir("pkg")
            .hash_files(hash_file.is_some())
            .hash_file(hash_file.unwrap_or_default().display().to_string().into())
            .build();
        let apps = Arc::new(Apps::new(Arc::clone(&store)).with_live_connections(Arc::clone(&changes)));
        let accounts = Arc::new(Accounts::new(Arc::clone(&store), &config.portal, mail).await?);
        let portal = Arc::new(Portal::new(Arc::clone(&apps), config.portal.auto_approve, config.quotas.clone()));
        let state = AppState::new(Shared {
            apps,
            accounts,
            portal,
            sessions: sessions.clone(),
            form_cookies,
            mailer,
            api_limiter: Arc::new(ApiRateLimiter::new(config.limits.api_requests_per_second, config.limits.api_burst)),
            failed_auth: Arc::new(FailedAuthLimiter::new(config.limits.failed_auth_per_minute)),
            security_headers: SecurityHeaders::new(&config),
            config: Arc::new(config),
            service,
            authenticator,
            store,
            broker,
            hub,
            metrics,
            sockets: TaskTracker::new(),
            leptos,
            demo: OnceLock::new(),
            stopping: CancellationToken::new(),
            live_counts: Arc::default(),
        });
        let mut background = if state.config.demo.enabled { start_demo(&state).await } else { Vec::new() };
        background.push(tokio::spawn(async move {
            if let Err(err) = sessions.continuously_delete_expired(SESSION_SWEEP).await {
                tracing::error!(error = %err, "the expired-session sweeper stopped");
            }
        }));
        background.push(changes.spawn(state.config.auth.change_poll));
        background.push(dispatcher.spawn());
        background.push(recorder);
        background.push(expiry::spawn_announcer(state.service.clone()));
        let router = router(state.clone());
        Ok(Self { listener, redirect, router, state, background })
    }

    /// The address actually bound.
    ///
    /// # Panics
    ///
    /// Never in practice: a bound listener always has a local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The address of the HTTP-to-HTTPS redirect, if there is one.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The shared handles, for tests and embedding.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains (see the module docs).
    /// A listener never fails: a failed accept (out of file descriptors) is
    /// logged and tried again.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let https_port = self.local_addr().port();
        let Self { listener, redirect, router, state, background } = self;
        let connections = Connections::new(&state.config.server);
        let stopping = state.stopping.clone();
        let redirecting = redirect.map(|listener| {
            let redirects = tls::redirect_router(&state.config.server, https_port);
            let (connections, stopped) = (connections.clone(), stopping.clone().cancelled_owned());
            tokio::spawn(async move { connections.serve(listener, redirects, stopped).await })
        });
        let hub = Arc::clone(&state.hub);
        let closing = async move {
            shutdown.await;
            stopping.cancel();
            tracing::info!("shutting down: closing WebSockets with 1001");
            hub.close_all(CloseReason::ShuttingDown);
        };
        connections.serve(listener, router, closing).await;
        if let Some(task) = redirecting {
            // Logged: the sockets and the history below must be drained
            // whatever became of the redirect.
            if let Err(err) = task.await {
                tracing::error!(error = %err, "the HTTP-to-HTTPS redirect stopped");
            }
        }
        // Sockets upgraded while the listener was closing.
        state.hub.close_all(CloseReason::ShuttingDown);
        state.sockets.close();
        let grace = state.config.server.shutdown_grace;
        if tokio::time::timeout(grace, state.sockets.wait()).await.is_err() {
            tracing::warn!("some WebSockets did not close within the grace period");
        }
        for task in background {
            task.abort();
        }
        state.mailer.flush(grace).await;
        state.service.flush().await;
        state.broker.shutdown().await;
        tracing::info!("shutdown complete");
    }
}

/// Binds `addr`, speaking HTTPS with `[server.tls]`, and the redirect
/// listener if one is configured.
async fn listen(server: &ServerConfig, addr: SocketAddr) -> anyhow::Result<(Listener, Option<Listener>)> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let tls = &server.tls;
    if !tls.enabled() {
        return Ok((Listener::plain(listener), None));
    }
    let acceptor = tls::acceptor(Path::new(&tls.cert), Path::new(&tls.key))?;
    let redirect = match tls.redirect_from {
        Some(from) => Some(Listener::plain(bind_redirect(from).await?)),
        None => None,
    };
    Ok((Listener::tls(listener, acceptor), redirect))
}

/// Makes the demo's app, rooms and endpoints if missing and starts its bot
/// and its sweeper of throwaway rooms. A failure is logged, not fatal: the
/// demo is not worth refusing to serve.
async fn start_demo(state: &AppState) -> Vec<JoinHandle<()>> {
    match demo::prepare(&state.store, &state.apps, &state.service).await {
        Ok(app) => {
            let config = &state.config.demo;
            let bot = demo::spawn_bot(state.service.clone(), app.clone(), config.bot_interval);
            let lifetime = config.throwaway_lifetime;
            let sweeper = demo::spawn_sweeper(state.service.clone(), app.clone(), lifetime);
            let _ = state.demo.set(DemoState { app, throwaways: Arc::new(Throwaways::new(config)) });
            vec![bot, sweeper]
        }
        Err(err) => {
            tracing::error!(error = %err, "the demo could not be prepared");
            Vec::new()
        }
    }
}

/// The full HTTP stack: routes, metrics, tracing, body limit, panic guard.
pub fn router(state: AppState) -> Router {
    routes::router(&state)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), telemetry::track_http))
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let mut response = ApiError(ServiceError::Internal(anyhow::anyhow!("handler panicked"))).into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
