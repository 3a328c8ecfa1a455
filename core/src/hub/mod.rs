//! This node's live connections, grouped by room, and the fan-out to them.
//!
//! The hub knows nothing about sockets or JSON: a room is one queue of
//! already-serialized frames ([`Outgoing`]: messages, presence changes,
//! signals), its [`log`], which every connection reads from its own cursor;
//! a connection is told there, too, when the hub closes it.
//! The connection task (in the server's `ws` module) reads through its
//! [`Membership`].
//!
//! Each room also holds its app's usage meter, to which a delivery adds
//! how many connections it reached: once per message, not per connection.
//!
//! Each connection also shares its endpoint's [`LiveEndpoint`] with the
//! endpoint's other connections on this node, listed here by endpoint, so
//! an app's change to the endpoint reaches all of them at once; endpoints
//! with an expiry are listed with it, and [`Hub::expire`] closes their
//! connections when it passes.
//!
//! Locking: one `RwLock` over the room map (written only on join and leave)
//! and one `Mutex` per room over its log, held while a frame is appended or
//! a connection reads one. The endpoint list and the expiry list have a
//! `Mutex` each, taken inside the room map's lock, never the other way
//! round. All are synchronous locks never held across an `.await`, and a
//! push never blocks: a connection a queue behind is closed with 1013
//! instead of slowing the room down or silently skipping the message.
//! Signals are the exception: they may be skipped, and never cost a
//! connection a message (the log's module docs give the rules).

mod log;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use comms_protocol::ws::close;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

use comms_protocol::ws::ServerFrame;

use crate::live_endpoint::{EndpointState, LiveEndpoint};
use crate::message::{Order, Outgoing, Published, RoomEvent};
use crate::metrics::Metrics;
use crate::presence::Signal;
use crate::quotas::SocketCounts;
use crate::usage::AppMeter;

pub use log::Delivery;
use log::{Audience, Pushed, RoomLog};

/// Why the hub closed a connection; maps to a WebSocket close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The connection's endpoint was deleted.
    EndpointDeleted,
    /// The connection's room was deleted.
    RoomDeleted,
    /// The connection fell a queue behind its room.
    SlowConsumer,
    /// The server is shutting down.
    ShuttingDown,
    /// The room's app stopped being approved.
    AppStopped,
    /// This node lost its connection to the broker and may have missed
    /// messages; the client resumes with `after_seq`.
    BrokerLost,
    /// The connection's endpoint reached its `expires_at`.
    EndpointExpired,
}

impl CloseReason {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Self::EndpointDeleted => close::ENDPOINT_DELETED,
            Self::RoomDeleted => close::ROOM_DELETED,
            Self::SlowConsumer => close::TRY_AGAIN_LATER,
            Self::ShuttingDown => close::GOING_AWAY,
            Self::AppStopped => close::APP_STOPPED,
            Self::BrokerLost => close::TRY_AGAIN_LATER,
            Self::EndpointExpired => close::ENDPOINT_EXPIRED,
        }
    }

    /// The close reason text.
    pub fn text(self) -> &'static str {
        match self {
            Self::EndpointDeleted => "endpoint deleted",
            Self::RoomDeleted => "room deleted",
            Self::SlowConsumer => "too slow: queue full, resume with after_seq",
            Self::ShuttingDown => "server shutting down",
            Self::AppStopped => "app no longer approved",
            Self::BrokerLost => "message broker connection lost, resume with after_seq",
            Self::EndpointExpired => "endpoint expired",
        }
    }
}

/// A room with connections on this node.
struct HubRoom {
    log: Mutex<RoomLog>,
    /// The usage meter of the room's app, which counts the messages the
    /// room's connections are handed.
    meter: Arc<AppMeter>,
}

type Room = Arc<HubRoom>;

/// Endpoints and rooms deleted recently. A WebSocket checks its code before
/// the upgrade and joins after it; a delete landing in between must still
/// keep it out, so joins consult these.
#[derive(Default)]
struct Tombstones {
    endpoints: HashMap<i64, Instant>,
    rooms: HashMap<i64, Instant>,
}

/// Longer than any upgrade takes; afterwards the code lookup itself fails.
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);

impl Tombstones {
    fn bury(map: &mut HashMap<i64, Instant>, id: i64) {
        let now = Instant::now();
        map.retain(|_, at| now.duration_since(*at) < TOMBSTONE_TTL);
        map.insert(id, now);
    }

    fn refusal(&self, room_id: i64, endpoint_id: i64) -> Option<CloseReason> {
        if self.rooms.contains_key(&room_id) {
            Some(CloseReason::RoomDeleted)
        } else if self.endpoints.contains_key(&endpoint_id) {
            Some(CloseReason::EndpointDeleted)
        } else {
            None
        }
    }
}

/// Live connections of this node. Share it as `Arc<Hub>`.
pub struct Hub {
    rooms: RwLock<HashMap<i64, Room>>,
    tombstones: Mutex<Tombstones>,
    next_member: AtomicU64,
    /// Frames a connection may be behind before it is too slow.
    queue_len: usize,
    metrics: Arc<Metrics>,
    /// Sockets per app, endpoint and address, for the socket quotas: held
    /// here because the hub is this node's record of live connections, which
    /// the Redis broker publishes to the other nodes.
    sockets: Arc<SocketCounts>,
    /// The endpoints with a connection here, by row id; an entry whose
    /// endpoint has no connection left is dropped by the last one leaving,
    /// or replaced by the next join.
    endpoints: Mutex<HashMap<i64, Weak<LiveEndpoint>>>,
    /// Endpoints with a connection here and an expiry: row id to room id
    /// and `expires_at`.
    expiring: Mutex<HashMap<i64, (i64, i64)>>,
    /// Told when a room gets its first connection here or loses its last,
    /// once set (see [`Hub::report_occupancy`]).
    occupancy: OnceLock<mpsc::UnboundedSender<Occupancy>>,
}

/// A room of this node getting its first connection or losing its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupancy {
    /// The room with this row id got its first connection.
    Occupied(i64),
    /// The room with this row id lost its last connection.
    Vacated(i64),
}

/// A connection's place in a room. Dropping it leaves the room.
///
/// It reads every message of the room published after the join, in seq
/// order, with the room's presence changes, other connections' signals and
/// its endpoint's changes; then [`Delivery::Closed`] once the hub ends the
/// connection (endpoint or room deleted, too slow, shutdown). The
/// connection should then close the socket with the reason's code.
pub struct Membership {
    hub: Arc<Hub>,
    room: Room,
    room_id: i64,
    member_id: u64,
    /// The connection's endpoint, as the app last changed it.
    pub endpoint: Arc<LiveEndpoint>,
}

impl Membership {
    /// The connection's id on this node, which its own signals carry so
    /// they are not sent back to it.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The next frame for the connection, or that the hub closed it; with
    /// neither, the task is woken when one comes.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Delivery> {
        self.room.log.lock().poll_read(self.member_id, cx)
    }

    /// The next frame if one is there already, or that the hub closed the
    /// connection.
    pub fn try_next(&self) -> Option<Delivery> {
        self.room.log.lock().read(self.member_id)
    }

    /// Why the hub closed the connection, if it has.
    pub fn closed(&self) -> Option<CloseReason> {
        self.room.log.lock().closed(self.member_id)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room, self.room_id, self.member_id, &self.endpoint);
    }
}

impl Hub {
    /// An empty hub whose connections may each be `queue_len` frames behind.
    pub fn new(queue_len: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            rooms: RwLock::new(HashMap::new()),
            tombstones: Mutex::new(Tombstones::default()),
            next_member: AtomicU64::new(1),
            queue_len,
            metrics,
            sockets: Arc::default(),
            endpoints: Mutex::default(),
            expiring: Mutex::default(),
            occupancy: OnceLock::new(),
        })
    }

    /// Sends every room's occupancy changes on this node to `changes` from
    /// now on (the broker tells whether each holds over every node).
    pub fn report_occupancy(&self, changes: mpsc::UnboundedSender<Occupancy>) {
        let _ = self.occupancy.set(changes);
    }

    fn occupancy_changed(&self, change: Occupancy) {
        if let Some(changes) = self.occupancy.get() {
            let _ = changes.send(change);
        }
    }

    /// This node's sockets per app, endpoint and client address.
    pub fn sockets(&self) -> &Arc<SocketCounts> {
        &self.sockets
    }

    /// Adds a connection of `endpoint` to its room. The connection shares
    /// the endpoint's [`LiveEndpoint`] with its other connections here, and
    /// `endpoint` is that state's first version if it has none. `meter` is
    /// the usage meter of the room's app.
    ///
    /// # Errors
    ///
    /// Why the connection may not join: its endpoint or room was deleted.
    pub fn join(self: &Arc<Self>, endpoint: LiveEndpoint, meter: Arc<AppMeter>) -> Result<Membership, CloseReason> {
        let member_id = self.next_member.fetch_add(1, Ordering::Relaxed);
        let room_id = endpoint.room_id;
        // Deletes bury under the read lock, so holding the write lock here
        // orders this join entirely before or after any delete.
        let mut rooms = self.rooms.write();
        if let Some(reason) = self.tombstones.lock().refusal(room_id, endpoint.id) {
            return Err(reason);
        }
        let endpoint = self.share(endpoint);
        let room = rooms.entry(room_id).or_insert_with(|| {
            self.metrics.live_rooms.inc();
            self.occupancy_changed(Occupancy::Occupied(room_id));
            Arc::new(HubRoom { log: Mutex::new(RoomLog::new(self.queue_len)), meter })
        });
        room.log.lock().join(member_id, Arc::clone(&endpoint));
        self.metrics.connections.inc();
        Ok(Membership { hub: Arc::clone(self), room: Arc::clone(room), room_id, member_id, endpoint })
    }

    /// The endpoint's shared state on this node: the one its other
    /// connections use, brought up to `fresh` if that is newer, or `fresh`.
    fn share(&self, fresh: LiveEndpoint) -> Arc<LiveEndpoint> {
        let mut endpoints = self.endpoints.lock();
        if let Some(live) = endpoints.get(&fresh.id).and_then(Weak::upgrade) {
            let state = fresh.state();
            if live.update(EndpointState::clone(&state)) {
                self.schedule_expiry(&live);
            }
            return live;
        }
        let live = Arc::new(fresh);
        endpoints.insert(live.id, Arc::downgrade(&live));
        self.schedule_expiry(&live);
        live
    }

    /// Lists the endpoint with its expiry, or takes it off the list.
    pub fn schedule_expiry(&self, endpoint: &LiveEndpoint) {
        let mut expiring = self.expiring.lock();
        match endpoint.state().expires_at {
            Some(at) => expiring.insert(endpoint.id, (endpoint.room_id, at)),
            None => expiring.remove(&endpoint.id),
        };
    }

    fn leave(&self, room: &Room, room_id: i64, member_id: u64, endpoint: &Arc<LiveEndpoint>) {
        let mut rooms = self.rooms.write();
        let mut log = room.log.lock();
        if log.leave(member_id) {
            self.metrics.connections.dec();
        }
        // The room may have been emptied by closing before, and listed
        // again since, for new connections: only its own entry goes.
        if log.is_empty() && rooms.get(&room_id).is_some_and(|listed| Arc::ptr_eq(listed, room)) {
            drop(log);
            rooms.remove(&room_id);
            self.metrics.live_rooms.dec();
            self.occupancy_changed(Occupancy::Vacated(room_id));
        }
        // Only the leaving Membership holds it now: the endpoint has no
        // connection left here. Joins share under the same write lock, so
        // none can be taking it meanwhile.
        if Arc::strong_count(endpoint) == 1 {
            let mut endpoints = self.endpoints.lock();
            if endpoints.get(&endpoint.id).is_some_and(|listed| std::ptr::eq(listed.as_ptr(), Arc::as_ptr(endpoint))) {
                endpoints.remove(&endpoint.id);
                self.expiring.lock().remove(&endpoint.id);
            }
        }
    }

    /// Hands a published message to every connection of its room. Must be
    /// called in seq order per room (the broker guarantees it).
    pub fn deliver(&self, message: &Arc<Published>) {
        let Some(room) = self.rooms.read().get(&message.room_id).cloned() else { return };
        let pushed = room.log.lock().push(&message.outgoing, Audience::All);
        let delivered = self.count(&pushed);
        room.meter.delivered(delivered, message.outgoing.frame.len());
        self.metrics.messages_out.inc_by(delivered);
    }

    /// Hands a presence change (join or leave) of room `room_id` to every
    /// connection of the room. Like a message, it is never skipped: a
    /// connection too slow to take it is closed and resumes with a fresh
    /// member list. Must be called in version order per room.
    pub fn deliver_presence(&self, room_id: i64, change: &Arc<Outgoing>) {
        self.push(room_id, change);
    }

    /// Appends `frame` to the room's log for every connection of the room;
    /// returns how many it is for.
    fn push(&self, room_id: i64, frame: &Arc<Outgoing>) -> u64 {
        self.push_for(room_id, frame, Audience::All)
    }

    /// Appends `frame` to the room's log for `to`; returns how many
    /// connections it is for.
    fn push_for(&self, room_id: i64, frame: &Arc<Outgoing>, to: Audience) -> u64 {
        let Some(room) = self.rooms.read().get(&room_id).cloned() else { return 0 };
        let pushed = room.log.lock().push(frame, to);
        self.count(&pushed)
    }

    /// Hands a signal to every connection of its room on this node except
    /// the sending one. A connection half a queue behind misses it:
    /// signals are ephemeral, and the rest of the queue is kept for
    /// messages, so a flood of signals never costs anyone a message.
    pub fn deliver_signal(&self, signal: &Signal) {
        let Some(room) = self.rooms.read().get(&signal.room_id).cloned() else { return };
        let pushed = room.log.lock().push_signal(&signal.outgoing, signal.from_member);
        self.count(&pushed);
    }

    /// Counts what a push did in the metrics; returns how many connections
    /// the frame is for.
    fn count(&self, pushed: &Pushed) -> u64 {
        if pushed.too_slow > 0 {
            self.metrics.slow_consumers.inc_by(pushed.too_slow);
            self.closed(pushed.too_slow);
        }
        self.metrics.signals_skipped.inc_by(pushed.skipped);
        pushed.delivered
    }

    /// Applies `event` to this node's connections.
    pub fn apply(&self, event: RoomEvent) {
        match event {
            RoomEvent::EndpointDeleted { room_id, endpoint_id } => {
                Tombstones::bury(&mut self.tombstones.lock().endpoints, endpoint_id);
                self.close_endpoint(room_id, endpoint_id, CloseReason::EndpointDeleted);
            }
            RoomEvent::RoomDeleted { room_id } => self.close_room(room_id),
            RoomEvent::AppStopped { room_id } => self.close_room_connections(room_id, CloseReason::AppStopped),
            RoomEvent::EndpointChanged { room_id, endpoint_id, state } => {
                self.change_endpoint(room_id, endpoint_id, state);
            }
            RoomEvent::Redacted { room_id, room, messages } => {
                for (seq, id) in messages {
                    let frame = ServerFrame::Redaction { room: room.clone(), seq, id };
                    self.push(room_id, &Arc::new(Outgoing::new(&frame, Order::Ephemeral)));
                }
            }
        }
    }

    /// Gives the endpoint's connections here its new state, and sends them
    /// the `endpoint` frame showing it.
    fn change_endpoint(&self, room_id: i64, endpoint_id: i64, state: EndpointState) {
        let Some(live) = self.endpoints.lock().get(&endpoint_id).and_then(Weak::upgrade) else { return };
        if !live.update(state) {
            return;
        }
        self.schedule_expiry(&live);
        let frame = Arc::new(Outgoing::new(&live.frame(), Order::Ephemeral));
        self.push_for(room_id, &frame, Audience::Endpoint(endpoint_id));
    }

    /// Closes the connections of every endpoint whose expiry is `now_ms` or
    /// earlier with 4004. New connections are refused by the code check.
    pub fn expire(&self, now_ms: i64) {
        let due: Vec<(i64, i64)> = {
            let mut expiring = self.expiring.lock();
            let due: Vec<(i64, i64)> =
                expiring.iter().filter(|(_, (_, at))| *at <= now_ms).map(|(id, (room, _))| (*room, *id)).collect();
            for (_, endpoint_id) in &due {
                expiring.remove(endpoint_id);
            }
            due
        };
        for (room_id, endpoint_id) in due {
            self.close_endpoint(room_id, endpoint_id, CloseReason::EndpointExpired);
        }
    }

    /// Closes every connection of an endpoint with `reason`.
    fn close_endpoint(&self, room_id: i64, endpoint_id: i64, reason: CloseReason) {
        let Some(room) = self.rooms.read().get(&room_id).cloned() else { return };
        let closed = room.log.lock().close_where(reason, |reader| reader.endpoint.id == endpoint_id);
        self.closed(closed);
    }

    /// Counts `count` connections the hub closed out of the open ones.
    fn closed(&self, count: u64) {
        self.metrics.connections.dec_by(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Closes every connection of a deleted room and keeps new ones out.
    fn close_room(&self, room_id: i64) {
        let rooms = self.rooms.read();
        Tombstones::bury(&mut self.tombstones.lock().rooms, room_id);
        let Some(room) = rooms.get(&room_id).cloned() else { return };
        drop(rooms);
        self.close_members(&room, CloseReason::RoomDeleted);
    }

    /// Closes the room's connections without keeping new ones out: its app
    /// stopped being approved, which the next join checks by itself.
    fn close_room_connections(&self, room_id: i64, reason: CloseReason) {
        let Some(room) = self.rooms.read().get(&room_id).cloned() else { return };
        self.close_members(&room, reason);
    }

    /// Closes every connection of this node, e.g. on shutdown.
    pub fn close_all(&self, reason: CloseReason) {
        let rooms: Vec<Room> = self.rooms.read().values().cloned().collect();
        for room in rooms {
            self.close_members(&room, reason);
        }
    }

    fn close_members(&self, room: &Room, reason: CloseReason) {
        let closed = room.log.lock().close_where(reason, |_| true);
        self.closed(closed);
    }

    /// Open connections in a room on this node.
    pub fn online(&self, room_id: i64) -> u64 {
        self.rooms.read().get(&room_id).map_or(0, |room| room.log.lock().len() as u64)
    }

    /// Open connections of every room this node has any in.
    pub fn online_by_room(&self) -> HashMap<i64, u64> {
        self.rooms.read().iter().map(|(id, room)| (*id, room.log.lock().len() as u64)).collect()
    }

    /// The endpoints with a connection in the room on this node.
    pub fn endpoints_in(&self, room_id: i64) -> Vec<i64> {
        let Some(room) = self.rooms.read().get(&room_id).cloned() else { return Vec::new() };
        let mut endpoints: Vec<i64> = room.log.lock().readers().map(|reader| reader.endpoint.id).collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        endpoints
    }

    /// Whether this node has a connection in the room.
    pub fn has_room(&self, room_id: i64) -> bool {
        self.rooms.read().contains_key(&room_id)
    }
}
