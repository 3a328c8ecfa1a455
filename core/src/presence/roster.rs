//! The members of this node's presence rooms, for the in-process broker
//! (one node: its own connections are all there are).
//!
//! One lock over every room's roster and the leave schedule. Changes are
//! handed to the hub while it is held, so every connection's queue gets a
//! room's changes in version order.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{MemberCard, PresenceChange, Roll, Transition};
use crate::hub::{Delivery, Hub};

/// One endpoint in a room's roster.
struct Entry {
    card: MemberCard,
    /// Live connections; 0 while the endpoint waits to leave.
    connections: u64,
    /// When it leaves, if it has no connection.
    leave_at_ms: Option<i64>,
    /// Arrival order, for listing members in the order they joined.
    joined: u64,
}

#[derive(Default)]
struct RoomRoster {
    name: String,
    version: u64,
    next_joined: u64,
    members: HashMap<i64, Entry>,
}

#[derive(Default)]
struct State {
    rooms: HashMap<i64, RoomRoster>,
    /// `(leave_at_ms, room_id, endpoint_id)` of endpoints with no
    /// connection, soonest first.
    leaving: BTreeSet<(i64, i64, i64)>,
}

/// Presence rooms' members on one node. See the module docs.
pub struct Roster {
    hub: Arc<Hub>,
    state: Mutex<State>,
}

impl Roster {
    /// An empty roster sending its changes to `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub, state: Mutex::new(State::default()) }
    }

    /// Applies a transition, sending the `join` it causes.
    pub fn apply(&self, transition: &Transition) {
        let mut state = self.state.lock();
        let State { rooms, leaving } = &mut *state;
        match transition {
            Transition::Arrived { room, card } => {
                let roster = rooms
                    .entry(room.id)
                    .or_insert_with(|| RoomRoster { name: room.name.clone(), ..Default::default() });
                let joined = roster.next_joined;
                let entry = roster.members.entry(card.endpoint_id).or_insert_with(|| Entry {
                    card: card.clone(),
                    connections: 0,
                    leave_at_ms: None,
                    joined,
                });
                entry.card = card.clone();
                entry.connections += 1;
                if entry.connections > 1 {
                    return;
                }
                if let Some(at) = entry.leave_at_ms.take() {
                    // Back within the grace period: nobody hears of it.
                    leaving.remove(&(at, room.id, card.endpoint_id));
                    return;
                }
                roster.next_joined += 1;
                roster.version += 1;
                let change = PresenceChange::join(&roster.name, card.member(1), roster.version);
                self.hub.deliver_presence(room.id, Delivery::Presence(Arc::new(change)));
            }
            Transition::Departed { room_id, endpoint_id, leave_at_ms } => {
                let Some(entry) = rooms.get_mut(room_id).and_then(|roster| roster.members.get_mut(endpoint_id)) else {
                    return;
                };
                entry.connections = entry.connections.saturating_sub(1);
                if entry.connections == 0 {
                    entry.leave_at_ms = Some(*leave_at_ms);
                    leaving.insert((*leave_at_ms, *room_id, *endpoint_id));
                }
            }
        }
    }

    /// Sends the `leave` of every endpoint whose leave time is `now_ms` or
    /// earlier.
    pub fn expire(&self, now_ms: i64) {
        let mut state = self.state.lock();
        let State { rooms, leaving } = &mut *state;
        while let Some(&(at, room_id, endpoint_id)) = leaving.first() {
            if at > now_ms {
                break;
            }
            leaving.pop_first();
            let Some(roster) = rooms.get_mut(&room_id) else { continue };
            if let Some(entry) = roster.members.remove(&endpoint_id) {
                roster.version += 1;
                let change = PresenceChange::leave(&roster.name, entry.card.member(0), roster.version);
                self.hub.deliver_presence(room_id, Delivery::Presence(Arc::new(change)));
            }
            if roster.members.is_empty() {
                rooms.remove(&room_id);
            }
        }
    }

    /// The room's members, in the order they joined.
    pub fn members(&self, room_id: i64) -> Roll {
        let state = self.state.lock();
        let Some(roster) = state.rooms.get(&room_id) else { return Roll::default() };
        let mut entries: Vec<&Entry> = roster.members.values().collect();
        entries.sort_unstable_by_key(|entry| entry.joined);
        Roll {
            version: roster.version,
            members: entries.iter().map(|entry| entry.card.member(entry.connections)).collect(),
        }
    }
}
