//! Layered configuration: defaults, then `comms.toml` in the working
//! folder's parent (where the original deployment kept its machine-specific
//! file), then `comms.toml` in the working folder, then `--config FILE`, then
//! environment variables.
//!
//! Environment variables are `COMMS_` followed by the key path with `__`
//! between sections, e.g. `COMMS_DATA_DIR`, `COMMS_SERVER__ADDR`,
//! `COMMS_LIMITS__MAX_MESSAGE_BYTES`. `DATABASE_URL` and `REDIS_URL` are
//! also read as-is, because hosting platforms set them under those names.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::forwarded::{ForwardedHeaders, Origin, TrustedProxies};

/// The file name looked up in the parent and working folders.
pub const CONFIG_FILE_NAME: &str = "comms.toml";

/// The effective configuration of a comms process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `dev` or `prod`: the two differ only by the values in this file.
    pub profile: String,
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
    /// Message history retention.
    pub history: HistoryConfig,
    /// WebSocket keep-alive and timeouts.
    pub websocket: WebSocketConfig,
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
}

/// The HTTP listener and how the server names itself in URLs.
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
    pub shutdown_grace_secs: u64,
    /// Addresses or networks (`127.0.0.1`, `10.0.0.0/8`) of proxies whose
    /// `X-Forwarded-For`, `-Proto` and `-Host` headers are believed.
    pub trusted_proxies: Vec<String>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest WebSocket frame, and largest `message` of a REST publish.
    pub max_message_bytes: usize,
    /// Largest endpoint meta, serialized.
    pub max_meta_bytes: usize,
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
}

/// Message history kept per room for `after_seq` resume and the messages API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Messages retained per room.
    pub max_messages: usize,
    /// Oldest message age retained, in seconds.
    pub max_age_secs: u64,
    /// Most messages written to the database in one transaction.
    pub write_batch: usize,
    /// Seconds without traffic after which a room's history leaves memory
    /// (it is reloaded from the database on next use).
    pub idle_room_secs: u64,
}

/// WebSocket keep-alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Seconds of silence from a client before the server pings it.
    pub ping_interval_secs: u64,
    /// Seconds without any frame (pong included) before a client is dropped.
    pub idle_timeout_secs: u64,
    /// Seconds one socket write may take before the client counts as gone.
    pub write_timeout_secs: u64,
}

/// API-key checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a verified key is trusted without asking the database.
    /// Changes made by this process (rotate, revoke, suspend) take effect at
    /// once; changes made by another process (the CLI) within this time.
    pub key_cache_ttl_ms: u64,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Make the demo app at start and run its bot.
    pub enabled: bool,
    /// Seconds between the bot's messages.
    pub bot_interval_secs: u64,
    /// Minutes a visitor's throwaway room lives.
    pub throwaway_minutes: u64,
    /// Throwaway rooms that may exist at once.
    pub max_throwaway_rooms: usize,
    /// Throwaway rooms that may be made per minute, by all visitors together.
    pub throwaways_per_minute: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bot_interval_secs: 5,
            throwaway_minutes: 30,
            max_throwaway_rooms: 50,
            throwaways_per_minute: 10,
        }
    }
}

/// The developer portal (`/portal`) and admin area (`/admin`).
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
    pub session_hours: u64,
    /// Login attempts allowed per email address per minute (and five
    /// times that per client address, sign-ups included), against password
    /// guessing and hashing floods.
    pub logins_per_minute: u32,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self { auto_approve: true, secure_cookies: false, session_hours: 24, logins_per_minute: 5 }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `comms=debug,info`; `RUST_LOG` wins.
    pub filter: String,
    /// `pretty` for people or `json` for log collectors.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: "dev".into(),
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            broker: BrokerConfig::default(),
            limits: LimitsConfig::default(),
            history: HistoryConfig::default(),
            websocket: WebSocketConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            site: SiteConfig::default(),
            demo: DemoConfig::default(),
            portal: PortalConfig::default(),
        }
    }
}

impl ServerConfig {
    /// `ws://host[:port]` or `wss://…`: where clients reach this server's
    /// WebSocket. From `public_url` when set, else from the request's
    /// origin (its host, and `wss://` when it came over HTTPS, through a
    /// trusted proxy or to comms itself), else from the listening address.
    pub fn ws_base(&self, origin: Option<&Origin>) -> String {
        let public = self.public_url.trim_end_matches('/');
        if let Some(rest) = public.strip_prefix("https://") {
            return format!("wss://{rest}");
        }
        if let Some(rest) = public.strip_prefix("http://") {
            return format!("ws://{rest}");
        }
        let https = origin.map_or(self.tls.enabled(), |origin| origin.https);
        let scheme = if https { "wss" } else { "ws" };
        let host = origin.and_then(|origin| origin.host.clone()).unwrap_or_else(|| self.addr.to_string());
        format!("{scheme}://{host}")
    }

    /// Where a request from `peer` really comes from, believing forwarding
    /// headers only from `trusted_proxies`; always over HTTPS when comms
    /// terminates TLS itself.
    pub fn origin(&self, peer: IpAddr, headers: ForwardedHeaders<'_>) -> Origin {
        // Validated at load; a config built in code with a bad entry
        // trusts no one rather than everyone.
        let mut origin = TrustedProxies::parse(&self.trusted_proxies).unwrap_or_default().origin(peer, headers);
        origin.https |= self.tls.enabled();
        origin
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: String::new(),
            shutdown_grace_secs: 10,
            trusted_proxies: Vec::new(),
            tls: TlsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: String::new(), max_connections: 8 }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_meta_bytes: 4 * 1024,
            max_body_bytes: 256 * 1024,
            connection_queue: 1024,
            max_page_size: 1000,
            api_requests_per_second: 1000,
            api_burst: 2000,
            ws_messages_per_second: 1000,
            ws_burst: 1000,
        }
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self { max_messages: 1000, max_age_secs: 7 * 24 * 3600, write_batch: 512, idle_room_secs: 300 }
    }
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self { ping_interval_secs: 25, idle_timeout_secs: 60, write_timeout_secs: 10 }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { key_cache_ttl_ms: 1000 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".into(), format: "pretty".into() }
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
        rule(matches!(self.profile.as_str(), "dev" | "prod"), "profile must be \"dev\" or \"prod\"")?;
        rule(matches!(self.log.format.as_str(), "pretty" | "json"), "log.format must be \"pretty\" or \"json\"")?;
        rule(self.limits.max_message_bytes >= 16, "limits.max_message_bytes must be at least 16")?;
        rule(self.limits.connection_queue >= 1, "limits.connection_queue must be at least 1")?;
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
            self.broker.redis_url.is_empty() || !self.database_url().starts_with("sqlite:"),
            "broker.redis_url (REDIS_URL) needs a PostgreSQL database.url (DATABASE_URL) that every node shares: \
             with a SQLite file each, nodes would number rooms each on their own",
        )?;
        TrustedProxies::parse(&self.server.trusted_proxies).map_err(|err| ConfigError::Rule(err.to_string()))?;
        let tls = &self.server.tls;
        rule(
            tls.cert.is_empty() == tls.key.is_empty(),
            "server.tls.cert and server.tls.key go together: set both for built-in HTTPS, or neither",
        )?;
        rule(tls.enabled() || tls.redirect_from.is_none(), "server.tls.redirect_from needs server.tls.cert and key")?;
        rule(self.history.max_messages >= 1, "history.max_messages must be at least 1")?;
        rule(self.history.write_batch >= 1, "history.write_batch must be at least 1")?;
        rule(self.websocket.ping_interval_secs >= 1, "websocket.ping_interval_secs must be at least 1")?;
        rule(self.websocket.write_timeout_secs >= 1, "websocket.write_timeout_secs must be at least 1")?;
        rule(self.demo.bot_interval_secs >= 1, "demo.bot_interval_secs must be at least 1")?;
        rule(
            self.websocket.idle_timeout_secs > self.websocket.ping_interval_secs,
            "websocket.idle_timeout_secs must be longer than websocket.ping_interval_secs",
        )?;
        rule(
            self.server.public_url.is_empty()
                || self.server.public_url.starts_with("http://")
                || self.server.public_url.starts_with("https://"),
            "server.public_url must start with http:// or https://",
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
    "history",
    "websocket",
    "auth",
    "log",
    "site",
    "demo",
    "portal",
];

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(config.profile, "prod");
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
        assert_eq!(config.profile, "prod");
        assert!(!config.demo.enabled);
        assert!(config.server.public_url.starts_with("https://"));
        assert!(!config.portal.auto_approve && config.portal.secure_cookies);
    }

    #[test]
    fn ws_base_prefers_the_public_url_then_the_request_origin() {
        let mut server = ServerConfig { trusted_proxies: vec!["127.0.0.1".into()], ..ServerConfig::default() };
        let peer = IpAddr::from([127, 0, 0, 1]);
        let plain = |host| ForwardedHeaders { host: Some(host), ..ForwardedHeaders::default() };
        let via_https = ForwardedHeaders { forwarded_proto: Some("https"), ..plain("comms.example.com") };
        assert_eq!(server.ws_base(Some(&server.origin(peer, plain("example.com:8080")))), "ws://example.com:8080");
        assert_eq!(server.ws_base(Some(&server.origin(peer, plain("evil.com/<script>")))), "ws://127.0.0.1:3000");
        assert_eq!(server.ws_base(Some(&server.origin(peer, via_https))), "wss://comms.example.com");
        let stranger = IpAddr::from([9, 9, 9, 9]);
        assert_eq!(server.ws_base(Some(&server.origin(stranger, via_https))), "ws://comms.example.com");
        assert_eq!(server.ws_base(None), "ws://127.0.0.1:3000");
        server.public_url = "https://comms.example.com/".into();
        assert_eq!(server.ws_base(Some(&server.origin(peer, plain("other")))), "wss://comms.example.com");
    }

    #[test]
    fn built_in_tls_makes_every_request_https() {
        let mut server = ServerConfig::default();
        server.tls.cert = "cert.pem".into();
        server.tls.key = "key.pem".into();
        let direct = ForwardedHeaders { host: Some("comms.example.com"), ..ForwardedHeaders::default() };
        let origin = server.origin(IpAddr::from([9, 9, 9, 9]), direct);
        assert!(origin.https);
        assert_eq!(server.ws_base(Some(&origin)), "wss://comms.example.com");
        assert_eq!(server.ws_base(None), "wss://127.0.0.1:3000");
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
    }
}
