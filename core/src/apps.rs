//! App administration: create, list, issue and revoke keys, change status,
//! set allowed origins, delete; every change that matters is written to the audit log. Used by
//! the `comms app …` commands, the admin area and, through
//! [`crate::portal`], by developers for their own apps.

use std::sync::Arc;

use crate::changes::AppChanges;
use crate::error::ServiceError;
use crate::names::{AppName, RoomName};
use crate::origins::AllowedOrigins;
use crate::quotas::{Quota, QuotaOverrides};
use crate::secrets::NewApiKey;
use crate::service::quota_full;
use crate::store::{AppFilter, AppProfile, AppRecord, AppStatus, AppSummary, AuditEntry, NewApp, Store, StoreError};
use crate::time::now_ms;

/// Who the audit log names for actions of the command line.
pub const CLI_ACTOR: &str = "cli";

/// App administration over a store. The store records every change with
/// it, and every node applies it from there ([`crate::changes`]).
pub struct Apps {
    store: Arc<dyn Store>,
    /// In the server: applies a change to this node at once, before the
    /// caller is answered. The command line has none; the servers apply
    /// its changes within a poll.
    live: Option<Arc<AppChanges>>,
}

/// An app and the plain text of a key just issued to it, to be shown once.
pub struct IssuedKey {
    /// The app the key belongs to.
    pub app: AppRecord,
    /// The key in plain text; it is not stored and cannot be shown again.
    pub api_key: String,
    /// Endpoints deleted with the keys it replaced.
    pub revoked_endpoints: usize,
}

impl Apps {
    /// Administration over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, live: None }
    }

    /// Also applies each change to this node's caches and sockets at once.
    #[must_use]
    pub fn with_live_connections(mut self, changes: Arc<AppChanges>) -> Self {
        self.live = Some(changes);
        self
    }

    /// Applies the change just recorded to this node, if it serves.
    async fn applied(&self) -> Result<(), ServiceError> {
        match &self.live {
            Some(changes) => changes.catch_up().await,
            None => Ok(()),
        }
    }

    /// The app named `name`.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad name, `NotFound` if there is no such app.
    pub async fn find(&self, name: &str) -> Result<AppRecord, ServiceError> {
        let name = AppName::parse(name)?;
        self.store.app_by_name(&name).await?.ok_or_else(|| ServiceError::NotFound(format!("app {name} does not exist")))
    }

    async fn audit(&self, actor: &str, action: &str, app: &str, detail: &str) -> Result<(), ServiceError> {
        let entry = AuditEntry {
            at: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            app_name: app.to_owned(),
            detail: detail.to_owned(),
        };
        Ok(self.store.record_audit(&entry).await?)
    }

    /// Creates an app with the given status and its first key (the command
    /// line's way).
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad name, `Conflict` if the name is taken.
    pub async fn create(&self, name: &str, status: AppStatus) -> Result<IssuedKey, ServiceError> {
        let key = NewApiKey::generate();
        let app = self.insert(name, status, None, AppProfile::default(), Some(key.hash), None).await?;
        self.audit(CLI_ACTOR, "created", &app.name, status.as_str()).await?;
        self.audit(CLI_ACTOR, "key_issued", &app.name, "first key").await?;
        Ok(IssuedKey { app, api_key: key.plain, revoked_endpoints: 0 })
    }

    /// Records an action on an app without details.
    pub(crate) async fn audit_action(&self, actor: &str, action: &str, app: &str) -> Result<(), ServiceError> {
        self.audit(actor, action, app, "").await
    }

    /// Inserts an app, answering `Conflict` with its name when taken, and
    /// `QuotaExceeded` when its owner has `apps_per_account` (`at_most`)
    /// apps already.
    pub(crate) async fn insert(
        &self,
        name: &str,
        status: AppStatus,
        owner_id: Option<i64>,
        profile: AppProfile,
        key: Option<crate::secrets::ApiKeyHash>,
        at_most: Option<u64>,
    ) -> Result<AppRecord, ServiceError> {
        let name = AppName::parse(name)?;
        let new = NewApp { name: name.clone(), status, owner_id, profile, key };
        self.store.create_app(new, at_most).await.map_err(|err| match err {
            StoreError::Conflict => ServiceError::Conflict(format!("app {name} already exists")),
            other => quota_full(other, Quota::AppsPerAccount, at_most),
        })
    }

    /// The apps `filter` selects, with counts.
    ///
    /// # Errors
    ///
    /// Only store failures.
    pub async fn list(&self, filter: AppFilter) -> Result<Vec<AppSummary>, ServiceError> {
        Ok(self.store.list_apps(filter).await?)
    }

    /// Revokes every key of the app and issues a new one, shown once.
    /// With `revoke_endpoints` (a leaked key), also deletes every endpoint
    /// created with a key it revokes, closing their sockets on every node.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn issue_key(
        &self,
        app: &AppRecord,
        revoke_endpoints: bool,
        actor: &str,
    ) -> Result<IssuedKey, ServiceError> {
        let key = NewApiKey::generate();
        let revoked = self.store.replace_api_keys(app.id, key.hash, revoke_endpoints).await?;
        self.applied().await?;
        let detail = if revoke_endpoints {
            format!("earlier keys revoked with the {} endpoints they created", revoked.len())
        } else {
            "earlier keys revoked".to_owned()
        };
        self.audit(actor, "key_issued", &app.name, &detail).await?;
        Ok(IssuedKey { app: app.clone(), api_key: key.plain, revoked_endpoints: revoked.len() })
    }

    /// Revokes every key of the app; it has none until one is issued.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn revoke_keys(&self, app: &AppRecord, actor: &str) -> Result<u64, ServiceError> {
        let revoked = self.store.revoke_api_keys(app.id).await?;
        self.applied().await?;
        self.audit(actor, "keys_revoked", &app.name, &format!("{revoked} revoked")).await?;
        Ok(revoked)
    }

    /// Changes the app's status; its keys and endpoints work only while
    /// `approved`, and its live sockets close when it stops being.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no such app.
    pub async fn set_status(&self, name: &str, status: AppStatus, actor: &str) -> Result<AppRecord, ServiceError> {
        let mut app = self.find(name).await?;
        let action = match (app.status, status) {
            (AppStatus::Suspended, AppStatus::Approved) => "reinstated",
            (_, AppStatus::Approved) => "approved",
            (_, AppStatus::Rejected) => "rejected",
            (_, AppStatus::Suspended) => "suspended",
            (_, AppStatus::Pending) => "pending",
        };
        self.store.set_app_status(app.id, status).await?;
        self.applied().await?;
        app.status = status;
        self.audit(actor, action, &app.name, "").await?;
        Ok(app)
    }

    /// Replaces the app's allow-list of browser origins (empty allows any).
    /// It applies from the next request and the next WebSocket handshake;
    /// sockets already open stay open.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn set_allowed_origins(
        &self,
        app: &AppRecord,
        origins: AllowedOrigins,
        actor: &str,
    ) -> Result<AppRecord, ServiceError> {
        self.store.set_allowed_origins(app.id, &origins).await?;
        self.applied().await?;
        let detail = if origins.allows_any() { "any origin".to_owned() } else { origins.to_stored() };
        self.audit(actor, "origins_changed", &app.name, &detail).await?;
        Ok(AppRecord { allowed_origins: origins, ..app.clone() })
    }

    /// Sets the app's own value of `quota`, or back to the configured
    /// default with `None`. It applies from the next request and the next
    /// WebSocket handshake; nothing already created or connected is taken
    /// away.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn set_quota(
        &self,
        app: &AppRecord,
        quota: Quota,
        value: Option<u64>,
        actor: &str,
    ) -> Result<AppRecord, ServiceError> {
        let mut quotas: QuotaOverrides = app.quotas.clone();
        quotas.set(quota, value);
        self.store.set_app_quotas(app.id, &quotas).await?;
        self.applied().await?;
        let detail = match value {
            Some(value) => format!("{quota} = {value}"),
            None => format!("{quota} = default"),
        };
        self.audit(actor, "quota_changed", &app.name, &detail).await?;
        Ok(AppRecord { quotas, ..app.clone() })
    }

    /// Deletes the app with everything it has, closing its live sockets.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn delete(&self, app: &AppRecord, actor: &str) -> Result<(), ServiceError> {
        // Room by room through the service, so sockets close with "room
        // deleted" and the broker forgets the rooms' state.
        if let Some(service) = self.live.as_ref().map(|changes| changes.service()) {
            for room in service.list_rooms(app).await? {
                match service.delete_room(app, &RoomName::parse(&room.name)?).await {
                    Ok(()) | Err(ServiceError::NotFound(_)) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        self.store.delete_app(app.id).await?;
        self.applied().await?;
        self.audit(actor, "deleted", &app.name, "").await
    }

    /// The newest `limit` audit entries, newest first.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self.store.audit_log(limit).await?)
    }
}
