//! The session and the account: who is signed in, sign-up, login, logout.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::pages::portal::guards;
use crate::pages::portal::{error::PortalError, views::SessionView};

/// The session as the pages need it; makes the form token on first visit.
#[server(prefix = "/portal/fn", endpoint = "session")]
pub async fn portal_session() -> Result<SessionView, PortalError> {
    let session = guards::session().await?;
    let csrf = guards::form_token(&session).await?;
    let account = guards::signed_in(&session).await?;
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
) -> Result<(), PortalError> {
    guards::checked_session(&csrf).await?;
    Ok(guards::context()?.accounts.sign_up(&email, &password, guards::client_ip()?).await?)
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
) -> Result<(), PortalError> {
    let session = guards::checked_session(&csrf).await?;
    let account = guards::context()?.accounts.log_in(&email, &password, guards::client_ip()?).await?;
    guards::sign_in(&session, &account).await
}

/// Logs out: the session ends.
#[server(prefix = "/portal/fn", endpoint = "log_out")]
pub async fn log_out(
    /// The session's form token.
    csrf: String,
) -> Result<(), PortalError> {
    Ok(guards::checked_session(&csrf).await?.flush().await?)
}
