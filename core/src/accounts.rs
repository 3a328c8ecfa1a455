//! Portal accounts: sign-up, confirming the address, login, password
//! resets, and the admin accounts made on the command line.
//!
//! Nothing here tells whether an email has an account: sign-up answers the
//! same whether or not the address was taken (a new account gets a link to
//! confirm its address; a taken address gets an email saying so, with a
//! link to choose a new password, and the existing account is left alone),
//! a reset request answers the same for any address, and login answers
//! "wrong email or password" for both an unknown address and a wrong
//! password, after the same argon2 work.
//!
//! An account whose address is not confirmed may log in, but not register
//! apps ([`crate::portal`]); confirming takes the link *and* the password,
//! so someone who signs up with another person's address cannot get it
//! confirmed by them with a click, and a reset through that person's inbox
//! takes the account back and ends the other sessions.
//!
//! Login attempts are throttled per (email, client address) and per client, and at most
//! `portal.max_concurrent_hashes` argon2 hashes run at once (each takes
//! 19 MiB and tens of milliseconds of a core): past that, an attempt is
//! answered `429` at once rather than queued, so a flood of logins can
//! neither exhaust memory nor starve the sockets of CPU.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::account_mail::{AccountEmail, AccountMail};
use crate::config::PortalConfig;
use crate::error::ServiceError;
use crate::limits::KeyedBuckets;
use crate::passwords;
use crate::secrets::MailedTokenHash;
use crate::store::{AccountRecord, AccountToken, NewAccount, Store, StoreError, TokenPurpose};
use crate::time::now_ms;

/// Longest email address accepted (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// Sign-up, login and mailed links over a store.
pub struct Accounts {
    store: Arc<dyn Store>,
    /// The emails with confirmation and reset links.
    mail: AccountMail,
    /// Login attempts per email and client address: guessing one account's
    /// password from one address is slow, and the owner still logs in from
    /// another.
    by_email: KeyedBuckets<(String, IpAddr)>,
    /// Attempts (sign-ups included) per client address.
    by_client: KeyedBuckets<IpAddr>,
    /// A hash of no one's password, verified when the email is unknown so
    /// that a miss costs as long as a wrong password.
    decoy_hash: String,
    /// One permit per argon2 hash allowed to run at once.
    hashing: Semaphore,
}

/// Lower-cases and checks an email address: one `@`, something on both
/// sides, a dot in the domain, no spaces.
///
/// # Errors
///
/// `Invalid` with what is wrong.
pub fn normalize_email(email: &str) -> Result<String, ServiceError> {
    let email = email.trim().to_lowercase();
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.contains('@') && domain.contains('.') && !domain.starts_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(ServiceError::Invalid("enter a valid email address, like dev@example.com".into()))
    }
}

/// Session key of the signed-in account's id, for every part of the site
/// that reads the portal's session (its pages, its live count).
pub const SESSION_ACCOUNT_KEY: &str = "account_id";
/// Session key of the account's `session_epoch` at login: a password reset
/// raises the account's, which ends the session.
pub const SESSION_EPOCH_KEY: &str = "session_epoch";

impl Accounts {
    /// The account a session signed in (its [`SESSION_ACCOUNT_KEY`] and
    /// [`SESSION_EPOCH_KEY`]), if it still exists and no password reset
    /// ended the session since. Sessions from before resets existed have no
    /// epoch: the first one.
    ///
    /// # Errors
    ///
    /// The store's failure.
    pub async fn signed_in(&self, account_id: i64, epoch: Option<i64>) -> Result<Option<AccountRecord>, ServiceError> {
        let account = self.store.account_by_id(account_id).await?;
        Ok(account.filter(|account| account.session_epoch == epoch.unwrap_or(0)))
    }

    /// Accounts over `store`, mailing links through `mail`, allowing
    /// `portal.logins_per_minute` login attempts per email and five times
    /// that per client address, and `portal.max_concurrent_hashes` hashes
    /// at once.
    ///
    /// # Errors
    ///
    /// `Internal` if the decoy hash cannot be made.
    pub async fn new(store: Arc<dyn Store>, config: &PortalConfig, mail: AccountMail) -> Result<Self, ServiceError> {
        let per_email = NonZeroU32::new(config.logins_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let per_client = per_email.saturating_mul(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN));
        Ok(Self {
            store,
            mail,
            by_email: KeyedBuckets::new(Quota::per_minute(per_email)),
            by_client: KeyedBuckets::new(Quota::per_minute(per_client)),
            decoy_hash: passwords::hash(passwords::generate()).await?,
            hashing: Semaphore::new(config.max_concurrent_hashes.max(1)),
        })
    }

    /// Leave to run one hash now.
    ///
    /// # Errors
    ///
    /// `RateLimited` when `portal.max_concurrent_hashes` are running.
    fn hash_permit(&self) -> Result<SemaphorePermit<'_>, ServiceError> {
        self.hashing.try_acquire().map_err(|_| ServiceError::RateLimited { retry_after: Duration::from_secs(1) })
    }

    /// Makes a developer account and mails it a link to confirm the
    /// address. When the email is taken, the existing account is not
    /// touched and gets an email saying so instead; the answer is the same,
    /// so it does not reveal who has an account. Sign-ups share the
    /// per-client bucket of logins: each costs an argon2 hash, which must
    /// not be free to repeat.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad email or a password breaking the length rules,
    /// `RateLimited` past the per-client limit.
    pub async fn sign_up(&self, email: &str, password: &str, client: IpAddr) -> Result<(), ServiceError> {
        let email = normalize_email(email)?;
        passwords::check_rules(password)?;
        self.by_client.check(&client).map_err(|wait| ServiceError::RateLimited { retry_after: wait })?;
        let permit = self.hash_permit()?;
        let hashed = passwords::hash(password.to_owned()).await?;
        drop(permit);
        let new = NewAccount { email: &email, password_hash: &hashed, is_admin: false, email_verified: false };
        let sent = match self.store.create_account(new).await {
            Ok(account) => self.mail.send(&account, AccountEmail::ConfirmAddress).await,
            Err(StoreError::Conflict) => match self.store.account_by_email(&email).await? {
                Some(account) => self.mail.send(&account, AccountEmail::AlreadySignedUp).await,
                None => Ok(()),
            },
            Err(err) => return Err(err.into()),
        };
        quietly_limited(sent)
    }

    /// Mails the signed-in `account` a new link to confirm its address;
    /// nothing when it is confirmed already.
    ///
    /// # Errors
    ///
    /// `RateLimited` when the address had its emails for the hour.
    pub async fn resend_confirmation(&self, account: &AccountRecord) -> Result<(), ServiceError> {
        if account.email_verified {
            return Ok(());
        }
        self.mail.send(account, AccountEmail::ConfirmAddress).await
    }

    /// Confirms the address of the account a mailed link was for, given
    /// that account's password (see the module docs); answers the account,
    /// to sign it in. A wrong password leaves the link working.
    ///
    /// # Errors
    ///
    /// `Denied` for a link that is unknown, used or expired, or a wrong
    /// password; `RateLimited` past the per-client limit.
    pub async fn confirm_email(
        &self,
        token: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<AccountRecord, ServiceError> {
        self.by_client.check(&client).map_err(|wait| ServiceError::RateLimited { retry_after: wait })?;
        let hash = MailedTokenHash::of(token);
        let link = live(self.store.account_token(TokenPurpose::ConfirmEmail, hash).await?)?;
        let account = self.store.account_by_id(link.account_id).await?.ok_or_else(dead_link)?;
        let permit = self.hash_permit()?;
        let matches = passwords::verify(password.to_owned(), account.password_hash.clone()).await?;
        drop(permit);
        if !matches {
            return Err(ServiceError::Denied("wrong password: enter the one you signed up with".into()));
        }
        // Taken only now, so a mistyped password does not use it up; of two
        // confirmations at once, one takes it.
        live(self.store.take_account_token(TokenPurpose::ConfirmEmail, hash).await?)?;
        self.store.confirm_email(account.id).await?;
        Ok(AccountRecord { email_verified: true, ..account })
    }

    /// Mails the account of `email`, if there is one, a link to choose a
    /// new password. The answer is the same for any address.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad email, `RateLimited` past the per-client limit.
    pub async fn request_password_reset(&self, email: &str, client: IpAddr) -> Result<(), ServiceError> {
        let email = normalize_email(email)?;
        self.by_client.check(&client).map_err(|wait| ServiceError::RateLimited { retry_after: wait })?;
        let Some(account) = self.store.account_by_email(&email).await? else { return Ok(()) };
        quietly_limited(self.mail.send(&account, AccountEmail::ResetPassword).await)
    }

    /// Sets a new password through a mailed reset link. The address counts
    /// as confirmed from then on, and every session of the account ends;
    /// answers the account, to sign it in again.
    ///
    /// # Errors
    ///
    /// `Invalid` for a password breaking the length rules, `Denied` for a
    /// link that is unknown, used or expired, `RateLimited` past the
    /// per-client limit.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<AccountRecord, ServiceError> {
        passwords::check_rules(password)?;
        self.by_client.check(&client).map_err(|wait| ServiceError::RateLimited { retry_after: wait })?;
        let hash = MailedTokenHash::of(token);
        // Checked before hashing, so a dead link costs no argon2 work.
        live(self.store.account_token(TokenPurpose::ResetPassword, hash).await?)?;
        let permit = self.hash_permit()?;
        let hashed = passwords::hash(password.to_owned()).await?;
        drop(permit);
        let link = live(self.store.take_account_token(TokenPurpose::ResetPassword, hash).await?)?;
        self.store.reset_password(link.account_id, &hashed).await?.ok_or_else(dead_link)
    }

    /// The account `email` and `password` log in to.
    ///
    /// # Errors
    ///
    /// `Denied` for an unknown email or a wrong password (the same text),
    /// `RateLimited` past the login limits.
    pub async fn log_in(&self, email: &str, password: &str, client: IpAddr) -> Result<AccountRecord, ServiceError> {
        let wrong = || ServiceError::Denied("wrong email or password".into());
        let email = normalize_email(email).map_err(|_| wrong())?;
        // Every attempt counts, and a throttled one is refused before any
        // password is compared, so guessing gains nothing from retrying.
        let throttled = |wait: Duration| ServiceError::RateLimited { retry_after: wait };
        self.by_email.check(&(email.clone(), client)).map_err(throttled)?;
        self.by_client.check(&client).map_err(throttled)?;
        let account = self.store.account_by_email(&email).await?;
        let hashed = account.as_ref().map_or_else(|| self.decoy_hash.clone(), |a| a.password_hash.clone());
        let permit = self.hash_permit()?;
        let matches = passwords::verify(password.to_owned(), hashed).await?;
        drop(permit);
        match account {
            Some(account) if matches => Ok(account),
            _ => Err(wrong()),
        }
    }

    /// The account behind a session, if it still exists.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn account(&self, id: i64) -> Result<Option<AccountRecord>, ServiceError> {
        Ok(self.store.account_by_id(id).await?)
    }

    /// Makes an admin account with a generated password, returned once.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad email, `Conflict` when it has an account.
    pub async fn create_admin(&self, email: &str) -> Result<(AccountRecord, String), ServiceError> {
        let email = normalize_email(email)?;
        let password = passwords::generate();
        let permit = self.hash_permit()?;
        let hashed = passwords::hash(password.clone()).await?;
        drop(permit);
        // The operator made it on the server: the address needs no proof.
        let new = NewAccount { email: &email, password_hash: &hashed, is_admin: true, email_verified: true };
        let account = self.store.create_account(new).await.map_err(|err| match err {
            StoreError::Conflict => ServiceError::Conflict(format!("{email} already has an account")),
            other => other.into(),
        })?;
        Ok((account, password))
    }
}

/// What a link that does not work is told, whatever the reason.
fn dead_link() -> ServiceError {
    ServiceError::Denied("this link has expired or was already used: ask for a new one".into())
}

/// The stored token, if it has not expired.
fn live(token: Option<AccountToken>) -> Result<AccountToken, ServiceError> {
    token.filter(|token| token.expires_at > now_ms()).ok_or_else(dead_link)
}

/// `sent`, except that an address past its hourly emails is not an error
/// for an anonymous visitor: telling them would tell who has an account.
/// (The mailer logged it.)
fn quietly_limited(sent: Result<(), ServiceError>) -> Result<(), ServiceError> {
    match sent {
        Err(ServiceError::RateLimited { .. }) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::EmailConfig;
    use crate::email::Mailer;
    use crate::secrets::MailedToken;

    /// Accounts on a fresh SQLite file, mailing into the log.
    async fn accounts(config: &PortalConfig) -> (tempfile::TempDir, Arc<dyn Store>, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store: Arc<dyn Store> = Arc::new(crate::store::sqlite::SqliteStore::open(&url, 2, 0).await.unwrap());
        let mailer = Mailer::spawn(&EmailConfig::default()).unwrap();
        let mail = AccountMail::new(Arc::clone(&store), mailer, "http://127.0.0.1:3000".into());
        let accounts = Accounts::new(Arc::clone(&store), config, mail).await.unwrap();
        (dir, store, accounts)
    }

    #[tokio::test]
    async fn hashes_past_the_concurrency_bound_get_429_at_once() {
        let config = PortalConfig { max_concurrent_hashes: 1, ..PortalConfig::default() };
        let (_dir, _store, accounts) = accounts(&config).await;
        let client = IpAddr::from([127, 0, 0, 1]);
        let busy = accounts.hashing.try_acquire().expect("the only permit");
        let refused = accounts.sign_up("dev@example.com", "a long enough password", client).await;
        assert!(matches!(refused, Err(ServiceError::RateLimited { .. })), "{refused:?}");
        let refused = accounts.log_in("dev@example.com", "a long enough password", client).await;
        assert!(matches!(refused, Err(ServiceError::RateLimited { .. })), "{refused:?}");
        drop(busy);
        accounts.sign_up("dev@example.com", "a long enough password", client).await.unwrap();
        assert!(accounts.log_in("dev@example.com", "a long enough password", client).await.is_ok());
    }

    #[tokio::test]
    async fn reset_links_work_once_and_expire() {
        let (_dir, store, accounts) = accounts(&PortalConfig::default()).await;
        let client = IpAddr::from([127, 0, 0, 1]);
        accounts.sign_up("dev@example.com", "a long enough password", client).await.unwrap();
        let account = store.account_by_email("dev@example.com").await.unwrap().unwrap();
        assert!(!account.email_verified);
        let link = |expires_at: i64| {
            let store = Arc::clone(&store);
            async move {
                let token = MailedToken::generate();
                let purpose = TokenPurpose::ResetPassword;
                store.insert_account_token(account.id, purpose, token.hash, expires_at).await.unwrap();
                token.plain
            }
        };
        let dead = "this link has expired";

        let expired = link(now_ms() - 1).await;
        let refused = accounts.reset_password(&expired, "a new long password", client).await.unwrap_err();
        assert!(refused.to_string().contains(dead), "{refused}");

        let fresh = link(now_ms() + 60_000).await;
        let reset = accounts.reset_password(&fresh, "a new long password", client).await.unwrap();
        assert!(reset.email_verified, "the owner read the mail");
        assert_eq!(reset.session_epoch, account.session_epoch + 1, "other sessions end");
        let again = accounts.reset_password(&fresh, "a third long password", client).await.unwrap_err();
        assert!(again.to_string().contains(dead), "{again}");
        assert!(accounts.log_in("dev@example.com", "a new long password", client).await.is_ok());
        assert!(accounts.log_in("dev@example.com", "a long enough password", client).await.is_err());
    }

    #[tokio::test]
    async fn admins_made_on_the_command_line_count_as_confirmed() {
        let (_dir, _store, accounts) = accounts(&PortalConfig::default()).await;
        let (admin, _password) = accounts.create_admin("root@example.com").await.unwrap();
        assert!(admin.is_admin && admin.email_verified);
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(normalize_email(" Dev@Example.COM ").unwrap(), "dev@example.com");
        for bad in ["dev", "dev@example", "@example.com", "a b@example.com", "dev\0@example.com", "a@b@example.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
