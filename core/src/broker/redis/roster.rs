//! Presence rooms' members over every node (the model is in
//! [`crate::presence`]).
//!
//! Invariants, each kept by one script running atomically in Redis:
//!
//! - A room's presence hash holds, per endpoint, its live connections over
//!   every node; an endpoint is a member while it has a field there (0 while
//!   it waits to leave, with an entry in the leave schedule).
//! - Every join and leave increments the room's presence version and is
//!   published on the room's channel in the same script, so every node
//!   hears a room's changes in version order, and only nodes with a
//!   connection in the room hear them at all.
//! - Each node also keeps its own share per `ROOM:ENDPOINT` in its presence
//!   hash, and a liveness key it refreshes every [`ALIVE_EVERY`]. When that
//!   key expires (the node was killed or lost Redis), the next sweep of any
//!   node counts the node's share out, and its endpoints with no connection
//!   elsewhere leave at once: within [`ALIVE_TTL`] plus a sweep.
//! - Every room with a live connection lists the nodes holding one, and
//!   each node lists its rooms: a room is occupied when its list gets its
//!   first node and vacated when it loses its last, by the node's own
//!   change or by counting a dead node out, each told once.
//! - A node keeps its share in memory too ([`RedisRoster::held`]). When its
//!   liveness key was gone at a refresh, Redis lost its data (or the node
//!   was counted out), and the node puts its share back: silently if nobody
//!   was told its members left, with `join`s if they were.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use comms_protocol::Member;
use parking_lot::Mutex;
use redis::{Script, ScriptInvocation, Value};

use super::counted::CountedConnection;
use super::keys::Keys;
use super::scripts;
use crate::broker::{BrokerError, RoomRef};
use crate::hub::Occupancy;
use crate::presence::{MemberCard, MemberChange, Roll, Swept, Transition};

/// How often a node refreshes its liveness key.
pub(super) const ALIVE_EVERY: Duration = Duration::from_secs(1);
/// How long a liveness key lives without a refresh: a killed node's members
/// leave this long after its last refresh, at most (plus one sweep).
pub(super) const ALIVE_TTL: Duration = Duration::from_secs(5);

/// One endpoint's connections on this node, with what it takes to put
/// them back.
struct Held {
    room: RoomRef,
    card: MemberCard,
    connections: u64,
}

/// This node's side of the presence rosters. See the module docs.
pub(super) struct RedisRoster {
    node: String,
    keys: Keys,
    connection: CountedConnection,
    /// This node's connections per `(room, endpoint)`, as last recorded in
    /// Redis. Only the tracker task changes it, one transition at a time.
    held: Mutex<HashMap<(i64, i64), Held>>,
    /// When the liveness key was last refreshed.
    refreshed: Mutex<Option<Instant>>,
    /// The rooms this node has a connection in, as last recorded in Redis
    /// (see [`RedisRoster::occupancy`]). Only the webhook recorder task
    /// changes it, one change at a time.
    occupied: Mutex<HashSet<i64>>,
}

impl RedisRoster {
    /// The roster side of node `node`.
    pub(super) fn new(node: String, keys: Keys, connection: CountedConnection) -> Self {
        Self { node, keys, connection, held: Mutex::default(), refreshed: Mutex::default(), occupied: Mutex::default() }
    }

    /// Records a transition of this node (see [`scripts::ARRIVE`] and
    /// [`scripts::DEPART`]).
    ///
    /// # Errors
    ///
    /// Redis cannot be reached; nothing was recorded.
    pub(super) async fn apply(&self, transition: &Transition) -> Result<Option<MemberChange>, BrokerError> {
        match transition {
            Transition::Arrived { room, card } => {
                let invocation = self.room_script(&scripts::ARRIVE, room, card);
                let version: i64 =
                    invocation.invoke_async(&mut self.connection.clone()).await.map_err(super::unavailable)?;
                let mut held = self.held.lock();
                let entry = held.entry((room.id, card.endpoint_id)).or_insert_with(|| Held {
                    room: room.clone(),
                    card: card.clone(),
                    connections: 0,
                });
                entry.card = card.clone();
                entry.connections += 1;
                if version > 0 {
                    let (room_id, room) = (room.id, room.name.clone());
                    return Ok(Some(MemberChange { room_id, room, member: card.member(1), joined: true }));
                }
            }
            Transition::Departed { room_id, endpoint_id, leave_at_ms } => {
                let _: i64 = scripts::DEPART
                    .key(self.keys.presence(*room_id))
                    .key(self.keys.leaving())
                    .key(self.keys.node_presence(&self.node))
                    .arg(endpoint_id)
                    .arg(format!("{room_id}:{endpoint_id}"))
                    .arg(leave_at_ms)
                    .invoke_async(&mut self.connection.clone())
                    .await
                    .map_err(super::unavailable)?;
                let mut held = self.held.lock();
                if let Some(entry) = held.get_mut(&(*room_id, *endpoint_id)) {
                    entry.connections -= 1;
                    if entry.connections == 0 {
                        held.remove(&(*room_id, *endpoint_id));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Refreshes this node's liveness when due (putting its share back if
    /// Redis lost it), then sends the leaves that are due ([`scripts::EXPIRE`]);
    /// those leaves.
    ///
    /// # Errors
    ///
    /// Redis cannot be reached.
    pub(super) async fn expire(&self, now_ms: i64) -> Result<Swept, BrokerError> {
        self.refresh_if_due().await?;
        let (sent, vacated): (Vec<(i64, String, String)>, Vec<i64>) = scripts::EXPIRE
            .key(self.keys.leaving())
            .key(self.keys.presence_nodes())
            .arg(now_ms)
            .arg(self.keys.prefix())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(super::unavailable)?;
        let left = sent
            .into_iter()
            .map(|(room_id, name, member)| {
                let room = serde_json::from_str(&name).map_err(|err| super::malformed(format!("room name: {err}")))?;
                let member = serde_json::from_str(&member).map_err(|err| super::malformed(format!("member: {err}")))?;
                Ok(MemberChange { room_id, room, member, joined: false })
            })
            .collect::<Result<_, BrokerError>>()?;
        Ok(Swept { left, vacated })
    }

    /// Records a room's first connection on this node or its last one
    /// leaving ([`scripts::OCCUPY`], [`scripts::VACATE`]); whether that
    /// occupied or vacated the room over every node.
    ///
    /// # Errors
    ///
    /// Redis cannot be reached; nothing was recorded.
    pub(super) async fn occupancy(&self, change: Occupancy) -> Result<bool, BrokerError> {
        let (script, room_id) = match change {
            Occupancy::Occupied(room_id) => (&*scripts::OCCUPY, room_id),
            Occupancy::Vacated(room_id) => (&*scripts::VACATE, room_id),
        };
        let changed: i64 = self.occupancy_script(script, room_id).await?;
        let mut occupied = self.occupied.lock();
        match change {
            Occupancy::Occupied(_) => occupied.insert(room_id),
            Occupancy::Vacated(_) => occupied.remove(&room_id),
        };
        Ok(changed == 1)
    }

    async fn occupancy_script(&self, script: &Script, room_id: i64) -> Result<i64, BrokerError> {
        script
            .key(self.keys.room_nodes(room_id))
            .key(self.keys.node_rooms(&self.node))
            .arg(&self.node)
            .arg(room_id)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(super::unavailable)
    }

    async fn refresh_if_due(&self) -> Result<(), BrokerError> {
        if self.refreshed.lock().is_some_and(|at| at.elapsed() < ALIVE_EVERY) {
            return Ok(());
        }
        let outcome: i64 = scripts::ALIVE
            .key(self.keys.node_alive(&self.node))
            .key(self.keys.node_reaped(&self.node))
            .key(self.keys.presence_nodes())
            .arg(&self.node)
            .arg(ALIVE_TTL.as_millis() as u64)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(super::unavailable)?;
        if outcome != 0 {
            self.put_back(outcome == 2).await?;
        }
        *self.refreshed.lock() = Some(Instant::now());
        Ok(())
    }

    /// Puts this node's share back into Redis ([`scripts::RESTORE`]),
    /// announcing the endpoints that come back if `announce`.
    async fn put_back(&self, announce: bool) -> Result<(), BrokerError> {
        let held: Vec<(RoomRef, MemberCard, u64)> =
            self.held.lock().values().map(|held| (held.room.clone(), held.card.clone(), held.connections)).collect();
        if !held.is_empty() {
            tracing::info!(endpoints = held.len(), announce, "putting this node's presence back into Redis");
        }
        for (room, card, connections) in held {
            let mut invocation = self.room_script(&scripts::RESTORE, &room, &card);
            invocation.arg(connections).arg(u8::from(announce));
            let _: i64 = invocation.invoke_async(&mut self.connection.clone()).await.map_err(super::unavailable)?;
        }
        // The rooms come back silently: a room counted vacated meanwhile
        // is not announced occupied again.
        let occupied: Vec<i64> = self.occupied.lock().iter().copied().collect();
        for room_id in occupied {
            self.occupancy_script(&scripts::OCCUPY, room_id).await?;
        }
        Ok(())
    }

    /// Shows `card` for its endpoint from now on, if it is a member of the
    /// room ([`scripts::UPDATE_CARD`]).
    ///
    /// # Errors
    ///
    /// Redis cannot be reached.
    pub(super) async fn update_card(&self, room_id: i64, card: &MemberCard) -> Result<(), BrokerError> {
        let _: i64 = scripts::UPDATE_CARD
            .key(self.keys.presence(room_id))
            .key(self.keys.members(room_id))
            .arg(card.endpoint_id)
            .arg(card_text(card))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(super::unavailable)?;
        if let Some(held) = self.held.lock().get_mut(&(room_id, card.endpoint_id)) {
            held.card = card.clone();
        }
        Ok(())
    }

    /// A script of [`scripts::ARRIVE`]'s KEYS and ARGV for `card` in `room`.
    fn room_script<'s>(&self, script: &'s Script, room: &RoomRef, card: &MemberCard) -> ScriptInvocation<'s> {
        let mut invocation = script.key(self.keys.presence(room.id));
        invocation
            .key(self.keys.members(room.id))
            .key(self.keys.joined(room.id))
            .key(self.keys.presence_version(room.id))
            .key(self.keys.leaving())
            .key(self.keys.node_presence(&self.node))
            .key(self.keys.channel(room.id))
            .key(self.keys.room_name(room.id))
            .arg(card.endpoint_id)
            .arg(card_text(card))
            .arg(format!("{}:{}", room.id, card.endpoint_id))
            .arg(serde_json::to_string(&room.name).expect("a string always serializes"));
        invocation
    }

    /// A presence room's members over every node ([`scripts::MEMBERS`]).
    ///
    /// # Errors
    ///
    /// Redis cannot be reached or answers in a form this version does not
    /// know.
    pub(super) async fn members(&self, room_id: i64) -> Result<Roll, BrokerError> {
        let values: Vec<Value> = scripts::MEMBERS
            .key(self.keys.presence(room_id))
            .key(self.keys.members(room_id))
            .key(self.keys.joined(room_id))
            .key(self.keys.presence_version(room_id))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(super::unavailable)?;
        let mut values = values.into_iter();
        let version = match values.next() {
            Some(Value::Int(version)) => u64::try_from(version).unwrap_or(0),
            other => return Err(super::malformed(format!("presence version: {other:?}"))),
        };
        let mut members = Vec::new();
        while let Some(card) = values.next() {
            let (Value::BulkString(card), Some(Value::Int(connections))) = (card, values.next()) else {
                return Err(super::malformed("a presence member".into()));
            };
            let text = format!("{{{},\"connections\":{}}}", String::from_utf8_lossy(&card), connections.max(0));
            let member: Member =
                serde_json::from_str(&text).map_err(|err| super::malformed(format!("a presence member: {err}")))?;
            members.push(member);
        }
        Ok(Roll { version, members })
    }

    /// The keys of a deleted room's presence.
    pub(super) fn room_keys(&self, room_id: i64) -> [String; 5] {
        [
            self.keys.presence(room_id),
            self.keys.members(room_id),
            self.keys.joined(room_id),
            self.keys.presence_version(room_id),
            self.keys.room_name(room_id),
        ]
    }
}

/// A member's card as scripts splice it into frames: `"id":…,"meta":…`.
fn card_text(card: &MemberCard) -> String {
    let id = serde_json::to_string(&card.id).expect("a string always serializes");
    format!("\"id\":{id},\"meta\":{}", card.meta.get())
}
