//! Layered configuration: defaults, then `comms.toml` in the working
//! folder's parent (where the original deployment kept its machine-specific
//! file), then `comms.toml` in the working folder, then `--config FILE`, then
//! environment variables.
//!
//! Environment variables are `COMMS_` followed by the key path with `__`
//! between sections, e.g. `COMMS_DATA_DIR`, `COMMS_SERVER__ADDR`,
//! `COMMS_LIMITS__MAX_MESSAGE_BYTES`. `DATABASE_URL` and `REDIS_URL` are
//! also read as-is, because hosting platforms set them under those names.
//!
//! Values are typed as they are read: durations are [`Duration`]s (the
//! files keep plain numbers, in the unit the key's name ends with), the
//! profile, log format and database kind are enums, and trusted proxies are
//! parsed networks, so no caller converts or re-parses a value.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use serde_with::{serde_as, serde_conv, DurationMilliSeconds, DurationSeconds};

use crate::forwarded::{ClientAddr, ForwardedHeaders, Networks, TrustedProxies};

/// The file name looked up in the parent and working folders.
pub const CONFIG_FILE_NAME: &str = "comms.toml";

serde_conv!(
    /// A [`Duration`] written as whole minutes.
    Minutes,
    Duration,
    |duration: &Duration| duration.as_secs() / 60,
    |minutes: u64| -> Result<_, Infallible> { Ok(Duration::from_secs(minutes.saturating_mul(60))) }
);

serde_conv!(
    /// A [`Duration`] written as whole hours.
    Hours,
    Duration,
    |duration: &Duration| duration.as_secs() / 3600,
    |hours: u64| -> Result<_, Infallible> { Ok(Duration::from_secs(hours.saturating_mul(3600))) }
);

/// The two deployment profiles. They differ only by configuration values,
/// never by code paths, except where a value's default or a warning of
/// `comms check-config` depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Development: the defaults.
    Dev,
    /// Production: `comms check-config` warns about development settings,
    /// and HTTPS pages send HSTS.
    Prod,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Which database backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// `sqlite:…`: one file, one node.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: shared by several nodes.
    Postgres,
}

impl DatabaseKind {
    /// The backend of `url`, or `None` for a URL of neither.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// The name shown by `comms check-config`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgresql",
        }
    }
}

/// The effective configuration of a comms process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `dev` or `prod`: the two differ only by the values in this file.
    pub profile: Profile,
    /// Where the SQLite database lives when `database.url` is empty
    /// (`COMMS_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The HTTP listener and public URL.
    pub server: ServerConfig,
    /// Where data is stored.
    pub database: DatabaseConfig,
    /// How messages travel between nodes.
    pub broker: BrokerConfig,
    /// Sizes and rates.
    pub limits: LimitsConfig,
    /// Count quotas (defaults; admins override them per app).
    pub quotas: QuotasConfig,
    /// Message history retention.
    pub history: HistoryConfig,
    /// WebSocket keep-alive and timeouts.
    pub websocket: WebSocketConfig,
    /// Members of presence rooms.
    pub presence: PresenceConfig,
    /// API-key checks.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// The web site.
    pub site: SiteConfig,
    /// The public demo.
    pub demo: DemoConfig,
    /// The developer portal and admin area.
    pub portal: PortalConfig,
    /// How the portal's emails (address confirmations, password resets)
    /// leave.
    pub email: EmailConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    /// How webhooks are delivered.
    pub webhooks: WebhooksConfig,
    /// How usage is counted and kept.
    pub usage: UsageConfig,
}

/// Usage accounting (see [`crate::usage`]).
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// How often a node writes what it counted to the database; other
    /// nodes' answers include it from then on (this node's, at once). A
    /// write also happens at every minute's turn.
    #[serde(rename = "flush_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub flush: Duration,
    /// How long per-minute rows are kept.
    #[serde(rename = "keep_minutes_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub keep_minutes: Duration,
    /// How long per-hour rows are kept.
    #[serde(rename = "keep_hours_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub keep_hours: Duration,
    /// How long per-day rows are kept.
    #[serde(rename = "keep_days_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub keep_days: Duration,
    /// Most periods one `GET /api/v1/usage` may cover.
    pub max_periods: u32,
}

impl Default for UsageConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            flush: Duration::from_secs(10),
            keep_minutes: Duration::from_secs(2 * DAY),
            keep_hours: Duration::from_secs(35 * DAY),
            keep_days: Duration::from_secs(400 * DAY),
            max_periods: 7 * 24 * 60,
        }
    }
}

impl UsageConfig {
    /// How long rows of `granularity` are kept.
    pub fn keep(&self, granularity: comms_protocol::usage::Granularity) -> Duration {
        use comms_protocol::usage::Granularity;
        match granularity {
            Granularity::Minute => self.keep_minutes,
            Granularity::Hour => self.keep_hours,
            Granularity::Day => self.keep_days,
        }
    }
}

/// Webhook delivery (see [`crate::webhooks`]).
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// How long one attempt may take, connecting included.
    #[serde(rename = "timeout_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub timeout: Duration,
    /// The pause before the first retry; each later one doubles, up to an
    /// hour.
    #[serde(rename = "first_retry_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub first_retry: Duration,
    /// How long after the event failed attempts are retried; then the
    /// delivery is failed.
    #[serde(rename = "retry_for_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub retry_for: Duration,
    /// Attempts in flight on this node at once.
    pub concurrency: usize,
    /// Attempts in flight for one app at once on this node, so a slow
    /// receiver never holds back other apps' webhooks.
    pub concurrency_per_app: usize,
    /// How long delivered and failed deliveries stay listed before they
    /// are deleted.
    #[serde(rename = "keep_finished_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub keep_finished: Duration,
    /// In the `prod` profile, webhooks may not post to loopback, private or
    /// link-local addresses, except to these addresses and networks.
    pub allow_private: Networks,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(10),
            retry_for: Duration::from_secs(24 * 3600),
            concurrency: 64,
            concurrency_per_app: 8,
            keep_finished: Duration::from_secs(7 * 24 * 3600),
            allow_private: Networks::default(),
        }
    }
}

/// Who may read `/metrics`: it tells how busy the server is and which
/// routes are used, nothing a visitor should see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Client addresses or networks (after `server.trusted_proxies`) that
    /// may read it, e.g. a Prometheus on this machine.
    pub allow: Networks,
    /// A token that lets any client read it with `Authorization: Bearer
    /// TOKEN`; empty: none.
    pub bearer_token: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { allow: Networks::parse(&["127.0.0.1", "::1"]).expect("loopback parses"), bearer_token: String::new() }
    }
}

impl MetricsConfig {
    /// Whether a client at `ip` presenting `bearer` (if any) may read
    /// `/metrics`. The token is compared in constant time.
    pub fn permits(&self, ip: IpAddr, bearer: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let token_matches = !self.bearer_token.is_empty()
            && bearer.is_some_and(|bearer| bool::from(bearer.as_bytes().ct_eq(self.bearer_token.as_bytes())));
        self.allow.contains(ip) || token_matches
    }
}

/// The HTTP listener and how the server names itself in URLs.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address `comms serve` listens on (`--addr` overrides it).
    pub addr: SocketAddr,
    /// Base URL clients reach this server at, e.g. `https://comms.example.com`.
    /// Endpoint `ws_url`s are built from it. Empty: taken from each
    /// request's `Host` header with the `ws://` scheme.
    pub public_url: String,
    /// Seconds to wait for connections to drain on SIGTERM.
    #[serde(rename = "shutdown_grace_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub shutdown_grace: Duration,
    /// Addresses or networks (`127.0.0.1`, `10.0.0.0/8`) of proxies whose
    /// `X-Forwarded-For`, `-Proto` and `-Host` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Seconds a client has to send a whole request head: from accepting
    /// the connection (TLS handshake included) for its first request, from
    /// the request's first byte for later ones. Then the connection is
    /// dropped, so half-sent requests cannot hold connections open.
    #[serde(rename = "header_read_timeout_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub header_read_timeout: Duration,
    /// Seconds a kept-alive connection may wait for its next request after
    /// a response before it is closed.
    #[serde(rename = "keep_alive_idle_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub keep_alive_idle: Duration,
    /// Most HTTP connections open at once, over every listener (the
    /// redirect's too), TLS handshakes included; a WebSocket leaves the
    /// count once upgraded. Past it new connections wait in the kernel's
    /// listen queue until one closes.
    pub max_connections: u32,
    /// Built-in HTTPS, for setups without a proxy in front.
    pub tls: TlsConfig,
}

/// Built-in HTTPS (rustls): with `cert` and `key`, `comms serve` speaks
/// HTTPS and `wss://` itself on `server.addr`. Off when both are empty,
/// for a proxy in front (nginx) to terminate TLS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate chain, the site's certificate first
    /// (certbot's `fullchain.pem`). Read again when it changes.
    pub cert: String,
    /// PEM file of the private key (certbot's `privkey.pem`).
    pub key: String,
    /// A plain-HTTP address answering every request with a redirect to
    /// https (`0.0.0.0:80`); none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_from: Option<SocketAddr>,
}

impl TlsConfig {
    /// Whether comms terminates TLS itself.
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty()
    }
}

/// Where data is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`, or `postgres://…` (also `postgresql://…`) for a
    /// PostgreSQL database several nodes can share (`DATABASE_URL`). Empty:
    /// `comms.db` in `data_dir`. Migrations run at start and with
    /// `comms migrate`.
    pub url: String,
    /// Size of the connection pool (SQLite's readers, or PostgreSQL's
    /// connections).
    pub max_connections: u32,
    /// Niceness (0–19) of SQLite's writer thread: higher lets message
    /// deliveries preempt its commits sooner, at the cost of requests that
    /// wait for a commit (room creations) on a saturated core. See
    /// `docs/performance.md`.
    pub sqlite_writer_nice: u8,
}

/// How messages travel: in-process (one node) or through Redis (several
/// nodes behind a load balancer acting as one server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `redis://…` URL (`REDIS_URL`). Empty: the in-process broker, one node.
    pub redis_url: String,
    /// Start of every Redis key and channel comms uses, so several
    /// deployments can share one Redis.
    pub key_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self { redis_url: String::new(), key_prefix: "comms".into() }
    }
}

/// Sizes and rates. Every limit a client can hit lives here.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest WebSocket frame, and largest `message` of a REST publish.
    pub max_message_bytes: usize,
    /// Largest endpoint meta, serialized.
    pub max_meta_bytes: usize,
    /// Deepest nesting of arrays and objects (together) in a meta or a
    /// message payload.
    pub max_json_depth: usize,
    /// Largest HTTP request body.
    pub max_body_bytes: usize,
    /// Frames queued for one connection before it counts as too slow and is
    /// closed with 1013.
    pub connection_queue: usize,
    /// Largest `limit` of the messages API.
    pub max_page_size: usize,
    /// REST requests per second per app (sustained); 0 disables the limit.
    pub api_requests_per_second: u32,
    /// REST requests an app may burst above the sustained rate.
    pub api_burst: u32,
    /// Messages per second one WebSocket connection may send; 0 disables.
    pub ws_messages_per_second: u32,
    /// Messages one connection may burst above the sustained rate.
    pub ws_burst: u32,
    /// Signals per second one WebSocket connection may send (also its
    /// burst); 0 disables the limit.
    pub ws_signals_per_second: u32,
    /// Largest signal payload, serialized.
    pub max_signal_bytes: usize,
    /// Failed credentials (API keys that do not authenticate, unknown
    /// endpoint codes) one client address may present per minute before it
    /// gets `429`; 0 disables the limit.
    pub failed_auth_per_minute: u32,
    /// How long a message's `nonce` is remembered: the same endpoint
    /// sending it again within this time publishes nothing new.
    #[serde(rename = "nonce_window_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub nonce_window: Duration,
}

/// Count quotas: the defaults every app gets unless an admin set its own
/// value (see [`crate::quotas`]). 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    /// Rooms of one app.
    pub rooms_per_app: u64,
    /// Endpoints of one room.
    pub endpoints_per_room: u64,
    /// Apps one portal account may register.
    pub apps_per_account: u64,
    /// Live WebSocket connections of one app, over every node.
    pub sockets_per_app: u64,
    /// Live connections of one endpoint code, over every node.
    pub sockets_per_endpoint: u64,
    /// Live connections from one client address (after trusted proxies),
    /// over every node.
    pub sockets_per_ip: u64,
    /// Webhooks of one app.
    pub webhooks_per_app: u64,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        Self {
            rooms_per_app: 10_000,
            endpoints_per_room: 1_000,
            apps_per_account: 10,
            sockets_per_app: 10_000,
            sockets_per_endpoint: 1_000,
            sockets_per_ip: 200,
            webhooks_per_app: 10,
        }
    }
}

/// Message history kept per room for `after_seq` resume and the messages API.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Messages retained per room.
    pub max_messages: usize,
    /// Oldest message age retained, in seconds.
    #[serde(rename = "max_age_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub max_age: Duration,
    /// Most messages written to the database in one transaction.
    pub write_batch: usize,
    /// Seconds without traffic after which a room's history leaves memory
    /// (it is reloaded from the database on next use).
    #[serde(rename = "idle_room_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub idle_room: Duration,
}

/// WebSocket keep-alive.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Seconds of silence from a client before the server pings it.
    #[serde(rename = "ping_interval_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub ping_interval: Duration,
    /// Seconds without any frame (pong included) before a client is dropped.
    #[serde(rename = "idle_timeout_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub idle_timeout: Duration,
    /// Seconds one socket write may take before the client counts as gone.
    #[serde(rename = "write_timeout_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub write_timeout: Duration,
}

/// Members of presence rooms.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// How long an endpoint stays a member after its last connection
    /// closes; a connection of it opening within that time sends neither
    /// `leave` nor `join`, so a reconnecting tab does not flap.
    #[serde(rename = "leave_grace_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub leave_grace: Duration,
}

/// API-key checks.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a verified key is trusted without asking the database
    /// (changes to its app drop it earlier, see `change_poll`).
    #[serde(rename = "key_cache_ttl_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub key_cache_ttl: Duration,
    /// How often a node reads the changes to apps made elsewhere (another
    /// node, the command line): suspensions, key rotations, quotas.
    #[serde(rename = "change_poll_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub change_poll: Duration,
}

/// The web site: pages rendered by the server, and the files the browser
/// loads (the wasm bundle, styles, favicon) built by cargo-leptos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// The folder cargo-leptos builds the site's files into.
    pub root: PathBuf,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self { root: PathBuf::from("target/site") }
    }
}

/// The public demo: an app whose rooms and endpoints the site shows, made
/// at start, and a bot that keeps one room busy.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Make the demo app at start and run its bot.
    pub enabled: bool,
    /// Seconds between the bot's messages.
    #[serde(rename = "bot_interval_secs")]
    #[serde_as(as = "DurationSeconds<u64>")]
    pub bot_interval: Duration,
    /// Minutes a visitor's throwaway room lives.
    #[serde(rename = "throwaway_minutes")]
    #[serde_as(as = "Minutes")]
    pub throwaway_lifetime: Duration,
    /// Throwaway rooms that may exist at once.
    pub max_throwaway_rooms: usize,
    /// Throwaway rooms that may be made per minute, by all visitors together.
    pub throwaways_per_minute: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bot_interval: Duration::from_secs(5),
            throwaway_lifetime: Duration::from_secs(30 * 60),
            max_throwaway_rooms: 50,
            throwaways_per_minute: 10,
        }
    }
}

/// The developer portal (`/portal`) and admin area (`/admin`).
#[serde_as]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// Approve apps as soon as developers register them (dev), instead of
    /// waiting for an admin (prod).
    pub auto_approve: bool,
    /// Send the session cookie only over HTTPS. On in production, where
    /// nginx terminates TLS; off for `http://127.0.0.1` in development.
    pub secure_cookies: bool,
    /// Hours a portal session lasts without activity.
    #[serde(rename = "session_hours")]
    #[serde_as(as = "Hours")]
    pub session_lifetime: Duration,
    /// Login attempts allowed per email address and client address per
    /// minute (and five times that per client address, sign-ups included),
    /// against password guessing and hashing floods.
    pub logins_per_minute: u32,
    /// argon2 hashes (sign-ups, logins) running at once; past it an attempt
    /// gets `429`. Each takes 19 MiB while it runs.
    pub max_concurrent_hashes: usize,
    /// Live connection counts (`/portal/live/{app}`) one account may hold
    /// open at once on a node: each looks the count up twice a second.
    pub live_counts_per_account: usize,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            auto_approve: true,
            secure_cookies: false,
            session_lifetime: Duration::from_secs(24 * 3600),
            logins_per_minute: 5,
            max_concurrent_hashes: 4,
            live_counts_per_account: 8,
        }
    }
}

/// How the portal's emails leave: through an SMTP server, or (without
/// one, in development) into the log, links included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://HOST:PORT` (add `?tls=required` for STARTTLS),
    /// `smtps://HOST:PORT` (TLS from the first byte), with
    /// `USER:PASSWORD@` before the host for a server that wants a login.
    /// Empty: nothing is sent, and every email is written to the log in
    /// full instead.
    pub smtp_url: String,
    /// The sender: `comms <noreply@example.com>` or a bare address.
    pub from: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self { smtp_url: String::new(), from: "comms <comms@localhost>".into() }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `comms=debug,info`; `RUST_LOG` wins.
    pub filter: String,
    /// `pretty` for people or `json` for log collectors.
    pub format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Dev,
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            broker: BrokerConfig::default(),
            limits: LimitsConfig::default(),
            quotas: QuotasConfig::default(),
            history: HistoryConfig::default(),
            websocket: WebSocketConfig::default(),
            presence: PresenceConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            site: SiteConfig::default(),
            demo: DemoConfig::default(),
            portal: PortalConfig::default(),
            email: EmailConfig::default(),
            metrics: MetricsConfig::default(),
            webhooks: WebhooksConfig::default(),
            usage: UsageConfig::default(),
        }
    }
}

impl ServerConfig {
    /// `ws://host[:port]` or `wss://…`: where clients reach this server's
    /// WebSocket. From `public_url` when set, else from the request's
    /// client address (its host, and `wss://` when it came over HTTPS,
    /// through a trusted proxy or to comms itself), else from the listening
    /// address.
    pub fn ws_base(&self, client: Option<&ClientAddr>) -> WsBase {
        let public = self.public_url.trim_end_matches('/');
        if let Some(rest) = public.strip_prefix("https://") {
            return WsBase(format!("wss://{rest}"));
        }
        if let Some(rest) = public.strip_prefix("http://") {
            return WsBase(format!("ws://{rest}"));
        }
        let https = client.map_or(self.tls.enabled(), |client| client.https);
        let scheme = if https { "wss" } else { "ws" };
        let host = client.and_then(|client| client.host.clone()).unwrap_or_else(|| self.addr.to_string());
        WsBase(format!("{scheme}://{host}"))
    }

    /// `http(s)://host[:port]`, no trailing slash: the start of the links
    /// the portal mails (address confirmation, password reset). From
    /// `public_url` when set, else the address the server `listens` on;
    /// never from a request's `Host`, which whoever asks for a password
    /// reset could set to their own site to receive the victim's link.
    pub fn site_base(&self, listens: SocketAddr) -> String {
        let public = self.public_url.trim_end_matches('/');
        if !public.is_empty() {
            return public.to_owned();
        }
        let scheme = if self.tls.enabled() { "https" } else { "http" };
        format!("{scheme}://{listens}")
    }

    /// Where a request from `peer` really comes from, believing forwarding
    /// headers only from `trusted_proxies`; always over HTTPS when comms
    /// terminates TLS itself.
    pub fn client_addr(&self, peer: IpAddr, headers: ForwardedHeaders<'_>) -> ClientAddr {
        let mut client = self.trusted_proxies.client_addr(peer, headers);
        client.https |= self.tls.enabled();
        client
    }
}

/// `ws://host[:port]` or `wss://…`, where clients reach this server's
/// WebSocket: the start of every endpoint's `ws_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsBase(String);

impl WsBase {
    /// The `ws_url` of the endpoint with `code`.
    pub fn endpoint_url(&self, code: &str) -> String {
        format!("{}/ws/endpoint/{code}/", self.0)
    }

    /// The base itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: String::new(),
            shutdown_grace: Duration::from_secs(10),
            trusted_proxies: TrustedProxies::default(),
            header_read_timeout: Duration::from_secs(10),
            // Longer than a proxy's idle upstream connections (nginx keeps
            // them 60 s), so the proxy, not comms, closes them: a proxy
            // sending on a connection comms is closing would answer 502.
            keep_alive_idle: Duration::from_secs(75),
            max_connections: 10_000,
            tls: TlsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: String::new(), max_connections: 8, sqlite_writer_nice: 10 }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_meta_bytes: 4 * 1024,
            max_json_depth: 32,
            max_body_bytes: 256 * 1024,
            connection_queue: 1024,
            max_page_size: 1000,
            api_requests_per_second: 1000,
            api_burst: 2000,
            ws_messages_per_second: 1000,
            ws_burst: 1000,
            ws_signals_per_second: 20,
            max_signal_bytes: 1024,
            failed_auth_per_minute: 60,
            nonce_window: Duration::from_secs(120),
        }
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            max_messages: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
            write_batch: 512,
            idle_room: Duration::from_secs(300),
        }
    }
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self { leave_grace: Duration::from_millis(2000) }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { key_cache_ttl: Duration::from_millis(1000), change_poll: Duration::from_millis(250) }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".into(), format: LogFormat::Pretty }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// A file is not valid TOML, or a key or value is wrong.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A value breaks a rule; the text names the key.
    #[error("invalid configuration: {0}")]
    Rule(String),
}

impl Config {
    /// Loads the layered configuration for a process started in `work_dir`.
    ///
    /// # Errors
    ///
    /// A named `--config` file that does not exist, a file that is not valid
    /// TOML, an unknown key, a value of the wrong type, or a value that
    /// breaks a rule (see [`Config::validate`]).
    pub fn load(work_dir: &Path, explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        // Optional files: `Toml::file` skips a missing one. Paths are made
        // absolute first, since for a relative path it would search upwards.
        let work_dir = std::path::absolute(work_dir).map_err(|err| ConfigError::Rule(err.to_string()))?;
        if let Some(parent) = work_dir.parent() {
            figment = figment.merge(Toml::file(parent.join(CONFIG_FILE_NAME)));
        }
        figment = figment.merge(Toml::file(work_dir.join(CONFIG_FILE_NAME)));
        if let Some(path) = explicit {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        Self::from_figment(figment.merge(environment()))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules that types alone cannot express.
    ///
    /// # Errors
    ///
    /// The first rule broken, named by its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rule = |ok: bool, text: &str| if ok { Ok(()) } else { Err(ConfigError::Rule(text.into())) };
        rule(self.limits.max_message_bytes >= 16, "limits.max_message_bytes must be at least 16")?;
        rule(self.limits.connection_queue >= 1, "limits.connection_queue must be at least 1")?;
        rule(self.webhooks.concurrency >= 1, "webhooks.concurrency must be at least 1")?;
        rule(self.webhooks.concurrency_per_app >= 1, "webhooks.concurrency_per_app must be at least 1")?;
        rule(!self.webhooks.timeout.is_zero(), "webhooks.timeout_secs must be at least 1")?;
        rule(!self.webhooks.first_retry.is_zero(), "webhooks.first_retry_ms must be at least 1")?;
        rule(
            (1..=64).contains(&self.limits.max_json_depth),
            "limits.max_json_depth must be from 1 to 64: common JSON parsers of clients stop near 128",
        )?;
        rule(self.limits.max_page_size >= 1, "limits.max_page_size must be at least 1")?;
        rule(
            !self.broker.key_prefix.is_empty() && !self.broker.key_prefix.contains(char::is_whitespace),
            "broker.key_prefix must be non-empty, without spaces",
        )?;
        rule(
            self.broker.redis_url.is_empty()
                || self.broker.redis_url.starts_with("redis://")
                || self.broker.redis_url.starts_with("rediss://"),
            "broker.redis_url must start with redis:// or rediss://",
        )?;
        rule(
            self.database_kind().is_some(),
            "database.url (DATABASE_URL) must be sqlite://PATH for SQLite or \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE (or postgresql://…) for PostgreSQL",
        )?;
        rule(
            self.broker.redis_url.is_empty() || self.database_kind() != Some(DatabaseKind::Sqlite),
            "broker.redis_url (REDIS_URL) needs a PostgreSQL database.url (DATABASE_URL) that every node shares: \
             with a SQLite file each, nodes would number rooms each on their own",
        )?;
        let tls = &self.server.tls;
        rule(
            tls.cert.is_empty() == tls.key.is_empty(),
            "server.tls.cert and server.tls.key go together: set both for built-in HTTPS, or neither",
        )?;
        rule(tls.enabled() || tls.redirect_from.is_none(), "server.tls.redirect_from needs server.tls.cert and key")?;
        rule(!self.server.header_read_timeout.is_zero(), "server.header_read_timeout_secs must be at least 1")?;
        rule(!self.server.keep_alive_idle.is_zero(), "server.keep_alive_idle_secs must be at least 1")?;
        rule(self.server.max_connections >= 1, "server.max_connections must be at least 1")?;
        rule(self.database.sqlite_writer_nice <= 19, "database.sqlite_writer_nice must be 0 to 19")?;
        rule(self.history.max_messages >= 1, "history.max_messages must be at least 1")?;
        rule(!self.limits.nonce_window.is_zero(), "limits.nonce_window_secs must be at least 1")?;
        rule(self.portal.live_counts_per_account >= 1, "portal.live_counts_per_account must be at least 1")?;
        rule(
            self.history.idle_room >= self.limits.nonce_window,
            "history.idle_room_secs must be at least limits.nonce_window_secs: a room's log keeps its nonces",
        )?;
        rule(
            (Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.usage.flush),
            "usage.flush_ms must be from 100 to 60000",
        )?;
        rule(self.usage.max_periods >= 1, "usage.max_periods must be at least 1")?;
        rule(
            self.usage.keep_minutes >= Duration::from_secs(3600)
                && self.usage.keep_hours >= Duration::from_secs(24 * 3600)
                && self.usage.keep_days >= Duration::from_secs(24 * 3600),
            "usage.keep_minutes_secs must be at least 3600, usage.keep_hours_secs and usage.keep_days_secs \
             at least 86400",
        )?;
        rule(self.history.write_batch >= 1, "history.write_batch must be at least 1")?;
        rule(!self.websocket.ping_interval.is_zero(), "websocket.ping_interval_secs must be at least 1")?;
        rule(!self.websocket.write_timeout.is_zero(), "websocket.write_timeout_secs must be at least 1")?;
        rule(!self.demo.bot_interval.is_zero(), "demo.bot_interval_secs must be at least 1")?;
        rule(
            self.websocket.idle_timeout > self.websocket.ping_interval,
            "websocket.idle_timeout_secs must be longer than websocket.ping_interval_secs",
        )?;
        rule(
            self.server.public_url.is_empty()
                || self.server.public_url.starts_with("http://")
                || self.server.public_url.starts_with("https://"),
            "server.public_url must start with http:// or https://",
        )?;
        rule(
            self.email.from.parse::<lettre::message::Mailbox>().is_ok(),
            "email.from must be an address, or a name and an address like `comms <noreply@example.com>`",
        )?;
        rule(
            self.email.smtp_url.is_empty()
                || lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&self.email.smtp_url).is_ok(),
            "email.smtp_url must be smtp://HOST:PORT or smtps://HOST:PORT, with USER:PASSWORD@ before the host \
             for a login",
        )?;
        Ok(())
    }

    /// The database URL in effect: the configured one, or a SQLite file in
    /// the data folder.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("comms.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// The backend [`Config::database_url`] names; `None` for a URL of
    /// neither kind (refused by [`Config::validate`]).
    pub fn database_kind(&self) -> Option<DatabaseKind> {
        DatabaseKind::of(&self.database_url())
    }

    /// The effective configuration as TOML, for `--print-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("every config value has a TOML form")
    }
}

/// `COMMS_*` variables, plus the conventional `DATABASE_URL` and `REDIS_URL`.
fn environment() -> Figment {
    Figment::new()
        .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database.url".into()))
        .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "broker.redis_url".into()))
        .merge(Env::prefixed("COMMS_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
        }))
}

/// Only variables naming a real key are read, so an unrelated `COMMS_…`
/// variable in the environment does not fail the strict key check.
const TOP_LEVEL_KEYS: &[&str] = &[
    "profile",
    "data_dir",
    "server",
    "database",
    "broker",
    "limits",
    "quotas",
    "history",
    "websocket",
    "presence",
    "auth",
    "log",
    "site",
    "demo",
    "portal",
    "email",
    "metrics",
    "webhooks",
    "usage",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_can_be_set_from_the_environment() {
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        let mut sections: Vec<&str> = defaults.as_table().unwrap().keys().map(String::as_str).collect();
        let mut read: Vec<&str> = TOP_LEVEL_KEYS.to_vec();
        sections.sort_unstable();
        read.sort_unstable();
        assert_eq!(read, sections, "TOP_LEVEL_KEYS lists every key of Config");
    }

    #[test]
    fn files_layer_parent_then_work_dir_then_explicit() {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("app");
        std::fs::create_dir(&work).unwrap();
        std::fs::write(
            root.path().join(CONFIG_FILE_NAME),
            "profile = \"prod\"\n[limits]\nmax_page_size = 7\nqueue = 1\n",
        )
        .unwrap();
        assert!(Config::load(&work, None).is_err(), "unknown keys are refused");

        std::fs::write(root.path().join(CONFIG_FILE_NAME), "profile = \"prod\"\n[limits]\nmax_page_size = 7\n")
            .unwrap();
        std::fs::write(work.join(CONFIG_FILE_NAME), "[limits]\nmax_page_size = 8\n").unwrap();
        let config = Config::load(&work, None).unwrap();
        assert_eq!(config.profile, Profile::Prod);
        assert_eq!(config.limits.max_page_size, 8);

        let explicit = root.path().join("explicit.toml");
        std::fs::write(&explicit, "[limits]\nmax_page_size = 9\n").unwrap();
        assert_eq!(Config::load(&work, Some(&explicit)).unwrap().limits.max_page_size, 9);
        assert!(Config::load(&work, Some(&root.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let config = Config::default();
        let back: Config = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn every_key_is_in_the_configuration_reference() {
        let docs = include_str!("../../docs/configuration.md");
        let table: toml::Table = toml::from_str(&Config::default().to_toml()).unwrap();
        for (key, value) in &table {
            match value.as_table() {
                Some(section) => {
                    assert!(docs.contains(&format!("## `[{key}]`")), "section [{key}] is not documented");
                    for (inner, value) in section {
                        assert!(docs.contains(&format!("| `{inner}` |")), "{key}.{inner} is not documented");
                        let Some(subsection) = value.as_table() else { continue };
                        assert!(docs.contains(&format!("## `[{key}.{inner}]`")), "[{key}.{inner}] is not documented");
                        for leaf in subsection.keys() {
                            assert!(docs.contains(&format!("| `{leaf}` |")), "{key}.{inner}.{leaf} is not documented");
                        }
                    }
                }
                None => assert!(docs.contains(&format!("| `{key}` |")), "{key} is not documented"),
            }
        }
    }

    /// The production example the deployment guide shows is a config this
    /// version accepts, with the values the guide promises.
    #[test]
    fn the_deployment_example_config_loads() {
        let work = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/comms.toml");
        let config = Config::load(work.path(), Some(&example)).unwrap();
        assert_eq!(config.profile, Profile::Prod);
        assert!(!config.demo.enabled);
        assert!(config.server.public_url.starts_with("https://"));
        assert!(!config.portal.auto_approve && config.portal.secure_cookies);
        assert!(config.email.smtp_url.starts_with("smtp://"), "production sends its emails");
    }

    #[test]
    fn ws_base_prefers_the_public_url_then_the_request_host() {
        let trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        let mut server = ServerConfig { trusted_proxies, ..ServerConfig::default() };
        let peer = IpAddr::from([127, 0, 0, 1]);
        let plain = |host| ForwardedHeaders { host: Some(host), ..ForwardedHeaders::default() };
        let via_https = ForwardedHeaders { forwarded_proto: Some("https"), ..plain("comms.example.com") };
        assert_eq!(
            server.ws_base(Some(&server.client_addr(peer, plain("example.com:8080")))).as_str(),
            "ws://example.com:8080"
        );
        assert_eq!(
            server.ws_base(Some(&server.client_addr(peer, plain("evil.com/<script>")))).as_str(),
            "ws://127.0.0.1:3000"
        );
        assert_eq!(server.ws_base(Some(&server.client_addr(peer, via_https))).as_str(), "wss://comms.example.com");
        let stranger = IpAddr::from([9, 9, 9, 9]);
        assert_eq!(server.ws_base(Some(&server.client_addr(stranger, via_https))).as_str(), "ws://comms.example.com");
        assert_eq!(server.ws_base(None).as_str(), "ws://127.0.0.1:3000");
        server.public_url = "https://comms.example.com/".into();
        assert_eq!(server.ws_base(Some(&server.client_addr(peer, plain("other")))).as_str(), "wss://comms.example.com");
    }

    #[test]
    fn built_in_tls_makes_every_request_https() {
        let mut server = ServerConfig::default();
        server.tls.cert = "cert.pem".into();
        server.tls.key = "key.pem".into();
        let direct = ForwardedHeaders { host: Some("comms.example.com"), ..ForwardedHeaders::default() };
        let client = server.client_addr(IpAddr::from([9, 9, 9, 9]), direct);
        assert!(client.https);
        assert_eq!(server.ws_base(Some(&client)).as_str(), "wss://comms.example.com");
        assert_eq!(server.ws_base(None).as_str(), "wss://127.0.0.1:3000");
    }

    #[test]
    fn durations_keep_the_unit_their_key_names() {
        let config: Config = toml::from_str(
            "[websocket]\nping_interval_secs = 7\nidle_timeout_secs = 30\n[auth]\nkey_cache_ttl_ms = 250\n\
             [demo]\nthrowaway_minutes = 2\n[portal]\nsession_hours = 3\n[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             header_read_timeout_secs = 4\nkeep_alive_idle_secs = 90\n",
        )
        .unwrap();
        assert_eq!(config.websocket.ping_interval, Duration::from_secs(7));
        assert_eq!(config.auth.key_cache_ttl, Duration::from_millis(250));
        assert_eq!(config.demo.throwaway_lifetime, Duration::from_secs(120));
        assert_eq!(config.portal.session_lifetime, Duration::from_secs(3 * 3600));
        assert_eq!(config.server.trusted_proxies, TrustedProxies::parse(&["10.0.0.0/8"]).unwrap());
        assert_eq!(config.server.header_read_timeout, Duration::from_secs(4));
        assert_eq!(config.server.keep_alive_idle, Duration::from_secs(90));
        let printed: toml::Table = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(printed["demo"]["throwaway_minutes"].as_integer(), Some(2));
        assert_eq!(printed["auth"]["key_cache_ttl_ms"].as_integer(), Some(250));
    }

    #[test]
    fn bad_values_are_refused_when_read() {
        for bad in ["profile = \"staging\"", "[log]\nformat = \"xml\"", "[server]\ntrusted_proxies = [\"localhost\"]"] {
            assert!(toml::from_str::<Config>(bad).is_err(), "{bad}");
        }
        let config = Config {
            database: DatabaseConfig { url: "mysql://x".into(), ..DatabaseConfig::default() },
            ..Config::default()
        };
        assert!(config.validate().is_err(), "an unknown database kind");
    }

    #[test]
    fn metrics_are_for_loopback_or_the_token_holder() {
        let mut metrics = MetricsConfig::default();
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let stranger = IpAddr::from([203, 0, 113, 5]);
        assert!(metrics.permits(loopback, None));
        assert!(!metrics.permits(stranger, None));
        assert!(!metrics.permits(stranger, Some("")), "no token configured, none matches");
        metrics.bearer_token = "s3cret".into();
        assert!(metrics.permits(stranger, Some("s3cret")));
        assert!(!metrics.permits(stranger, Some("s3cre")));
    }

    #[test]
    fn rules_are_checked() {
        let mut config = Config::default();
        config.server.public_url = "example.com".into();
        assert!(config.validate().is_err());
        config.server.public_url = "https://example.com".into();
        assert!(config.validate().is_ok());

        config.server.tls.redirect_from = Some(SocketAddr::from(([0, 0, 0, 0], 80)));
        assert!(config.validate().is_err(), "a redirect without TLS");
        config.server.tls.cert = "fullchain.pem".into();
        assert!(config.validate().is_err(), "a certificate without its key");
        config.server.tls.key = "privkey.pem".into();
        assert!(config.validate().is_ok());

        config.server.max_connections = 0;
        assert!(config.validate().is_err(), "no connection could ever be served");
        config.server.max_connections = 1;
        config.server.header_read_timeout = Duration::ZERO;
        assert!(config.validate().is_err(), "every connection would be dropped at once");
        config.server.header_read_timeout = Duration::from_secs(10);

        for (smtp_url, from, valid) in [
            ("smtp://127.0.0.1:25", "comms <noreply@example.com>", true),
            ("smtps://user:secret@smtp.example.com", "noreply@example.com", true),
            ("smtp://mail.example.com:587?tls=required", "noreply@example.com", true),
            ("mail.example.com", "noreply@example.com", false),
            ("", "not an address", false),
        ] {
            config.email = EmailConfig { smtp_url: smtp_url.into(), from: from.into() };
            assert_eq!(config.validate().is_ok(), valid, "{smtp_url} {from}");
        }
    }

    #[test]
    fn mailed_links_start_at_the_public_url_never_at_a_requests_host() {
        let mut server = ServerConfig::default();
        let listens = SocketAddr::from(([127, 0, 0, 1], 3107));
        assert_eq!(server.site_base(listens), "http://127.0.0.1:3107");
        server.tls.cert = "cert.pem".into();
        assert_eq!(server.site_base(listens), "https://127.0.0.1:3107");
        server.public_url = "https://comms.example.com/".into();
        assert_eq!(server.site_base(listens), "https://comms.example.com");
    }
}
