//! Rooms, endpoints and messages as the API offers them: one implementation
//! of every rule (limits, isolation between apps) called by the REST
//! handlers, the legacy routes and the site's server functions.
//! The WebSocket side of the same service (joining, publishing through an
//! endpoint) is in [`crate::subscription`].
//!
//! Every call takes the authenticated [`AppRecord`] and only ever touches
//! that app's rooms, which is how one app can never see another's. Client
//! input arrives parsed ([`RoomName`], [`Permission`], [`Meta`]: see
//! [`crate::input`]); endpoints come back as records, and the HTTP layer,
//! which knows the request's host, turns them into the API's view with
//! [`Service::endpoint_views`]. Changing endpoints, delegating and
//! moderating are in [`crate::capabilities`].

use std::sync::Arc;

use comms_protocol::webhook::EventType;
use comms_protocol::ws::Nonce;
use comms_protocol::{Endpoint, Message, Presence, Room, Sender};
use serde_json::value::RawValue;

use crate::broker::{Broker, BrokerError, Durability, RoomRef};
use crate::config::{Config, LimitsConfig, QuotasConfig, WsBase};
use crate::error::ServiceError;
use crate::hub::Hub;
use crate::input::{check_readable, EndpointSpec, Meta};
use crate::message::{Draft, NonceKey, RoomEvent};
use crate::names::RoomName;
use crate::presence::Tracker;
use crate::quotas::{Quota, QuotaExceeded, SocketCounts};
use crate::secrets;
use crate::sent::SentCounts;
use crate::store::{AppRecord, EndpointRecord, Lineage, NewEndpoint, NewRoom, RoomRecord, Store, StoreError};
use crate::time::{format_ms, now_ms};
use crate::usage::Usage;
use crate::webhooks::{event, Webhooks};

/// Sender id of messages published by the app's backend through the API.
pub const APP_SENDER_ID: &str = "app";

/// The product's operations. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) limits: Arc<LimitsConfig>,
    pub(crate) quotas: Arc<QuotasConfig>,
    /// Hands this node's presence transitions to the broker.
    pub(crate) presence: Tracker,
    /// This node's live sockets per app, endpoint and address.
    pub(crate) sockets: Arc<SocketCounts>,
    /// Messages this node published through endpoints, not yet counted in
    /// the store.
    pub(crate) sent: Arc<SentCounts>,
    /// What each app did on this node, not yet written to the store.
    pub(crate) usage: Arc<Usage>,
    /// How events for apps' webhooks are made and handed on.
    pub(crate) webhooks: Webhooks,
}

/// How often endpoints' expiries are checked: a connection closes at most
/// this late.
const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_millis(100);

impl Service {
    /// Wires the service to its store, broker and hub, under `config`'s
    /// limits, default quotas, presence and usage settings, and starts its
    /// tasks: the presence tracker, the writers of message counts and of
    /// usage, and the sweep of expired endpoints.
    pub fn new(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        hub: Arc<Hub>,
        config: &Config,
        webhooks: Webhooks,
    ) -> Self {
        let sockets = Arc::clone(hub.sockets());
        let presence = Tracker::spawn(Arc::clone(&broker), config.presence.leave_grace, webhooks.observed.clone());
        let sent = Arc::new(SentCounts::default());
        sent.spawn_flusher(Arc::clone(&store));
        let usage = Usage::new(Arc::clone(&store), Arc::clone(&sockets), config.usage.clone());
        usage.spawn_writer();
        let sweeping = Arc::downgrade(&hub);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            loop {
                tick.tick().await;
                let Some(hub) = sweeping.upgrade() else { return };
                hub.expire(now_ms());
            }
        });
        Self {
            store,
            broker,
            hub,
            limits: Arc::new(config.limits.clone()),
            quotas: Arc::new(config.quotas.clone()),
            presence,
            sockets,
            sent,
            usage,
            webhooks,
        }
    }

    /// Writes out what the service counts off the store (endpoints'
    /// `messages_sent`, usage), on shutdown.
    pub async fn flush(&self) {
        self.sent.flush(&*self.store).await;
        self.usage.flush().await;
    }

    /// This node's usage counters.
    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    /// The value of `quota` for `app` (`None`: unlimited).
    fn quota(&self, app: &AppRecord, quota: Quota) -> Option<u64> {
        app.quotas.limit(quota, &self.quotas)
    }

    pub(crate) async fn find_room(&self, app: &AppRecord, name: &RoomName) -> Result<RoomRecord, ServiceError> {
        self.store
            .room(app.id, name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("room {name} does not exist")))
    }

    /// Rooms as the API shows them, with their online counts over every
    /// node.
    async fn room_views(&self, rooms: Vec<RoomRecord>) -> Result<Vec<Room>, ServiceError> {
        let ids: Vec<i64> = rooms.iter().map(|room| room.id).collect();
        let online = self.broker.online(&ids).await?;
        Ok(rooms.into_iter().zip(online).map(|(room, online)| room_view(room, online)).collect())
    }

    /// Creates a room.
    ///
    /// # Errors
    ///
    /// `Conflict` if the app has the room already.
    pub async fn create_room(&self, app: &AppRecord, room: &NewRoom) -> Result<Room, ServiceError> {
        self.create_room_at_most(app, room, self.quota(app, Quota::RoomsPerApp)).await
    }

    /// Creates a room while the app has fewer than `at_most` rooms (its
    /// `rooms_per_app`, or a tighter bound of the caller's).
    pub(crate) async fn create_room_at_most(
        &self,
        app: &AppRecord,
        new: &NewRoom,
        at_most: Option<u64>,
    ) -> Result<Room, ServiceError> {
        let mut new = new.clone();
        new.created_at = now_ms();
        // Nobody can be connected to a room that did not exist a moment ago.
        let view = Room {
            name: new.name.as_str().to_owned(),
            created_at: format_ms(new.created_at),
            endpoint_count: 0,
            online: 0,
            presence: new.presence,
        };
        new.events = vec![event::room(EventType::RoomCreated, &view)];
        self.store.create_room(app.id, &new, at_most).await.map_err(|err| match err {
            StoreError::Conflict => ServiceError::Conflict(format!("room {} already exists", new.name)),
            other => quota_full(other, Quota::RoomsPerApp, at_most),
        })?;
        self.webhooks.wake.now();
        Ok(view)
    }

    /// One room.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such room.
    pub async fn room(&self, app: &AppRecord, name: &RoomName) -> Result<Room, ServiceError> {
        let room = self.find_room(app, name).await?;
        let mut views = self.room_views(vec![room]).await?;
        Ok(views.remove(0))
    }

    /// Who is in a room: live connections over every node, and in a
    /// presence room its members.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such room.
    pub async fn presence(&self, app: &AppRecord, name: &RoomName) -> Result<Presence, ServiceError> {
        let room = self.find_room(app, name).await?;
        let online = self.broker.online(&[room.id]).await?.first().copied().unwrap_or(0);
        let members = if room.presence { Some(self.broker.members(room.id).await?.members) } else { None };
        Ok(Presence { members, online })
    }

    /// The app's rooms, oldest first.
    ///
    /// # Errors
    ///
    /// Only store failures.
    pub async fn list_rooms(&self, app: &AppRecord) -> Result<Vec<Room>, ServiceError> {
        let rooms = self.store.list_rooms(app.id).await?;
        self.room_views(rooms).await
    }

    /// Deletes a room with its endpoints and history, closing its live
    /// connections.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such room.
    pub async fn delete_room(&self, app: &AppRecord, name: &RoomName) -> Result<(), ServiceError> {
        let missing = || ServiceError::NotFound(format!("room {name} does not exist"));
        let room = self.store.room(app.id, name).await?.ok_or_else(missing)?;
        let view = self.room_views(vec![room]).await?.remove(0);
        let events = [event::room(EventType::RoomDeleted, &view)];
        let room_id = self.store.delete_room(app.id, name, &events).await?.ok_or_else(missing)?;
        self.webhooks.wake.now();
        self.broker.announce(RoomEvent::RoomDeleted { room_id }).await;
        self.broker.forget_room(room_id).await;
        Ok(())
    }

    /// Adds an endpoint to a room; `created_with` is the API key used, so
    /// the endpoint can be revoked with it if the key leaks.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such room, `QuotaExceeded` when the
    /// room has its `endpoints_per_room`.
    pub async fn create_endpoint(
        &self,
        app: &AppRecord,
        room: &RoomName,
        spec: EndpointSpec,
        created_with: Option<i64>,
    ) -> Result<EndpointRecord, ServiceError> {
        let room = self.find_room(app, room).await?;
        let at_most = self.quota(app, Quota::EndpointsPerRoom);
        self.insert_endpoint(&room_ref(&room), spec, created_with, None, at_most).await
    }

    /// Stores a new endpoint of `room` with fresh code and id, minted by
    /// `parent` if given.
    pub(crate) async fn insert_endpoint(
        &self,
        room: &RoomRef,
        spec: EndpointSpec,
        key_id: Option<i64>,
        parent: Option<&EndpointRecord>,
        at_most: Option<u64>,
    ) -> Result<EndpointRecord, ServiceError> {
        let mut new = NewEndpoint {
            room_id: room.id,
            public_id: secrets::endpoint_id(),
            code: secrets::endpoint_code(),
            permission: spec.permission,
            meta: spec.meta.as_str().to_owned(),
            key_id,
            limits: spec.limits,
            can_delegate: spec.can_delegate,
            parent: parent.map(|parent| Lineage { parent_id: parent.id, depth: parent.depth + 1 }),
            created_at: now_ms(),
            events: Vec::new(),
        };
        let view = endpoint_view(to_be_stored(&new, room, parent), EndpointCounts::NONE, &self.webhooks.ws_base)?;
        new.events = vec![event::endpoint(EventType::EndpointCreated, &room.name, &view)];
        let created = self
            .store
            .create_endpoint(new, at_most)
            .await
            .map_err(|err| quota_full(err, Quota::EndpointsPerRoom, at_most))?;
        self.webhooks.wake.now();
        Ok(created)
    }

    /// A room's endpoints, oldest first.
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such room.
    pub async fn list_endpoints(&self, app: &AppRecord, room: &RoomName) -> Result<Vec<EndpointRecord>, ServiceError> {
        let room = self.find_room(app, room).await?;
        Ok(self.store.list_endpoints(room.id).await?)
    }

    /// Deletes an endpoint by code with every endpoint minted from it,
    /// closing their live connections.
    ///
    /// # Errors
    ///
    /// `NotFound` if the room or the endpoint does not exist for this app.
    pub async fn delete_endpoint(&self, app: &AppRecord, room: &RoomName, code: &str) -> Result<(), ServiceError> {
        let room = self.find_room(app, room).await?;
        let missing = || ServiceError::NotFound(format!("room {} has no endpoint with that code", room.name));
        if !secrets::is_code_shaped(code) {
            return Err(missing());
        }
        let endpoint = self.store.endpoint_in_room(room.id, code).await?.ok_or_else(missing)?;
        let mut subtree = vec![endpoint.clone()];
        subtree.extend(self.store.descendants(endpoint.id).await?);
        let events = self
            .endpoint_views(subtree, &self.webhooks.ws_base)
            .await?
            .iter()
            .map(|view| event::endpoint(EventType::EndpointDeleted, &room.name, view))
            .collect::<Vec<_>>();
        let deleted = self.store.delete_endpoint(room.id, code, app.id, &events).await?;
        if deleted.is_empty() {
            return Err(missing());
        }
        self.webhooks.wake.now();
        for endpoint_id in deleted {
            self.broker.announce(RoomEvent::EndpointDeleted { room_id: room.id, endpoint_id }).await;
        }
        Ok(())
    }

    /// Endpoints as the API shows them: with their live connections over
    /// every node and their `messages_sent`, their `ws_url` starting with
    /// `ws_base`.
    ///
    /// # Errors
    ///
    /// The broker's failure; `Internal` for stored meta that is not JSON.
    pub async fn endpoint_views(
        &self,
        records: Vec<EndpointRecord>,
        ws_base: &WsBase,
    ) -> Result<Vec<Endpoint>, ServiceError> {
        let ids: Vec<i64> = records.iter().map(|record| record.id).collect();
        let online = self.broker.endpoints_online(&ids).await?;
        records
            .into_iter()
            .zip(online)
            .map(|(record, online)| {
                let sent = self.sent.pending(record.id);
                endpoint_view(record, EndpointCounts { online, unwritten_sent: sent }, ws_base)
            })
            .collect()
    }

    /// One endpoint as the API shows it (see [`Service::endpoint_views`]).
    ///
    /// # Errors
    ///
    /// As [`Service::endpoint_views`].
    pub async fn endpoint_view(&self, record: EndpointRecord, ws_base: &WsBase) -> Result<Endpoint, ServiceError> {
        Ok(self.endpoint_views(vec![record], ws_base).await?.remove(0))
    }

    /// Retained messages with `seq > after_seq`, oldest first, only those
    /// of `sender_id` if given. `limit` defaults to 100 and is capped at
    /// `limits.max_page_size`.
    ///
    /// # Errors
    ///
    /// `Invalid` for a zero limit, `NotFound` if the app has no such room.
    pub async fn list_messages(
        &self,
        app: &AppRecord,
        room: &RoomName,
        after_seq: u64,
        limit: Option<usize>,
        sender_id: Option<&str>,
    ) -> Result<Vec<Message>, ServiceError> {
        let limit = match limit {
            Some(0) => return Err(ServiceError::Invalid("limit must be at least 1".into())),
            Some(limit) => limit.min(self.limits.max_page_size),
            None => 100.min(self.limits.max_page_size),
        };
        let room = self.find_room(app, room).await?;
        let Some(sender_id) = sender_id else {
            let history = self.broker.history(&room_ref(&room), after_seq, limit).await?;
            return Ok(history.messages.iter().map(|published| published.message.clone()).collect());
        };
        let history = self.broker.history(&room_ref(&room), after_seq, usize::MAX).await?;
        Ok(history
            .messages
            .iter()
            .filter(|published| published.message.sender.id == sender_id)
            .take(limit)
            .map(|published| published.message.clone())
            .collect())
    }

    /// Publishes from the app's backend (sender id `"app"`), returning once
    /// the message is stored. With an `Idempotency-Key` the app used for
    /// the room within the nonce window, nothing new is published and the
    /// first message is answered.
    ///
    /// # Errors
    ///
    /// `TooLarge` for a payload over `limits.max_message_bytes`, `Invalid`
    /// for one nested deeper than `limits.max_json_depth`, `NotFound` if the
    /// app has no such room, `Conflict` when the key's first message is no
    /// longer retained.
    pub async fn publish_as_app(
        &self,
        app: &AppRecord,
        room: &RoomName,
        payload: Box<RawValue>,
        meta: Meta,
        idempotency_key: Option<&Nonce>,
    ) -> Result<Message, ServiceError> {
        self.check_payload(&payload)?;
        let room = room_ref(&self.find_room(app, room).await?);
        let sender = Sender { id: APP_SENDER_ID.into(), meta: meta.into_raw(), parent: None };
        let bytes = payload.get().len();
        let nonce = idempotency_key.map(|key| NonceKey::of_app(app.id, key));
        let draft = Draft { sender, payload, nonce };
        match self.broker.publish(&room, draft, Durability::Stored).await {
            Ok(published) => {
                self.usage.meter(app.id).published(bytes);
                Ok(published.message.clone())
            }
            Err(BrokerError::Repeated(first)) => {
                let history = self.broker.history(&room, first.seq.saturating_sub(1), 1).await?;
                let retained = history.messages.into_iter().find(|published| published.seq() == first.seq);
                retained.map(|published| published.message.clone()).ok_or_else(|| {
                    ServiceError::Conflict(
                        "a message was published under this Idempotency-Key already and is no longer retained".into(),
                    )
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Checks a payload against the size limit and that every client can
    /// read it (depth, surrogate escapes).
    pub(crate) fn check_payload(&self, payload: &RawValue) -> Result<(), ServiceError> {
        let size = payload.get().len();
        if size > self.limits.max_message_bytes {
            return Err(ServiceError::TooLarge(format!(
                "message is {size} bytes, over the limit of {} bytes",
                self.limits.max_message_bytes
            )));
        }
        check_readable("message", payload, &self.limits)
    }
}

/// `err` as a service error, where [`StoreError::Full`] means `quota`
/// (of value `at_most`) is full.
pub(crate) fn quota_full(err: StoreError, quota: Quota, at_most: Option<u64>) -> ServiceError {
    match (err, at_most) {
        (StoreError::Full, Some(limit)) => QuotaExceeded { quota, limit }.into(),
        (other, _) => other.into(),
    }
}

/// What an endpoint's view counts beside its row.
#[derive(Debug, Clone, Copy)]
struct EndpointCounts {
    /// Live connections over every node.
    online: u64,
    /// Messages this node counted and has not written to the store yet.
    unwritten_sent: u64,
}

impl EndpointCounts {
    /// A new endpoint's: nothing yet.
    const NONE: Self = Self { online: 0, unwritten_sent: 0 };
}

/// The row `new` becomes in `room` once stored (its row id aside), so its
/// `endpoint.created` event can be written in the same transaction.
fn to_be_stored(new: &NewEndpoint, room: &RoomRef, parent: Option<&EndpointRecord>) -> EndpointRecord {
    EndpointRecord {
        id: 0,
        public_id: new.public_id.clone(),
        code: new.code.clone(),
        room_id: room.id,
        room_name: room.name.clone(),
        room_presence: false,
        permission: new.permission,
        meta: new.meta.clone(),
        created_at: new.created_at,
        max_connections: new.limits.max_connections.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        single_use: new.limits.single_use,
        used_at: None,
        expires_at: new.limits.expires_at,
        max_messages: new.limits.max_messages.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        messages_sent: 0,
        can_delegate: new.can_delegate,
        parent_id: parent.map(|parent| parent.id),
        parent_public_id: parent.map(|parent| parent.public_id.clone()),
        depth: new.parent.map_or(1, |lineage| lineage.depth),
        revision: 0,
        key_id: new.key_id,
    }
}

/// An endpoint as the API shows it, its `ws_url` starting with `ws_base`.
fn endpoint_view(record: EndpointRecord, counts: EndpointCounts, ws_base: &WsBase) -> Result<Endpoint, ServiceError> {
    let limits = record.limits();
    let meta = RawValue::from_string(record.meta).map_err(|err| ServiceError::Internal(err.into()))?;
    Ok(Endpoint {
        ws_url: ws_base.endpoint_url(&record.code),
        id: record.public_id,
        code: record.code,
        room: record.room_name,
        permission: record.permission,
        meta,
        created_at: format_ms(record.created_at),
        max_connections: limits.max_connections,
        single_use: limits.single_use,
        expires_at: limits.expires_at.map(format_ms),
        max_messages: limits.max_messages,
        messages_sent: u64::try_from(record.messages_sent).unwrap_or(0) + counts.unwritten_sent,
        online: counts.online,
        can_delegate: record.can_delegate,
        parent: record.parent_public_id,
    })
}

pub(crate) fn room_view(room: RoomRecord, online: u64) -> Room {
    Room {
        online,
        name: room.name,
        created_at: format_ms(room.created_at),
        endpoint_count: room.endpoint_count,
        presence: room.presence,
    }
}

pub(crate) fn room_ref(room: &RoomRecord) -> RoomRef {
    RoomRef { id: room.id, app_id: room.app_id, name: room.name.clone() }
}
