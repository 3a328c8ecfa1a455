//! The API-key check that runs on every REST request.
//!
//! A presented key is hashed (SHA-256, about a microsecond) and looked up in
//! a small in-memory cache before the store. Cache entries live for
//! `auth.key_cache_ttl_ms`; rotations, revocations and status changes made
//! through this process drop the app's entries at once, so they take effect
//! on the very next request. Only keys that matched are cached, so guessing
//! cannot fill the cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::error::ServiceError;
use crate::secrets::ApiKeyHash;
use crate::store::{AppRecord, AppStatus, Store};

/// Entries kept at most; past it the cache starts over (keys are few).
const MAX_ENTRIES: usize = 10_000;

/// Checks API keys. Share it as `Arc<KeyAuthenticator>`.
pub struct KeyAuthenticator {
    store: Arc<dyn Store>,
    ttl: Duration,
    cache: RwLock<HashMap<ApiKeyHash, (AppRecord, Instant)>>,
}

impl KeyAuthenticator {
    /// A checker trusting cached answers for `ttl`.
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self { store, ttl, cache: RwLock::new(HashMap::new()) }
    }

    /// The approved app owning `presented`.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Forbidden`] for an unknown or revoked key or an app
    /// that is not approved; [`ServiceError::Unavailable`] or
    /// [`ServiceError::Internal`] when the store fails.
    pub async fn authenticate(&self, presented: &str) -> Result<AppRecord, ServiceError> {
        let hash = ApiKeyHash::of(presented);
        let cached = self.cache.read().get(&hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(app, _)| app.clone());
        let app = match cached {
            Some(app) => app,
            None => {
                let app = self.store.app_by_key(hash).await?.ok_or(ServiceError::Forbidden)?;
                let mut cache = self.cache.write();
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
                cache.insert(hash, (app.clone(), Instant::now()));
                app
            }
        };
        if app.status == AppStatus::Approved {
            Ok(app)
        } else {
            Err(ServiceError::Forbidden)
        }
    }

    /// Forgets every cached key of an app, after its keys or status changed.
    pub fn invalidate_app(&self, app_id: i64) {
        self.cache.write().retain(|_, (app, _)| app.id != app_id);
    }
}
