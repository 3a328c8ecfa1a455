//! The emails a portal account's owner gets, each carrying a single-use
//! link: confirm the address after signing up, choose a new password, and
//! the answer to a sign-up with an address that already has an account.
//!
//! A link's token is 256 random bits; only its SHA-256 is stored, with the
//! account, what it is for and when it expires (a confirmation after
//! [`CONFIRM_LIFETIME`], a reset after [`RESET_LIFETIME`]). Links start at
//! `server.public_url` (see [`ServerConfig::site_base`]), never at the
//! `Host` of the request that asked for them.
//!
//! Anyone may make the server mail an address (by signing up with it, or
//! asking for a reset), so each address gets at most
//! [`MAILS_PER_ADDRESS_PER_HOUR`]; past it the email is not sent (and the
//! log says so), while the asking page answers as if it were, so the limit
//! tells nothing about who has an account.
//!
//! [`ServerConfig::site_base`]: crate::config::ServerConfig::site_base

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;

use crate::email::{Email, Mailer};
use crate::error::ServiceError;
use crate::limits::KeyedBuckets;
use crate::secrets::MailedToken;
use crate::store::{AccountRecord, Store, TokenPurpose};
use crate::time::now_ms;

/// How long a link confirming an address works.
pub const CONFIRM_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a link to choose a new password works.
pub const RESET_LIFETIME: Duration = Duration::from_secs(3600);
/// Emails one address may get per hour, whoever asks.
pub const MAILS_PER_ADDRESS_PER_HOUR: u32 = 5;

/// Path of the page a confirmation link opens.
pub const CONFIRM_PATH: &str = "/portal/confirm";
/// Path of the page a reset link opens (without a token: asking for one).
pub const RESET_PATH: &str = "/portal/reset";

/// Which email an account's owner gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEmail {
    /// After signing up: confirm the address.
    ConfirmAddress,
    /// After asking for it: choose a new password.
    ResetPassword,
    /// Someone signed up with the address of an account: log in, or
    /// choose a new password (which, for an account never confirmed, also
    /// confirms it and ends the sessions of whoever signed up before).
    AlreadySignedUp,
}

impl AccountEmail {
    fn purpose(self) -> TokenPurpose {
        match self {
            Self::ConfirmAddress => TokenPurpose::ConfirmEmail,
            Self::ResetPassword | Self::AlreadySignedUp => TokenPurpose::ResetPassword,
        }
    }

    fn lifetime(self) -> Duration {
        match self.purpose() {
            TokenPurpose::ConfirmEmail => CONFIRM_LIFETIME,
            TokenPurpose::ResetPassword => RESET_LIFETIME,
        }
    }
}

/// Makes, stores and mails the links of [`AccountEmail`]s.
pub struct AccountMail {
    store: Arc<dyn Store>,
    mailer: Mailer,
    /// `http(s)://host[:port]` every link starts with.
    site: String,
    per_address: KeyedBuckets<String>,
}

impl AccountMail {
    /// Mails through `mailer` links starting at `site`
    /// ([`ServerConfig::site_base`](crate::config::ServerConfig::site_base)).
    pub fn new(store: Arc<dyn Store>, mailer: Mailer, site: String) -> Self {
        let per_hour = NonZeroU32::new(MAILS_PER_ADDRESS_PER_HOUR).unwrap_or(NonZeroU32::MIN);
        Self { store, mailer, site, per_address: KeyedBuckets::new(Quota::per_hour(per_hour)) }
    }

    /// Stores a new token for `account` and queues `email` with its link.
    ///
    /// # Errors
    ///
    /// `RateLimited` when the address had its emails for the hour (nothing
    /// is stored or sent, and the log says so); store failures.
    pub async fn send(&self, account: &AccountRecord, email: AccountEmail) -> Result<(), ServiceError> {
        if let Err(wait) = self.per_address.check(&account.email) {
            tracing::warn!(
                account = account.id,
                "email not sent: {MAILS_PER_ADDRESS_PER_HOUR} emails to this account's address in the last hour"
            );
            return Err(ServiceError::RateLimited { retry_after: wait });
        }
        let token = MailedToken::generate();
        let expires_at = now_ms() + i64::try_from(email.lifetime().as_millis()).unwrap_or(i64::MAX);
        self.store.insert_account_token(account.id, email.purpose(), token.hash, expires_at).await?;
        self.mailer.send(compose(email, &self.site, &account.email, &token.plain, account.email_verified));
        Ok(())
    }
}

/// The text of `email` to `to`, with the link for `token`.
fn compose(email: AccountEmail, site: &str, to: &str, token: &str, verified: bool) -> Email {
    let confirm = format!("{site}{CONFIRM_PATH}?token={token}");
    let reset = format!("{site}{RESET_PATH}?token={token}");
    let (subject, body) = match email {
        AccountEmail::ConfirmAddress => (
            "Confirm your email address for comms",
            format!(
                "Hello,\n\nsomeone, hopefully you, signed up for a comms developer account with this address.\n\
                 To confirm it, open this link and enter the password you chose:\n\n{confirm}\n\n\
                 The link works once, for 24 hours. Until the address is confirmed, the account\n\
                 cannot register apps.\n\n\
                 If you did not sign up, ignore this email: without the link, nothing happens.\n"
            ),
        ),
        AccountEmail::ResetPassword => (
            "Choose a new comms password",
            format!(
                "Hello,\n\nsomeone, hopefully you, asked to reset the password of the comms account of\n\
                 this address. To choose a new one, open this link (it works once, for an hour):\n\n{reset}\n\n\
                 A new password ends every session of the account.\n\n\
                 If you did not ask, ignore this email: the password stays as it is.\n"
            ),
        ),
        AccountEmail::AlreadySignedUp if verified => (
            "You already have a comms account",
            format!(
                "Hello,\n\nsomeone, hopefully you, tried to sign up for comms with this address, which\n\
                 already has an account. Log in at {site}/portal\n\n\
                 Forgot the password? Choose a new one here (the link works once, for an hour):\n\n{reset}\n\n\
                 If this was not you, ignore this email: your account is unchanged.\n"
            ),
        ),
        AccountEmail::AlreadySignedUp => (
            "Finish setting up your comms account",
            format!(
                "Hello,\n\nsomeone, hopefully you, tried to sign up for comms with this address, which\n\
                 already has an account whose address was never confirmed. To choose its password\n\
                 and confirm the address, open this link (it works once, for an hour):\n\n{reset}\n\n\
                 If this was not you, ignore this email.\n"
            ),
        ),
    };
    Email { to: to.to_owned(), subject: subject.to_owned(), body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_email_carries_the_link_of_its_purpose() {
        let site = "https://comms.example.com";
        let cases = [
            (AccountEmail::ConfirmAddress, true, "/portal/confirm?token=T"),
            (AccountEmail::ResetPassword, true, "/portal/reset?token=T"),
            (AccountEmail::AlreadySignedUp, true, "/portal/reset?token=T"),
            (AccountEmail::AlreadySignedUp, false, "/portal/reset?token=T"),
        ];
        for (kind, verified, link) in cases {
            let email = compose(kind, site, "dev@example.com", "T", verified);
            assert_eq!(email.to, "dev@example.com");
            assert!(email.body.contains(&format!("\n{site}{link}\n")), "{kind:?}: {}", email.body);
            assert!(email.body.lines().all(|line| line.len() <= 998), "SMTP's line limit");
        }
        let signed_up = compose(AccountEmail::AlreadySignedUp, site, "a@b.c", "T", true);
        assert!(signed_up.subject.contains("already have"), "{}", signed_up.subject);
        assert!(signed_up.body.contains("https://comms.example.com/portal\n"));
        let unconfirmed = compose(AccountEmail::AlreadySignedUp, site, "a@b.c", "T", false);
        assert!(unconfirmed.body.contains("never confirmed"));
    }
}
