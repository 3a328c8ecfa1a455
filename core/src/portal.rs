//! The developer portal's rules: a developer registers apps, gets their keys
//! once approved, and manages only their own apps. Rooms, endpoints and
//! messages of those apps go through [`crate::service::Service`], exactly as
//! the REST API does; this module only decides which app a developer may
//! act on.

use std::sync::Arc;

use crate::apps::{Apps, IssuedKey};
use crate::config::QuotasConfig;
use crate::error::ServiceError;
use crate::origins::AllowedOrigins;
use crate::quotas::apps_per_account;
use crate::store::{AccountRecord, AppFilter, AppProfile, AppRecord, AppStatus, AppSummary};

/// Longest description or intended use, in characters.
const MAX_TEXT_CHARS: usize = 2000;
/// Longest website URL, in characters.
const MAX_URL_CHARS: usize = 500;

/// What a developer fills in to request a key.
#[derive(Debug, Clone, Default)]
pub struct AppRequest {
    /// The app's unique name (the same rules as room names).
    pub name: String,
    /// What the app is.
    pub description: String,
    /// `http(s)://…` or empty.
    pub website: String,
    /// What it will use comms for.
    pub intended_use: String,
}

/// The portal's operations. Share it as `Arc<Portal>`.
pub struct Portal {
    apps: Arc<Apps>,
    auto_approve: bool,
    quotas: QuotasConfig,
}

impl Portal {
    /// The portal over the server's app administration; `auto_approve`
    /// approves apps as they are registered; `quotas` holds the default of
    /// `apps_per_account`.
    pub fn new(apps: Arc<Apps>, auto_approve: bool, quotas: QuotasConfig) -> Self {
        Self { apps, auto_approve, quotas }
    }

    /// Registers an app owned by `owner`: `pending` until an admin approves
    /// it, or `approved` at once with `portal.auto_approve`.
    ///
    /// # Errors
    ///
    /// `Denied` while the owner's address is not confirmed, `Invalid` for
    /// a bad name or field, `Conflict` if the name is taken.
    pub async fn register(&self, owner: &AccountRecord, request: AppRequest) -> Result<AppRecord, ServiceError> {
        if !owner.email_verified {
            return Err(ServiceError::Denied(format!(
                "confirm your email address before registering an app: follow the link we sent to {}, \
                 or have it sent again",
                owner.email
            )));
        }
        let profile = checked_profile(request.description, request.website, request.intended_use)?;
        let status = if self.auto_approve { AppStatus::Approved } else { AppStatus::Pending };
        let owned = self.apps.list(AppFilter::OwnedBy(owner.id)).await?;
        let at_most = apps_per_account(owned.iter().map(|summary| &summary.app.quotas), &self.quotas);
        let app = self.apps.insert(&request.name, AppStatus::Pending, Some(owner.id), profile, None, at_most).await?;
        self.apps.audit_action(&owner.email, "requested", &app.name).await?;
        if status == AppStatus::Approved {
            return self.apps.set_status(&app.name, status, "auto_approve").await;
        }
        Ok(app)
    }

    /// The developer's apps, oldest first.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn apps_of(&self, owner: &AccountRecord) -> Result<Vec<AppSummary>, ServiceError> {
        self.apps.list(AppFilter::OwnedBy(owner.id)).await
    }

    /// One of the developer's apps. Another developer's app answers
    /// `NotFound`, like one that does not exist, so names are not probed.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad name, `NotFound` as above.
    pub async fn app_of(&self, owner: &AccountRecord, name: &str) -> Result<AppRecord, ServiceError> {
        match self.apps.find(name).await {
            Ok(app) if app.owner_id == Some(owner.id) => Ok(app),
            Ok(_) | Err(ServiceError::NotFound(_)) => Err(not_yours(name)),
            Err(err) => Err(err),
        }
    }

    /// One of the developer's apps with its profile and counts, as its
    /// page shows it.
    ///
    /// # Errors
    ///
    /// As [`Portal::app_of`].
    pub async fn summary_of(&self, owner: &AccountRecord, name: &str) -> Result<AppSummary, ServiceError> {
        let app = self.app_of(owner, name).await?;
        // Deleted in between: as if it never existed.
        self.apps.list(AppFilter::Id(app.id)).await?.pop().ok_or_else(|| not_yours(name))
    }

    /// One of the developer's apps that is approved, for what only approved
    /// apps may do (keys, rooms, endpoints).
    ///
    /// # Errors
    ///
    /// As [`Portal::app_of`], and `Denied` while it is not approved.
    pub async fn approved_app_of(&self, owner: &AccountRecord, name: &str) -> Result<AppRecord, ServiceError> {
        let app = self.app_of(owner, name).await?;
        if app.status != AppStatus::Approved {
            return Err(ServiceError::Denied(format!(
                "{name} is {}: only approved apps can do this",
                app.status.as_str()
            )));
        }
        Ok(app)
    }

    /// Issues a new key for the developer's approved app, revoking the
    /// others (and with `revoke_endpoints`, deleting the endpoints they
    /// created); the key is in the answer only.
    ///
    /// # Errors
    ///
    /// As [`Portal::approved_app_of`].
    pub async fn issue_key(
        &self,
        owner: &AccountRecord,
        name: &str,
        revoke_endpoints: bool,
    ) -> Result<IssuedKey, ServiceError> {
        let app = self.approved_app_of(owner, name).await?;
        self.apps.issue_key(&app, revoke_endpoints, &owner.email).await
    }

    /// Revokes every key of the developer's app.
    ///
    /// # Errors
    ///
    /// As [`Portal::app_of`].
    pub async fn revoke_keys(&self, owner: &AccountRecord, name: &str) -> Result<u64, ServiceError> {
        let app = self.app_of(owner, name).await?;
        self.apps.revoke_keys(&app, &owner.email).await
    }

    /// Replaces the allow-list of browser origins of the developer's app
    /// from what they typed: origins separated by white space or commas;
    /// nothing allows any origin.
    ///
    /// # Errors
    ///
    /// `Invalid` for an entry that is not an origin, and as
    /// [`Portal::app_of`].
    pub async fn set_allowed_origins(
        &self,
        owner: &AccountRecord,
        name: &str,
        origins: &str,
    ) -> Result<AppRecord, ServiceError> {
        let app = self.app_of(owner, name).await?;
        let origins = AllowedOrigins::parse_text(origins)?;
        self.apps.set_allowed_origins(&app, origins, &owner.email).await
    }

    /// Deletes the developer's app with its rooms, endpoints and history.
    ///
    /// # Errors
    ///
    /// As [`Portal::app_of`].
    pub async fn delete(&self, owner: &AccountRecord, name: &str) -> Result<(), ServiceError> {
        let app = self.app_of(owner, name).await?;
        self.apps.delete(&app, &owner.email).await
    }
}

/// What a developer is told about an app that is not theirs (or does not
/// exist): the same either way, so names cannot be probed.
fn not_yours(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("you have no app {name}"))
}

fn checked_profile(description: String, website: String, intended_use: String) -> Result<AppProfile, ServiceError> {
    let too_long =
        |field: &str, max: usize| ServiceError::Invalid(format!("{field} may have at most {max} characters"));
    let (description, website, intended_use) =
        (description.trim().to_owned(), website.trim().to_owned(), intended_use.trim().to_owned());
    // Line breaks are fine in the free texts; other control characters
    // (a NUL byte, which PostgreSQL refuses to store) are not.
    let control = |text: &str| text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t');
    if [&description, &website, &intended_use].into_iter().any(|text| control(text)) {
        return Err(ServiceError::Invalid("the app's texts may not hold control characters".into()));
    }
    if description.chars().count() > MAX_TEXT_CHARS {
        return Err(too_long("the description", MAX_TEXT_CHARS));
    }
    if intended_use.is_empty() {
        return Err(ServiceError::Invalid("say what the app will use comms for".into()));
    }
    if intended_use.chars().count() > MAX_TEXT_CHARS {
        return Err(too_long("the intended use", MAX_TEXT_CHARS));
    }
    if website.chars().count() > MAX_URL_CHARS {
        return Err(too_long("the website", MAX_URL_CHARS));
    }
    let web_url = website.strip_prefix("https://").or_else(|| website.strip_prefix("http://"));
    if !website.is_empty() && !web_url.is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace)) {
        return Err(ServiceError::Invalid("the website must be an http:// or https:// address".into()));
    }
    Ok(AppProfile { description, website, intended_use })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_checked() {
        let ok = |website: &str| checked_profile(String::new(), website.into(), "chat".into());
        assert!(ok("").is_ok());
        assert!(ok("https://example.com").is_ok());
        assert!(ok("ftp://example.com").is_err());
        assert!(ok("https://").is_err());
        assert!(checked_profile(String::new(), String::new(), "  ".into()).is_err(), "intended use is required");
        assert!(checked_profile("x".repeat(MAX_TEXT_CHARS + 1), String::new(), "chat".into()).is_err());
        assert!(checked_profile("two\nlines".into(), String::new(), "chat".into()).is_ok());
        assert!(checked_profile("nul\0".into(), String::new(), "chat".into()).is_err(), "PostgreSQL refuses NUL");
    }
}
