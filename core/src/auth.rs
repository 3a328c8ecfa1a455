//! The API-key check that runs on every REST request.
//!
//! A presented key is hashed (SHA-256, about a microsecond) and looked up in
//! a small in-memory cache before the store. Cache entries live for
//! `auth.key_cache_ttl_ms`. Rotations, revocations and status changes drop
//! the app's entries through [`crate::changes`]: at once on the node that
//! made them, within `auth.change_poll_ms` on the others and for changes
//! made with the `comms app …` commands.
//!
//! Keys that matched no app are remembered for the same time (a negative
//! cache), so a flood of one unknown key asks the database once per
//! `auth.key_cache_ttl_ms`; both caches are bounded and start over when
//! full. A flood of distinct keys is stopped per client address instead
//! (see [`crate::limits::FailedAuthLimiter`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::error::ServiceError;
use crate::secrets::ApiKeyHash;
use crate::store::{KeyOwner, Store};

/// Entries kept at most; past it the cache starts over (keys are few).
const MAX_ENTRIES: usize = 10_000;

/// Checks API keys. Share it as `Arc<KeyAuthenticator>`.
pub struct KeyAuthenticator {
    store: Arc<dyn Store>,
    ttl: Duration,
    cache: RwLock<HashMap<ApiKeyHash, (KeyOwner, Instant)>>,
    /// Keys that matched no active key, and when that was learnt.
    unknown: Mutex<HashMap<ApiKeyHash, Instant>>,
}

impl KeyAuthenticator {
    /// A checker trusting cached answers for `ttl` unless told the app
    /// changed ([`Self::forget_app`]).
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self { store, ttl, cache: RwLock::new(HashMap::new()), unknown: Mutex::new(HashMap::new()) }
    }

    /// The app owning `presented` (whatever its status: only an
    /// `approved` app's keys work, which the caller checks), and which of
    /// its keys it is; `None` for an unknown or revoked key.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Unavailable`] or [`ServiceError::Internal`] when the
    /// store fails.
    pub async fn owner(&self, presented: &str) -> Result<Option<KeyOwner>, ServiceError> {
        let hash = ApiKeyHash::of(presented);
        let cached = self.cache.read().get(&hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(app, _)| app.clone());
        if cached.is_some() {
            return Ok(cached);
        }
        if self.unknown.lock().get(&hash).is_some_and(|at| at.elapsed() < self.ttl) {
            return Ok(None);
        }
        let Some(app) = self.store.app_by_key(hash).await? else {
            let mut unknown = self.unknown.lock();
            if unknown.len() >= MAX_ENTRIES {
                unknown.clear();
            }
            unknown.insert(hash, Instant::now());
            return Ok(None);
        };
        let mut cache = self.cache.write();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(hash, (app.clone(), Instant::now()));
        Ok(Some(app))
    }

    /// Forgets every cached key of an app after its keys or status changed
    /// (and every key known not to match, which a new key might).
    pub fn forget_app(&self, app_id: i64) {
        self.cache.write().retain(|_, (owner, _)| owner.app.id != app_id);
        self.unknown.lock().clear();
    }
}
