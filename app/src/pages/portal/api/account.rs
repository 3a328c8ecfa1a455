//! The session and the account: who is signed in, sign-up, confirming the
//! address, login, logout, and choosing a new password through a mailed
//! link. The rules (and why no answer tells who has an account) are in
//! [`comms_core::accounts`].

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::pages::portal::guards;
use crate::pages::portal::{error::PortalError, views::SessionView};

/// The session as the pages need it, with the form token. Stores nothing
/// for a visitor who is not signed in.
#[server(prefix = "/portal/fn", endpoint = "session")]
pub async fn portal_session() -> Result<SessionView, PortalError> {
    let session = guards::session().await?;
    // First: a session a password reset ended is emptied here, and the
    // token is then the visitor's.
    let account = guards::signed_in(&session).await?;
    let csrf = guards::form_token(&session).await?;
    Ok(SessionView {
        csrf,
        is_admin: account.as_ref().is_some_and(|a| a.is_admin),
        email_verified: account.as_ref().is_some_and(|a| a.email_verified),
        email: account.map(|a| a.email),
    })
}

/// Whether the visitor is signed in as an admin: all the site's header
/// needs (the form token stays on the pages with forms).
#[server(prefix = "/portal/fn", endpoint = "signed_in_admin")]
pub async fn signed_in_admin() -> Result<bool, PortalError> {
    let session = guards::session().await?;
    Ok(guards::signed_in(&session).await?.is_some_and(|account| account.is_admin))
}

/// Makes a developer account and mails a link to confirm the address. The
/// answer is the same whether or not the email already had one (which gets
/// an email saying so instead).
#[server(prefix = "/portal/fn", endpoint = "sign_up")]
pub async fn sign_up(
    /// The form token.
    csrf: String,
    /// The account's email address.
    email: String,
    /// The password.
    password: String,
) -> Result<(), PortalError> {
    guards::checked_session(&csrf).await?;
    Ok(guards::context()?.accounts.sign_up(&email, &password, guards::client_ip()?).await?)
}

/// Confirms the address a mailed link was for, with the account's
/// password, and signs the account in.
#[server(prefix = "/portal/fn", endpoint = "confirm_email")]
pub async fn confirm_email(
    /// The form token.
    csrf: String,
    /// The token of the link.
    token: String,
    /// The account's password.
    password: String,
) -> Result<(), PortalError> {
    let session = guards::checked_session(&csrf).await?;
    let account = guards::context()?.accounts.confirm_email(&token, &password, guards::client_ip()?).await?;
    guards::sign_in(&session, &account).await
}

/// Mails the signed-in developer a new link to confirm their address.
#[server(prefix = "/portal/fn", endpoint = "resend_confirmation")]
pub async fn resend_confirmation(
    /// The session's form token.
    csrf: String,
) -> Result<(), PortalError> {
    let account = guards::account(Some(&csrf)).await?;
    Ok(guards::context()?.accounts.resend_confirmation(&account).await?)
}

/// Logs in; a new session id is issued.
#[server(prefix = "/portal/fn", endpoint = "log_in")]
pub async fn log_in(
    /// The form token.
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

/// Mails a link to choose a new password to the account of `email`, if
/// there is one; the answer is the same for any address.
#[server(prefix = "/portal/fn", endpoint = "request_password_reset")]
pub async fn request_password_reset(
    /// The form token.
    csrf: String,
    /// The account's email address.
    email: String,
) -> Result<(), PortalError> {
    guards::checked_session(&csrf).await?;
    Ok(guards::context()?.accounts.request_password_reset(&email, guards::client_ip()?).await?)
}

/// Sets a new password through a mailed link, ending the account's other
/// sessions, and signs the account in.
#[server(prefix = "/portal/fn", endpoint = "reset_password")]
pub async fn reset_password(
    /// The form token.
    csrf: String,
    /// The token of the link.
    token: String,
    /// The new password.
    password: String,
) -> Result<(), PortalError> {
    let session = guards::checked_session(&csrf).await?;
    let account = guards::context()?.accounts.reset_password(&token, &password, guards::client_ip()?).await?;
    guards::sign_in(&session, &account).await
}
