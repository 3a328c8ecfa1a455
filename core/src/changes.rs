//! The one path by which a change to an app reaches every node.
//!
//! A suspension, approval, key rotation or revocation, origin or quota
//! change is written by the store together with a row of `app_changes`, in
//! one transaction, whoever makes it: a node (admin area, portal) or the
//! command line, which has no broker to announce anything with. Every node
//! polls that table (`auth.change_poll_ms`) and, for each app that
//! changed, forgets the app's cached keys and checks its own live sockets
//! of that app against the database: all of them close (4003) when the app
//! is no longer approved, and those whose endpoint is gone close (4001).
//! The node making a change catches up at once, before answering; the
//! others within one poll.
//!
//! No socket survives a suspension, even one racing the handshake: a
//! joining socket registers in the hub first and then reads its app's
//! status (see [`Service::join`](crate::service::Service)). Either that
//! read sees the suspension, or the suspension's row is committed after
//! it, and the next poll finds the socket in the hub and closes it.
//!
//! PostgreSQL hands out ids in order but may commit them out of order, so
//! each poll reads again the last [`LOOKBACK`] ids it has seen and skips
//! the ones it already applied.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::auth::KeyAuthenticator;
use crate::error::ServiceError;
use crate::message::RoomEvent;
use crate::service::Service;
use crate::store::{AppFilter, AppStatus, Store};
use crate::time::now_ms;

/// Ids below the newest seen that each poll reads again.
const LOOKBACK: i64 = 100;
/// How long recorded changes are kept.
const KEEP_FOR: Duration = Duration::from_secs(3600);
/// How often old changes are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Which recorded changes this node has applied.
struct Seen {
    newest: i64,
    /// Applied ids within [`LOOKBACK`] of `newest`.
    recent: BTreeSet<i64>,
}

/// This node's reader of `app_changes`. Share it as `Arc<AppChanges>`.
pub struct AppChanges {
    store: Arc<dyn Store>,
    service: Service,
    authenticator: Arc<KeyAuthenticator>,
    /// Held for a whole catch-up, so two never apply the same change.
    seen: tokio::sync::Mutex<Seen>,
}

impl AppChanges {
    /// Starts from the newest change recorded now: what came before is
    /// already in the database this node reads.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    pub async fn new(
        store: Arc<dyn Store>,
        service: Service,
        authenticator: Arc<KeyAuthenticator>,
    ) -> Result<Arc<Self>, ServiceError> {
        let newest = store.last_app_change().await?;
        let seen = tokio::sync::Mutex::new(Seen { newest, recent: BTreeSet::new() });
        Ok(Arc::new(Self { store, service, authenticator, seen }))
    }

    /// The service whose sockets this node's changes close.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Polls every `poll` until aborted, pruning old changes now and then.
    pub fn spawn(self: &Arc<Self>, poll: Duration) -> JoinHandle<()> {
        let changes = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut since_prune = PRUNE_EVERY;
            loop {
                tick.tick().await;
                if let Err(err) = changes.catch_up().await {
                    tracing::warn!(error = %err, "could not read app changes; retrying");
                }
                since_prune += poll;
                if since_prune >= PRUNE_EVERY {
                    since_prune = Duration::ZERO;
                    let before = now_ms() - KEEP_FOR.as_millis() as i64;
                    if let Err(err) = changes.store.prune_app_changes(before).await {
                        tracing::warn!(error = %err, "could not prune app changes");
                    }
                }
            }
        })
    }

    /// Applies every recorded change this node has not applied yet.
    ///
    /// # Errors
    ///
    /// The store cannot be read; what was applied stays applied.
    pub async fn catch_up(&self) -> Result<(), ServiceError> {
        let mut seen = self.seen.lock().await;
        let recorded = self.store.app_changes_after(seen.newest - LOOKBACK).await?;
        let mut apps = Vec::new();
        for change in recorded {
            if seen.recent.insert(change.id) {
                if !apps.contains(&change.app_id) {
                    apps.push(change.app_id);
                }
                seen.newest = seen.newest.max(change.id);
            }
        }
        let floor = seen.newest - LOOKBACK;
        seen.recent.retain(|id| *id > floor);
        for app_id in apps {
            self.apply(app_id).await?;
        }
        Ok(())
    }

    /// Makes this node follow app `app_id` as it now is in the database.
    async fn apply(&self, app_id: i64) -> Result<(), ServiceError> {
        self.authenticator.forget_app(app_id);
        let Some(summary) = self.store.list_apps(AppFilter::Id(app_id)).await?.pop() else {
            // Deleted: its rooms went with it, and the node deleting them
            // closed their sockets everywhere (see `Apps::delete`).
            return Ok(());
        };
        let hub = &self.service.hub;
        let rooms: Vec<i64> = self
            .store
            .list_rooms(app_id)
            .await?
            .into_iter()
            .map(|room| room.id)
            .filter(|id| hub.has_room(*id))
            .collect();
        if rooms.is_empty() {
            return Ok(());
        }
        if summary.app.status != AppStatus::Approved {
            for room_id in rooms {
                hub.apply(RoomEvent::AppStopped { room_id });
            }
            return Ok(());
        }
        // One query for the whole app, whatever the number of its rooms.
        let alive: HashSet<i64> = self.store.list_app_endpoints(app_id).await?.iter().map(|e| e.id).collect();
        for room_id in rooms {
            for endpoint_id in hub.endpoints_in(room_id) {
                if !alive.contains(&endpoint_id) {
                    hub.apply(RoomEvent::EndpointDeleted { room_id, endpoint_id });
                }
            }
        }
        Ok(())
    }
}
