//! Who may call what, on the server: the services the server hands the
//! portal ([`PortalContext`]), the session (who is signed in), the form
//! token every state-changing call must send back (so another site cannot
//! make a browser act; the cookies are also `SameSite=Lax`), and the checks
//! built on them: signed in, admin, owner of an approved app. Also where
//! the request comes from (the client's address and scheme behind trusted
//! proxies), for login throttling and endpoints' URLs.
//!
//! A visitor who is not signed in has no session, so that visiting the
//! portal stores nothing on the server: their form token is the one the
//! server keeps in a signed cookie ([`VisitorFormToken`]). A session,
//! made at login, carries its own form token, which replaces that one.
//!
//! Which app a developer may act on is decided by
//! [`comms_core::portal::Portal`]; this module only finds out who is
//! asking.

use std::net::IpAddr;
use std::sync::Arc;

use comms_core::accounts::{Accounts, SESSION_ACCOUNT_KEY, SESSION_EPOCH_KEY};
use comms_core::apps::Apps;
use comms_core::config::{LimitsConfig, ServerConfig, WsBase};
use comms_core::error::ServiceError;
use comms_core::forwarded::ClientAddr;
use comms_core::portal::Portal;
use comms_core::service::Service;
use comms_core::store::{AccountRecord, AppRecord};
use leptos::prelude::use_context;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::error::PortalError;

/// Session key of the form token.
const CSRF_KEY: &str = "csrf";

/// The form token of a visitor without a session, from the signed cookie
/// the server checked (or set) for this request; the server puts it in
/// the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorFormToken(pub String);

/// What the server provides to the portal's server functions (as a Leptos
/// context, for every request of the site).
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

/// The services, as the server provided them.
pub(super) fn context() -> Result<PortalContext, PortalError> {
    use_context::<PortalContext>().ok_or_else(|| {
        tracing::error!("portal: the server provided no PortalContext");
        PortalError::server_failed()
    })
}

/// This request's session.
pub(super) async fn session() -> Result<Session, PortalError> {
    leptos_axum::extract::<Session>().await.map_err(|err| {
        tracing::error!(error = %err, "portal: no session layer");
        PortalError::server_failed()
    })
}

/// The form token: the session's, or, without a signed-in session, the
/// visitor's cookie's. Reading it stores nothing.
pub(super) async fn form_token(session: &Session) -> Result<String, PortalError> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await? {
        return Ok(token);
    }
    let parts = use_context::<http::request::Parts>();
    let visitor = parts.and_then(|parts| parts.extensions.get::<VisitorFormToken>().cloned());
    visitor.map(|VisitorFormToken(token)| token).ok_or_else(|| {
        tracing::error!("portal: the server set no visitor form token");
        PortalError::server_failed()
    })
}

/// This request's session, after checking that `csrf` is its form token.
///
/// # Errors
///
/// `forbidden` when it is not (another site's form, or an expired page).
pub(super) async fn checked_session(csrf: &str) -> Result<Session, PortalError> {
    let session = session().await?;
    let expected = form_token(&session).await?;
    if !bool::from(expected.as_bytes().ct_eq(csrf.as_bytes())) {
        return Err(ServiceError::Denied("this form has expired: reload the page and try again".into()).into());
    }
    Ok(session)
}

/// The signed-in account, if any (and if it still exists, and no password
/// reset ended the session since).
pub(super) async fn signed_in(session: &Session) -> Result<Option<AccountRecord>, PortalError> {
    let Some(id) = session.get::<i64>(SESSION_ACCOUNT_KEY).await? else { return Ok(None) };
    let epoch = session.get::<i64>(SESSION_EPOCH_KEY).await?;
    let account = context()?.accounts.signed_in(id, epoch).await?;
    if account.is_none() {
        session.flush().await?;
    }
    Ok(account)
}

/// The signed-in account; when `csrf` is given (state-changing calls), after
/// checking the form token.
///
/// # Errors
///
/// `forbidden` for a wrong form token or when nobody is signed in.
pub(super) async fn account(csrf: Option<&str>) -> Result<AccountRecord, PortalError> {
    let session = match csrf {
        Some(csrf) => checked_session(csrf).await?,
        None => session().await?,
    };
    signed_in(&session).await?.ok_or_else(|| ServiceError::Denied("sign in first".into()).into())
}

/// The signed-in admin; when `csrf` is given, after checking the form token.
///
/// # Errors
///
/// As [`account`], and `forbidden` for an account that is not an admin.
pub(super) async fn admin(csrf: Option<&str>) -> Result<AccountRecord, PortalError> {
    let account = account(csrf).await?;
    if !account.is_admin {
        return Err(ServiceError::Denied("this is for admins only".into()).into());
    }
    Ok(account)
}

/// One of the signed-in developer's approved apps, after checking the form
/// token, with the services to act on it.
///
/// # Errors
///
/// As [`account`], and as [`Portal::approved_app_of`].
pub(super) async fn approved_app(csrf: &str, app: &str) -> Result<(PortalContext, AppRecord), PortalError> {
    let owner = account(Some(csrf)).await?;
    let context = context()?;
    let record = context.portal.approved_app_of(&owner, app).await?;
    Ok((context, record))
}

/// Signs `account` in: a new session id (so one planted before login is
/// worthless) and a new form token.
pub(super) async fn sign_in(session: &Session, account: &AccountRecord) -> Result<(), PortalError> {
    session.cycle_id().await?;
    session.insert(SESSION_ACCOUNT_KEY, account.id).await?;
    session.insert(SESSION_EPOCH_KEY, account.session_epoch).await?;
    session.insert(CSRF_KEY, comms_core::secrets::form_token()).await?;
    Ok(())
}

/// Where this request comes from, as the server resolved it from the peer
/// and the forwarding headers of trusted proxies before the site's routes
/// ran (one implementation for the REST API and the site).
fn client_addr() -> Result<ClientAddr, PortalError> {
    let parts = use_context::<http::request::Parts>();
    parts.and_then(|parts| parts.extensions.get::<ClientAddr>().cloned()).ok_or_else(|| {
        tracing::error!("portal: the server did not resolve the client's address");
        PortalError::server_failed()
    })
}

/// The client's IP address, for throttling sign-ups and logins.
pub(super) fn client_ip() -> Result<IpAddr, PortalError> {
    Ok(client_addr()?.ip)
}

/// `ws://…` or `wss://…`: where this client reaches the WebSocket.
pub(super) fn ws_base() -> Result<WsBase, PortalError> {
    Ok(context()?.server.ws_base(Some(&client_addr()?)))
}
