//! The portal's and admin area's server functions, and the types they
//! return to the browser.
//!
//! Every function that changes state takes the session's form token
//! (`csrf`) and refuses a call without the right one, so another site
//! cannot make a logged-in browser act (the cookie is also `SameSite=Lax`).
//! Every function that touches an app goes through
//! [`comms_core::portal::Portal`], which answers "not found" for apps that
//! are not the caller's, then through the same service as the REST API.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Who is signed in, and the form token of this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The token every form of this session sends back.
    pub csrf: String,
    /// The signed-in account's email; `None` when signed out.
    pub email: Option<String>,
    /// Whether that account may use the admin area.
    pub is_admin: bool,
}

/// An app as its developer (or an admin) sees it in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRow {
    /// Unique name.
    pub name: String,
    /// `pending`, `approved`, `rejected` or `suspended`.
    pub status: String,
    /// What it is.
    pub description: String,
    /// Its web site, or empty.
    pub website: String,
    /// What it will use comms for.
    pub intended_use: String,
    /// The owner's email (admins see it), or empty.
    pub owner: String,
    /// Keys that work.
    pub active_keys: u64,
    /// Browser origins its pages may use the API and WebSocket from; empty
    /// allows any.
    pub allowed_origins: Vec<String>,
    /// Rooms it has.
    pub rooms: u64,
    /// RFC 3339.
    pub created_at: String,
}

/// One of an app's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRow {
    /// Public id.
    pub id: String,
    /// The code clients connect with.
    pub code: String,
    /// `read` or `read_and_write`.
    pub permission: String,
    /// The meta object, as JSON text.
    pub meta: String,
    /// The full WebSocket URL.
    pub ws_url: String,
}

/// A recent message of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// Per-room sequence number.
    pub seq: u64,
    /// RFC 3339.
    pub timestamp: String,
    /// The sender's public id or `app`.
    pub sender: String,
    /// The payload as JSON text.
    pub message: String,
}

/// A room with its endpoints and latest messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPanel {
    /// The room's name.
    pub name: String,
    /// Connections open now.
    pub online: u64,
    /// Oldest first.
    pub endpoints: Vec<EndpointRow>,
    /// The newest few, oldest first.
    pub latest: Vec<MessageRow>,
}

/// Everything the page of one app shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDetails {
    /// The app.
    pub app: AppRow,
    /// Its rooms (empty unless approved).
    pub rooms: Vec<RoomPanel>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Which app.
    pub app: String,
    /// More.
    pub detail: String,
}

/// What the admin area shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    /// Every app, oldest first.
    pub apps: Vec<AppRow>,
    /// The newest audit entries, newest first.
    pub audit: Vec<AuditRow>,
}

/// Latest messages shown per room.
#[cfg(feature = "ssr")]
const LATEST_MESSAGES: usize = 10;
/// Audit entries shown to admins.
#[cfg(feature = "ssr")]
const AUDIT_ENTRIES: usize = 200;

#[cfg(feature = "ssr")]
use comms_core::error::ServiceError;
#[cfg(feature = "ssr")]
use comms_core::input::{parse_permission, Meta};
#[cfg(feature = "ssr")]
use comms_core::names::RoomName;
#[cfg(feature = "ssr")]
pub use server::PortalContext;

/// The server side: the context the server provides, the session, and the
/// mapping of service errors to what the browser is told.
#[cfg(feature = "ssr")]
mod server {
    use std::sync::Arc;

    use comms_core::accounts::Accounts;
    use comms_core::apps::Apps;
    use comms_core::config::{LimitsConfig, ServerConfig, WsBase};
    use comms_core::error::ServiceError;
    use comms_core::portal::Portal;
    use comms_core::service::Service;
    use comms_core::store::{AccountRecord, AppSummary};
    use comms_core::time::format_ms;
    use leptos::prelude::*;
    use tower_sessions::Session;

    use super::AppRow;

    /// Session keys.
    const ACCOUNT_KEY: &str = "account_id";
    const CSRF_KEY: &str = "csrf";

    /// What the server provides to these server functions.
    #[derive(Clone)]
    pub struct PortalContext {
        /// Sign-up and login.
        pub accounts: Arc<Accounts>,
        /// Developers' apps.
        pub portal: Arc<Portal>,
        /// Every app, for admins.
        pub apps: Arc<Apps>,
        /// Rooms, endpoints and messages, as the REST API has them.
        pub service: Service,
        /// For endpoints' `ws_url`.
        pub server: Arc<ServerConfig>,
        /// For checking endpoint meta as the REST API does.
        pub limits: Arc<LimitsConfig>,
    }

    pub(super) fn context() -> Result<PortalContext, ServerFnError> {
        use_context::<PortalContext>().ok_or_else(|| ServerFnError::new("the portal is not available"))
    }

    pub(super) async fn session() -> Result<Session, ServerFnError> {
        leptos_axum::extract::<Session>().await.map_err(|err| {
            leptos::logging::error!("portal: no session layer: {err}");
            ServerFnError::new("sessions are not available")
        })
    }

    /// What the browser is told: client errors as they are, anything else
    /// logged and answered without details; with the HTTP status of the
    /// error's code (a `400` for bad input, not a `500`).
    pub(super) fn user_error(err: ServiceError) -> ServerFnError {
        set_error_status(err.code().http_status());
        match err {
            ServiceError::Internal(_) | ServiceError::Unavailable(_) => {
                tracing::error!(error = %err, "portal request failed");
                ServerFnError::new("something went wrong on the server; try again")
            }
            ServiceError::RateLimited { retry_after } => {
                let seconds = retry_after.as_secs().max(1);
                if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                    response.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
                }
                ServerFnError::new(format!("too many attempts: wait {seconds} seconds"))
            }
            other => ServerFnError::new(other.to_string()),
        }
    }

    /// Answers a call from the page's script with `status`. A plain form
    /// post (no script yet, `Accept: text/html`) keeps the redirect back to
    /// its page that Leptos answers it with.
    fn set_error_status(status: u16) {
        let plain_form_post = use_context::<http::request::Parts>().is_some_and(|parts| {
            let accept = parts.headers.get(http::header::ACCEPT).and_then(|value| value.to_str().ok());
            accept.is_some_and(|accept| accept.contains("text/html"))
        });
        let (Some(response), false) = (use_context::<leptos_axum::ResponseOptions>(), plain_form_post) else { return };
        response.set_status(http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR));
    }

    fn session_error(err: tower_sessions::session::Error) -> ServerFnError {
        tracing::error!(error = %err, "portal session failed");
        ServerFnError::new("something went wrong on the server; try again")
    }

    /// The session's form token, made on first use.
    pub(super) async fn form_token(session: &Session) -> Result<String, ServerFnError> {
        if let Some(token) = session.get::<String>(CSRF_KEY).await.map_err(session_error)? {
            return Ok(token);
        }
        let token = comms_core::secrets::form_token();
        session.insert(CSRF_KEY, &token).await.map_err(session_error)?;
        Ok(token)
    }

    /// Refuses a state-changing call whose form token is not the session's.
    pub(super) async fn check_form(session: &Session, csrf: &str) -> Result<(), ServerFnError> {
        let expected = session.get::<String>(CSRF_KEY).await.map_err(session_error)?;
        match expected {
            Some(expected) if constant_time_eq(expected.as_bytes(), csrf.as_bytes()) => Ok(()),
            _ => Err(user_error(ServiceError::Denied("this form has expired: reload the page and try again".into()))),
        }
    }

    fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The signed-in account, if any (and if it still exists).
    pub(super) async fn signed_in(session: &Session) -> Result<Option<AccountRecord>, ServerFnError> {
        let Some(id) = session.get::<i64>(ACCOUNT_KEY).await.map_err(session_error)? else { return Ok(None) };
        context()?.accounts.account(id).await.map_err(user_error)
    }

    /// The signed-in account, after checking the form token when `csrf`
    /// is given.
    pub(super) async fn account(csrf: Option<&str>) -> Result<AccountRecord, ServerFnError> {
        let session = session().await?;
        if let Some(csrf) = csrf {
            check_form(&session, csrf).await?;
        }
        signed_in(&session).await?.ok_or_else(|| user_error(ServiceError::Denied("sign in first".into())))
    }

    /// One of the signed-in developer's approved apps, after checking the
    /// form token, with the context to act on it.
    pub(super) async fn approved_app(
        csrf: &str,
        app: &str,
    ) -> Result<(PortalContext, comms_core::store::AppRecord), ServerFnError> {
        let owner = account(Some(csrf)).await?;
        let context = context()?;
        let record = context.portal.approved_app_of(&owner, app).await.map_err(user_error)?;
        Ok((context, record))
    }

    /// The signed-in admin, after checking the form token when given.
    pub(super) async fn admin(csrf: Option<&str>) -> Result<AccountRecord, ServerFnError> {
        let account = account(csrf).await?;
        if !account.is_admin {
            return Err(user_error(ServiceError::Denied("this is for admins only".into())));
        }
        Ok(account)
    }

    /// Signs `account` in: a new session id (so one planted before login
    /// is worthless) and a new form token.
    pub(super) async fn sign_in(session: &Session, account: &AccountRecord) -> Result<(), ServerFnError> {
        session.cycle_id().await.map_err(session_error)?;
        session.insert(ACCOUNT_KEY, account.id).await.map_err(session_error)?;
        session.insert(CSRF_KEY, comms_core::secrets::form_token()).await.map_err(session_error)?;
        Ok(())
    }

    /// Ends the session.
    pub(super) async fn sign_out(session: &Session) -> Result<(), ServerFnError> {
        session.flush().await.map_err(session_error)
    }

    /// Where this request really comes from: forwarding headers count only
    /// from `server.trusted_proxies`.
    async fn origin() -> Result<comms_core::forwarded::ClientAddr, ServerFnError> {
        use axum::extract::ConnectInfo;
        use comms_core::forwarded::ForwardedHeaders;
        let headers = leptos_axum::extract::<http::HeaderMap>().await.map_err(|_| ServerFnError::new("no request"))?;
        let peer = leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>()
            .await
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let forwarded = ForwardedHeaders {
            forwarded_for: header("x-forwarded-for"),
            forwarded_proto: header("x-forwarded-proto"),
            forwarded_host: header("x-forwarded-host"),
            host: header("host"),
        };
        Ok(context()?.server.client_addr(peer, forwarded))
    }

    /// `ws://…` or `wss://…` for this request.
    pub(super) async fn ws_base() -> Result<WsBase, ServerFnError> {
        let origin = origin().await?;
        Ok(context()?.server.ws_base(Some(&origin)))
    }

    /// Where the login attempt comes from, for throttling.
    pub(super) async fn client_ip() -> std::net::IpAddr {
        origin().await.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |client| client.ip)
    }

    pub(super) fn app_row(summary: AppSummary) -> AppRow {
        AppRow {
            name: summary.app.name,
            status: summary.app.status.as_str().to_owned(),
            description: summary.profile.description,
            website: summary.profile.website,
            intended_use: summary.profile.intended_use,
            owner: summary.owner_email.unwrap_or_default(),
            active_keys: summary.active_keys,
            allowed_origins: summary.app.allowed_origins.entries(),
            rooms: summary.rooms,
            created_at: format_ms(summary.app.created_at),
        }
    }
}

/// The session as the pages need it; makes the form token on first visit.
#[server(prefix = "/portal/fn", endpoint = "session")]
pub async fn portal_session() -> Result<SessionView, ServerFnError> {
    let session = server::session().await?;
    let csrf = server::form_token(&session).await?;
    let account = server::signed_in(&session).await?;
    Ok(SessionView { csrf, is_admin: account.as_ref().is_some_and(|a| a.is_admin), email: account.map(|a| a.email) })
}

/// Makes a developer account. The answer is the same whether or not the
/// email already had one: success, with nothing to say.
#[server(prefix = "/portal/fn", endpoint = "sign_up")]
pub async fn sign_up(
    /// The session's form token.
    csrf: String,
    /// The account's email address.
    email: String,
    /// The password.
    password: String,
) -> Result<(), ServerFnError> {
    let session = server::session().await?;
    server::check_form(&session, &csrf).await?;
    let client = server::client_ip().await;
    server::context()?.accounts.sign_up(&email, &password, client).await.map_err(server::user_error)
}

/// Logs in; a new session id is issued.
#[server(prefix = "/portal/fn", endpoint = "log_in")]
pub async fn log_in(
    /// The session's form token.
    csrf: String,
    /// The account's email address.
    email: String,
    /// The password.
    password: String,
) -> Result<(), ServerFnError> {
    let session = server::session().await?;
    server::check_form(&session, &csrf).await?;
    let client = server::client_ip().await;
    let account = server::context()?.accounts.log_in(&email, &password, client).await.map_err(server::user_error)?;
    server::sign_in(&session, &account).await
}

/// Logs out.
#[server(prefix = "/portal/fn", endpoint = "log_out")]
pub async fn log_out(
    /// The session's form token.
    csrf: String,
) -> Result<(), ServerFnError> {
    let session = server::session().await?;
    server::check_form(&session, &csrf).await?;
    server::sign_out(&session).await
}

/// Registers an app for the signed-in developer.
#[server(prefix = "/portal/fn", endpoint = "register_app")]
pub async fn register_app(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    name: String,
    /// What the app is.
    description: String,
    /// Its web site, or empty.
    website: String,
    /// What it will use comms for.
    intended_use: String,
) -> Result<String, ServerFnError> {
    let owner = server::account(Some(&csrf)).await?;
    let request = comms_core::portal::AppRequest { name, description, website, intended_use };
    let app = server::context()?.portal.register(&owner, request).await.map_err(server::user_error)?;
    Ok(app.name)
}

/// The signed-in developer's apps.
#[server(prefix = "/portal/fn", endpoint = "my_apps")]
pub async fn my_apps() -> Result<Vec<AppRow>, ServerFnError> {
    let owner = server::account(None).await?;
    let apps = server::context()?.portal.apps_of(&owner).await.map_err(server::user_error)?;
    Ok(apps.into_iter().map(server::app_row).collect())
}

/// One of the developer's apps with its rooms, endpoints and latest
/// messages.
#[server(prefix = "/portal/fn", endpoint = "app_overview")]
pub async fn app_overview(
    /// The app's name.
    app: String,
) -> Result<AppDetails, ServerFnError> {
    use comms_core::store::AppStatus;
    let owner = server::account(None).await?;
    let context = server::context()?;
    let record = context.portal.app_of(&owner, &app).await.map_err(server::user_error)?;
    let summary = context
        .portal
        .apps_of(&owner)
        .await
        .map_err(server::user_error)?
        .into_iter()
        .find(|summary| summary.app.id == record.id)
        .ok_or_else(|| server::user_error(ServiceError::NotFound(format!("you have no app {app}"))))?;
    let mut rooms = Vec::new();
    if record.status == AppStatus::Approved {
        let ws_base = server::ws_base().await?;
        let service = &context.service;
        for room in service.list_rooms(&record).await.map_err(server::user_error)? {
            let name = RoomName::parse(&room.name).map_err(|err| server::user_error(err.into()))?;
            let endpoints = service.list_endpoints(&record, &name).await.map_err(server::user_error)?;
            let latest = service.latest_messages(&record, &name, LATEST_MESSAGES).await.map_err(server::user_error)?;
            rooms.push(RoomPanel {
                online: room.online,
                endpoints: endpoints
                    .into_iter()
                    .map(|e| EndpointRow {
                        ws_url: ws_base.endpoint_url(&e.code),
                        id: e.public_id,
                        code: e.code,
                        permission: e.permission.as_str().to_owned(),
                        meta: e.meta,
                    })
                    .collect(),
                latest: latest
                    .into_iter()
                    .map(|m| MessageRow {
                        seq: m.seq,
                        timestamp: m.timestamp,
                        sender: m.sender.id,
                        message: m.message.get().to_owned(),
                    })
                    .collect(),
                name: room.name,
            });
        }
    }
    Ok(AppDetails { app: server::app_row(summary), rooms })
}

/// Issues a new key for the developer's approved app (earlier keys stop
/// working); the key is in this answer only.
#[server(prefix = "/portal/fn", endpoint = "issue_key")]
pub async fn issue_key(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
) -> Result<String, ServerFnError> {
    let owner = server::account(Some(&csrf)).await?;
    let issued = server::context()?.portal.issue_key(&owner, &app).await.map_err(server::user_error)?;
    Ok(issued.api_key)
}

/// Revokes every key of the developer's app.
#[server(prefix = "/portal/fn", endpoint = "revoke_keys")]
pub async fn revoke_keys(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
) -> Result<u64, ServerFnError> {
    let owner = server::account(Some(&csrf)).await?;
    server::context()?.portal.revoke_keys(&owner, &app).await.map_err(server::user_error)
}

/// Replaces the browser origins the developer's app allows: origins
/// separated by white space or commas; nothing allows any origin. Answers
/// the list as stored (normalized).
#[server(prefix = "/portal/fn", endpoint = "set_allowed_origins")]
pub async fn set_allowed_origins(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The origins as typed.
    origins: String,
) -> Result<Vec<String>, ServerFnError> {
    let owner = server::account(Some(&csrf)).await?;
    let portal = &server::context()?.portal;
    let app = portal.set_allowed_origins(&owner, &app, &origins).await.map_err(server::user_error)?;
    Ok(app.allowed_origins.entries())
}

/// Deletes the developer's app with everything in it.
#[server(prefix = "/portal/fn", endpoint = "delete_app")]
pub async fn delete_app(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
) -> Result<(), ServerFnError> {
    let owner = server::account(Some(&csrf)).await?;
    server::context()?.portal.delete(&owner, &app).await.map_err(server::user_error)
}

/// Creates a room in the developer's approved app.
#[server(prefix = "/portal/fn", endpoint = "create_room")]
pub async fn create_room(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
) -> Result<(), ServerFnError> {
    let (context, record) = server::approved_app(&csrf, &app).await?;
    let room = RoomName::parse(&room).map_err(|err| server::user_error(err.into()))?;
    context.service.create_room(&record, &room).await.map_err(server::user_error)?;
    Ok(())
}

/// Deletes a room of the developer's app, closing its sockets.
#[server(prefix = "/portal/fn", endpoint = "delete_room")]
pub async fn delete_room(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
) -> Result<(), ServerFnError> {
    let (context, record) = server::approved_app(&csrf, &app).await?;
    let room = RoomName::parse(&room).map_err(|err| server::user_error(err.into()))?;
    context.service.delete_room(&record, &room).await.map_err(server::user_error)
}

/// Adds an endpoint; `meta` is a JSON object's text, or empty for none.
#[server(prefix = "/portal/fn", endpoint = "create_endpoint")]
pub async fn create_endpoint(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
    /// `read` or `read_and_write`.
    permission: String,
    /// A JSON object's text, or empty for none.
    meta: String,
) -> Result<(), ServerFnError> {
    let (context, record) = server::approved_app(&csrf, &app).await?;
    let meta = match meta.trim() {
        "" => None,
        text => Some(serde_json::value::RawValue::from_string(text.to_owned()).map_err(|_| {
            server::user_error(ServiceError::Invalid("meta must be a JSON object, like {\"name\": \"Ann\"}".into()))
        })?),
    };
    let room = RoomName::parse(&room).map_err(|err| server::user_error(err.into()))?;
    let permission = parse_permission(&permission).map_err(server::user_error)?;
    let meta = Meta::parse(meta.as_deref(), &context.limits).map_err(server::user_error)?;
    context.service.create_endpoint(&record, &room, permission, meta).await.map_err(server::user_error)?;
    Ok(())
}

/// Deletes an endpoint, closing its sockets.
#[server(prefix = "/portal/fn", endpoint = "delete_endpoint")]
pub async fn delete_endpoint(
    /// The session's form token.
    csrf: String,
    /// The app's name.
    app: String,
    /// The room's name.
    room: String,
    /// The endpoint's code.
    code: String,
) -> Result<(), ServerFnError> {
    let (context, record) = server::approved_app(&csrf, &app).await?;
    let room = RoomName::parse(&room).map_err(|err| server::user_error(err.into()))?;
    context.service.delete_endpoint(&record, &room, &code).await.map_err(server::user_error)
}

/// Every app and the audit log, for admins.
#[server(prefix = "/admin/fn", endpoint = "overview")]
pub async fn admin_overview() -> Result<AdminView, ServerFnError> {
    server::admin(None).await?;
    let apps = &server::context()?.apps;
    let all = apps.list(comms_core::store::AppFilter::All).await.map_err(server::user_error)?;
    let audit = apps.audit_log(AUDIT_ENTRIES).await.map_err(server::user_error)?;
    Ok(AdminView {
        apps: all.into_iter().map(server::app_row).collect(),
        audit: audit
            .into_iter()
            .map(|entry| AuditRow {
                at: comms_core::time::format_ms(entry.at),
                actor: entry.actor,
                action: entry.action,
                app: entry.app_name,
                detail: entry.detail,
            })
            .collect(),
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
) -> Result<(), ServerFnError> {
    use comms_core::store::AppStatus;
    let admin = server::admin(Some(&csrf)).await?;
    let status = match AppStatus::parse(&status) {
        Some(status @ (AppStatus::Approved | AppStatus::Rejected | AppStatus::Suspended)) => status,
        _ => {
            return Err(server::user_error(ServiceError::Invalid(
                "status must be approved, rejected or suspended".into(),
            )))
        }
    };
    server::context()?.apps.set_status(&app, status, &admin.email).await.map_err(server::user_error)?;
    Ok(())
}
