//! Portal accounts: sign-up, login and the admin accounts made on the
//! command line.
//!
//! Nothing here tells whether an email has an account: sign-up answers the
//! same whether or not the address was taken (and then leaves the existing
//! account alone), and login answers "wrong email or password" for both an
//! unknown address and a wrong password, after the same argon2 work.
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

use crate::config::PortalConfig;
use crate::error::ServiceError;
use crate::limits::KeyedBuckets;
use crate::passwords;
use crate::store::{AccountRecord, Store, StoreError};

/// Longest email address accepted (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// Sign-up and login over a store.
pub struct Accounts {
    store: Arc<dyn Store>,
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

impl Accounts {
    /// Accounts over `store`, allowing `portal.logins_per_minute` login
    /// attempts per email and five times that per client address, and
    /// `portal.max_concurrent_hashes` hashes at once.
    ///
    /// # Errors
    ///
    /// `Internal` if the decoy hash cannot be made.
    pub async fn new(store: Arc<dyn Store>, config: &PortalConfig) -> Result<Self, ServiceError> {
        let per_email = NonZeroU32::new(config.logins_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let per_client = per_email.saturating_mul(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN));
        Ok(Self {
            store,
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

    /// Makes a developer account. Succeeds quietly when the email is taken
    /// (the existing account is not touched), so the answer does not reveal
    /// who has an account. Sign-ups share the per-client bucket of logins:
    /// each costs an argon2 hash, which must not be free to repeat.
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
        match self.store.create_account(&email, &hashed, false).await {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(err) => Err(err.into()),
        }
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
        let account = self.store.create_account(&email, &hashed, true).await.map_err(|err| match err {
            StoreError::Conflict => ServiceError::Conflict(format!("{email} already has an account")),
            other => other.into(),
        })?;
        Ok((account, password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_past_the_concurrency_bound_get_429_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store: Arc<dyn Store> = Arc::new(crate::store::sqlite::SqliteStore::open(&url, 2).await.unwrap());
        let config = PortalConfig { max_concurrent_hashes: 1, ..PortalConfig::default() };
        let accounts = Accounts::new(store, &config).await.unwrap();
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

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(normalize_email(" Dev@Example.COM ").unwrap(), "dev@example.com");
        for bad in ["dev", "dev@example", "@example.com", "a b@example.com", "dev\0@example.com", "a@b@example.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
