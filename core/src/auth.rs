//! The API-key check that runs on every REST request.
//!
//! A presented key is hashed (SHA-256, about a microsecond) and looked up in
//! a small in-memory cache before the store. Cache entries live for
//! `auth.key_cache_ttl_ms`. Rotations, revocations and status changes take
//! effect on the very next request: made in this process, they drop the
//! app's entries directly; made by another process sharing the data folder
//! (the `comms app …` commands), they are announced through a
//! [`ChangeMarker`] file that every request checks with one `stat`.
//!
//! Keys that matched no app are remembered for the same time (a negative
//! cache), so a flood of one unknown key asks the database once per
//! `auth.key_cache_ttl_ms`; both caches are bounded and start over when
//! full. A flood of distinct keys is stopped per client address instead
//! (see [`crate::limits::FailedAuthLimiter`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};

use crate::error::ServiceError;
use crate::secrets::ApiKeyHash;
use crate::store::{AppRecord, AppStatus, Store};

/// Entries kept at most; past it the cache starts over (keys are few).
const MAX_ENTRIES: usize = 10_000;

/// File name of the change marker in the data folder.
const MARKER_FILE: &str = "auth.changed";

/// A file in the data folder whose modification time announces that keys or
/// app statuses changed, so every process sharing the folder drops its
/// cached keys.
pub struct ChangeMarker {
    path: PathBuf,
    seen: Mutex<Option<SystemTime>>,
}

impl ChangeMarker {
    /// The marker of a data folder, as it stands now.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        let path = data_dir.join(MARKER_FILE);
        let seen = Mutex::new(modified(&path));
        Self { path, seen }
    }

    /// Whether the marker moved since the last call.
    fn moved(&self) -> bool {
        let now = modified(&self.path);
        let mut seen = self.seen.lock();
        if *seen == now {
            return false;
        }
        *seen = now;
        true
    }

    /// Tells the other processes that keys or statuses changed.
    fn announce(&self) {
        let stamp = format!("{:?}\n", SystemTime::now());
        if let Err(err) = std::fs::write(&self.path, stamp) {
            tracing::warn!(error = %err, path = %self.path.display(), "could not announce a key change to other processes");
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// Checks API keys. Share it as `Arc<KeyAuthenticator>`.
pub struct KeyAuthenticator {
    store: Arc<dyn Store>,
    ttl: Duration,
    marker: ChangeMarker,
    cache: RwLock<HashMap<ApiKeyHash, (AppRecord, Instant)>>,
    /// Keys that matched no active key, and when that was learnt.
    unknown: Mutex<HashMap<ApiKeyHash, Instant>>,
}

impl KeyAuthenticator {
    /// A checker trusting cached answers for `ttl` unless `marker` moves.
    pub fn new(store: Arc<dyn Store>, ttl: Duration, marker: ChangeMarker) -> Self {
        Self { store, ttl, marker, cache: RwLock::new(HashMap::new()), unknown: Mutex::new(HashMap::new()) }
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
        if self.marker.moved() {
            self.cache.write().clear();
            self.unknown.lock().clear();
        }
        let cached = self.cache.read().get(&hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(app, _)| app.clone());
        let app = match cached {
            Some(app) => app,
            None => {
                if self.unknown.lock().get(&hash).is_some_and(|at| at.elapsed() < self.ttl) {
                    return Err(ServiceError::Forbidden);
                }
                let Some(app) = self.store.app_by_key(hash).await? else {
                    let mut unknown = self.unknown.lock();
                    if unknown.len() >= MAX_ENTRIES {
                        unknown.clear();
                    }
                    unknown.insert(hash, Instant::now());
                    return Err(ServiceError::Forbidden);
                };
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

    /// Forgets every cached key of an app after its keys or status changed,
    /// here and in every other process sharing the data folder.
    pub fn invalidate_app(&self, app_id: i64) {
        self.cache.write().retain(|_, (app, _)| app.id != app_id);
        self.unknown.lock().clear();
        self.marker.announce();
    }
}
