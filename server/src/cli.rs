//! The `comms` command line. Every command reads the same layered config
//! (see `comms_core::config`), so `comms app create` run next to a live
//! `comms serve` works on the same data folder (`COMMS_DATA_DIR`).
//!
//! Command results go to stdout as JSON lines, logs and errors to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use comms_core::account_mail::AccountMail;
use comms_core::accounts::Accounts;
use comms_core::apps::{Apps, CLI_ACTOR};
use comms_core::config::Config;
use comms_core::email::Mailer;
use comms_core::origins::AllowedOrigins;
use comms_core::plan::Plan;
use comms_core::quotas::Quota;
use comms_core::store::{redact_url, AppFilter, AppRecord, AppStatus};
use comms_core::time::format_ms;
use serde_json::json;

use crate::startup::{open_store, shutdown_signal, Application};
use crate::telemetry;

/// A self-hostable real-time communication server.
#[derive(Debug, Parser)]
#[command(name = "comms", version, about)]
pub struct Cli {
    /// A TOML config file, read after `../comms.toml` and `./comms.toml`.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// What to do; without one, `serve` (so `cargo leptos watch` and other
    /// tools that start the binary bare get a running server).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (REST API, legacy API, WebSocket).
    Serve {
        /// Address to listen on; overrides `server.addr`.
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// Print the effective configuration as TOML and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Check the configuration and print what `serve` would do with it
    /// (listener, public URL, TLS, database, broker, demo, app approval,
    /// doubtful settings), without starting or connecting to anything.
    CheckConfig,
    /// Print the OpenAPI 3 document of the REST API (also served at
    /// `/api/v1/openapi.json`).
    Openapi,
    /// Manage apps and their API keys.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Manage admin accounts of the admin area (`/admin`).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an admin account with a generated password; prints
    /// `{"email", "password"}` (the password is shown only once).
    Create { email: String },
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Create an approved app; prints `{"name", "api_key"}` (the key is shown only once).
    Create { name: String },
    /// List apps, one JSON object per line.
    List,
    /// Revoke every key of the app and print a new one; prints
    /// `{"name", "api_key", "revoked_endpoints"}`.
    RotateKey {
        name: String,
        /// Also delete every endpoint created with a revoked key (the key
        /// leaked), closing their sockets.
        #[arg(long)]
        revoke_endpoints: bool,
    },
    /// Suspend the app: its keys and endpoints stop working.
    Suspend { name: String },
    /// Approve (or reinstate) the app.
    Approve { name: String },
    /// Reject the app: it stays, its keys and endpoints do not work.
    Reject { name: String },
    /// Set the browser origins the app's pages may use the API and the
    /// WebSocket from (`https://example.com`, `https://*.example.com`,
    /// `http://localhost:3000`), or allow any with `--any`; prints
    /// `{"name", "allowed_origins"}` (`[]` means any).
    Origins {
        name: String,
        /// The origins, replacing the ones listed before.
        #[arg(required_unless_present = "any")]
        origins: Vec<String>,
        /// Allow every origin again (the default).
        #[arg(long, conflicts_with = "origins")]
        any: bool,
    },
    /// Set one of the app's count quotas (`rooms_per_app`,
    /// `endpoints_per_room`, `apps_per_account`, `sockets_per_app`,
    /// `sockets_per_endpoint`, `sockets_per_ip`) to VALUE (0: unlimited), or
    /// back to the `[quotas]` default with `default`; prints
    /// `{"name", "quota", "value"}` (`"default"` when the server's
    /// configured default applies).
    Quota {
        name: String,
        #[arg(value_parser = parse_quota)]
        quota: Quota,
        #[arg(value_parser = parse_quota_value)]
        value: QuotaValue,
    },
}

/// A quota's new value on the command line.
#[derive(Debug, Clone, Copy)]
enum QuotaValue {
    /// The app's own value (0: unlimited).
    Own(u64),
    /// Back to the configured default.
    Default,
}

fn parse_quota(key: &str) -> Result<Quota, String> {
    let keys: Vec<&str> = Quota::ALL.iter().map(|quota| quota.key()).collect();
    Quota::parse(key).ok_or_else(|| format!("unknown quota; one of {}", keys.join(", ")))
}

fn parse_quota_value(value: &str) -> Result<QuotaValue, String> {
    if value == "default" {
        return Ok(QuotaValue::Default);
    }
    value.parse().map(QuotaValue::Own).map_err(|_| "a whole number (0: unlimited) or `default`".to_owned())
}

impl Cli {
    /// Runs the command; the exit code is 0 on success, 1 on any error
    /// (printed to stderr).
    pub fn run(self) -> ExitCode {
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("error: cannot start the async runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(self.execute()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn execute(self) -> anyhow::Result<()> {
        let work_dir = std::env::current_dir().context("reading the working folder")?;
        let config = Config::load(&work_dir, self.config.as_deref())?;
        telemetry::init(&config.log);
        match self.command.unwrap_or(Command::Serve { addr: None, print_config: false }) {
            Command::Serve { addr, print_config } => serve(config, addr, print_config).await,
            Command::Migrate => {
                open_store(&config).await?;
                println!("{}", json!({ "migrated": redact_url(&config.database_url()) }));
                Ok(())
            }
            Command::CheckConfig => {
                println!("{}", serde_json::to_string_pretty(&Plan::of(&config))?);
                Ok(())
            }
            Command::App { command } => app(config, command).await,
            Command::Admin { command: AdminCommand::Create { email } } => {
                let store = open_store(&config).await?;
                // An admin's address needs no confirmation: nothing is mailed.
                let site = config.server.site_base(config.server.addr);
                let mail = AccountMail::new(Arc::clone(&store), Mailer::spawn(&config.email)?, site);
                let accounts = Accounts::new(store, &config.portal, mail).await?;
                let (account, password) = accounts.create_admin(&email).await?;
                println!("{}", json!({ "email": account.email, "password": password }));
                Ok(())
            }
            Command::Openapi => {
                println!("{}", crate::routes::openapi().to_pretty_json()?);
                Ok(())
            }
        }
    }
}

async fn serve(mut config: Config, addr: Option<SocketAddr>, print_config: bool) -> anyhow::Result<()> {
    if let Some(addr) = addr {
        config.server.addr = addr;
    }
    if print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    let addr = config.server.addr;
    let database = redact_url(&config.database_url());
    let broker =
        if config.broker.redis_url.is_empty() { "in-process".to_owned() } else { redact_url(&config.broker.redis_url) };
    let scheme = if config.server.tls.enabled() { "https" } else { "http" };
    let application = Application::build(config, addr).await?;
    tracing::info!(%database, %broker, "listening on {scheme}://{}", application.local_addr());
    if let Some(redirect) = application.redirect_addr() {
        tracing::info!("redirecting http://{redirect} to https");
    }
    application.run_until(shutdown_signal()).await;
    Ok(())
}

async fn app(config: Config, command: AppCommand) -> anyhow::Result<()> {
    let apps = Apps::new(open_store(&config).await?);
    match command {
        AppCommand::Create { name } => {
            let issued = apps.create(&name, AppStatus::Approved).await?;
            println!("{}", json!({ "name": issued.app.name, "api_key": issued.api_key }));
        }
        AppCommand::List => {
            for summary in apps.list(AppFilter::All).await? {
                let line = json!({
                    "name": summary.app.name,
                    "status": summary.app.status.as_str(),
                    "owner": summary.owner_email,
                    "created_at": format_ms(summary.app.created_at),
                    "active_keys": summary.active_keys,
                    "rooms": summary.rooms,
                    "allowed_origins": summary.app.allowed_origins.entries(),
                    "quotas": summary.app.quotas,
                });
                println!("{line}");
            }
        }
        AppCommand::RotateKey { name, revoke_endpoints } => {
            let issued = apps.issue_key(&apps.find(&name).await?, revoke_endpoints, CLI_ACTOR).await?;
            let line = json!({
                "name": issued.app.name,
                "api_key": issued.api_key,
                "revoked_endpoints": issued.revoked_endpoints,
            });
            println!("{line}");
        }
        AppCommand::Suspend { name } => print_status(apps.set_status(&name, AppStatus::Suspended, CLI_ACTOR).await?),
        AppCommand::Approve { name } => print_status(apps.set_status(&name, AppStatus::Approved, CLI_ACTOR).await?),
        AppCommand::Reject { name } => print_status(apps.set_status(&name, AppStatus::Rejected, CLI_ACTOR).await?),
        AppCommand::Origins { name, origins, any: _ } => {
            // `--any` comes with no origins, and an empty list allows any.
            let origins = AllowedOrigins::parse(origins.iter().map(String::as_str))?;
            let app = apps.set_allowed_origins(&apps.find(&name).await?, origins, CLI_ACTOR).await?;
            println!("{}", json!({ "name": app.name, "allowed_origins": app.allowed_origins.entries() }));
        }
        AppCommand::Quota { name, quota, value } => {
            let value = match value {
                QuotaValue::Own(value) => Some(value),
                QuotaValue::Default => None,
            };
            let app = apps.set_quota(&apps.find(&name).await?, quota, value, CLI_ACTOR).await?;
            let value = app.quotas.get(quota).map_or_else(|| json!("default"), |value| json!(value));
            println!("{}", json!({ "name": app.name, "quota": quota.key(), "value": value }));
        }
    }
    Ok(())
}

fn print_status(app: AppRecord) {
    println!("{}", json!({ "name": app.name, "status": app.status.as_str() }));
}
