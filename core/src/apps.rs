//! App administration: create, list, rotate keys, change status. Used by the
//! `comms app …` commands now and by the admin area later.

use std::sync::Arc;

use crate::auth::KeyAuthenticator;
use crate::error::ServiceError;
use crate::names::AppName;
use crate::secrets::NewApiKey;
use crate::store::{AppRecord, AppStatus, AppSummary, Store};

/// App administration over a store. Key and status changes are announced to
/// the authenticator so they apply to this process's next request.
pub struct Apps {
    store: Arc<dyn Store>,
    authenticator: Arc<KeyAuthenticator>,
}

/// An app and the plain text of a key just issued to it, to be shown once.
pub struct IssuedKey {
    /// The app the key belongs to.
    pub app: AppRecord,
    /// The key in plain text; it is not stored and cannot be shown again.
    pub api_key: String,
}

impl Apps {
    /// Administration over `store`, invalidating `authenticator`'s cache.
    pub fn new(store: Arc<dyn Store>, authenticator: Arc<KeyAuthenticator>) -> Self {
        Self { store, authenticator }
    }

    async fn find(&self, name: &str) -> Result<AppRecord, ServiceError> {
        let name = AppName::parse(name)?;
        self.store.app_by_name(&name).await?.ok_or_else(|| ServiceError::NotFound(format!("app {name} does not exist")))
    }

    /// Creates an app with the given status and its first key.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad name, `Conflict` if the name is taken.
    pub async fn create(&self, name: &str, status: AppStatus) -> Result<IssuedKey, ServiceError> {
        let name = AppName::parse(name)?;
        let key = NewApiKey::generate();
        let app =
            self.store.create_app(&name, status, key.hash).await.map_err(|err| match ServiceError::from(err) {
                ServiceError::Conflict(_) => ServiceError::Conflict(format!("app {name} already exists")),
                other => other,
            })?;
        Ok(IssuedKey { app, api_key: key.plain })
    }

    /// Every app with its counts.
    ///
    /// # Errors
    ///
    /// Only store failures.
    pub async fn list(&self) -> Result<Vec<AppSummary>, ServiceError> {
        Ok(self.store.list_apps().await?)
    }

    /// Revokes every key of the app and issues a new one.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no such app.
    pub async fn rotate_key(&self, name: &str) -> Result<IssuedKey, ServiceError> {
        let app = self.find(name).await?;
        let key = NewApiKey::generate();
        self.store.replace_api_keys(app.id, key.hash).await?;
        self.authenticator.invalidate_app(app.id);
        Ok(IssuedKey { app, api_key: key.plain })
    }

    /// Changes the app's status; its keys work only while `approved`.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no such app.
    pub async fn set_status(&self, name: &str, status: AppStatus) -> Result<AppRecord, ServiceError> {
        let mut app = self.find(name).await?;
        self.store.set_app_status(app.id, status).await?;
        self.authenticator.invalidate_app(app.id);
        app.status = status;
        Ok(app)
    }
}
