//! The members of this node's presence rooms, for the in-process broker
//! (one node: its own connections are all there are).
//!
//! One lock over every room's roster and the leave schedule. Changes are
//! handed to the hub while it is held, so every room's log gets its
//! changes in version order.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{MemberCard, MemberChange, Roll, Transition};
use crate::hub::Hub;

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

    /// Applies a transition, sending the `join` it causes; that join.
    pub fn apply(&self, transition: &Transition) -> Option<MemberChange> {
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
                    return None;
                }
                if let Some(at) = entry.leave_at_ms.take() {
                    // Back within the grace period: nobody hears of it.
                    leaving.remove(&(at, room.id, card.endpoint_id));
                    return None;
                }
                roster.next_joined += 1;
                roster.version += 1;
                let member = card.member(1);
                let change = super::join(&roster.name, member.clone(), roster.version);
                self.hub.deliver_presence(room.id, &change);
                Some(MemberChange { room_id: room.id, room: roster.name.clone(), member, joined: true })
            }
            Transition::Departed { room_id, endpoint_id, leave_at_ms } => {
                let entry = rooms.get_mut(room_id).and_then(|roster| roster.members.get_mut(endpoint_id))?;
                entry.connections = entry.connections.saturating_sub(1);
                if entry.connections == 0 {
                    entry.leave_at_ms = Some(*leave_at_ms);
                    leaving.insert((*leave_at_ms, *room_id, *endpoint_id));
                }
                None
            }
        }
    }

    /// Sends the `leave` of every endpoint whose leave time is `now_ms` or
    /// earlier; those leaves.
    pub fn expire(&self, now_ms: i64) -> Vec<MemberChange> {
        let mut left = Vec::new();
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
                let member = entry.card.member(0);
                let change = super::leave(&roster.name, member.clone(), roster.version);
                self.hub.deliver_presence(room_id, &change);
                left.push(MemberChange { room_id, room: roster.name.clone(), member, joined: false });
            }
            if roster.members.is_empty() {
                rooms.remove(&room_id);
            }
        }
        left
    }

    /// Shows `card` for its endpoint from now on, if it is a member.
    pub fn update_card(&self, room_id: i64, card: &MemberCard) {
        let mut state = self.state.lock();
        if let Some(entry) = state.rooms.get_mut(&room_id).and_then(|roster| roster.members.get_mut(&card.endpoint_id))
        {
            entry.card = card.clone();
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

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::broker::RoomRef;
    use crate::live_endpoint::LiveEndpoint;
    use crate::message::Order;
    use crate::metrics::Metrics;

    const ROOM: i64 = 7;

    fn room() -> RoomRef {
        RoomRef { id: ROOM, app_id: 1, name: "chat".into() }
    }

    fn card(endpoint_id: i64) -> MemberCard {
        let meta = RawValue::from_string(format!(r#"{{"n":{endpoint_id}}}"#)).unwrap();
        MemberCard { endpoint_id, id: format!("ep_{endpoint_id}"), meta }
    }

    fn arrive(roster: &Roster, endpoint_id: i64) {
        roster.apply(&Transition::Arrived { room: room(), card: card(endpoint_id) });
    }

    fn depart(roster: &Roster, endpoint_id: i64, leave_at_ms: i64) {
        roster.apply(&Transition::Departed { room_id: ROOM, endpoint_id, leave_at_ms });
    }

    /// `(type, member id, connections, version)` of each change queued so
    /// far for a connection of the room.
    fn heard(membership: &crate::hub::Membership) -> Vec<(String, String, u64, u64)> {
        let mut heard = Vec::new();
        while let Some(crate::hub::Delivery::Frame(change)) = membership.try_next() {
            let Order::Version(version) = change.order else { panic!("only presence changes were sent") };
            let frame: serde_json::Value = serde_json::from_slice(&change.frame).unwrap();
            let member = &frame["member"];
            heard.push((
                frame["type"].as_str().unwrap().to_owned(),
                member["id"].as_str().unwrap().to_owned(),
                member["connections"].as_u64().unwrap(),
                version,
            ));
        }
        heard
    }

    fn entry(kind: &str, id: &str, connections: u64, version: u64) -> (String, String, u64, u64) {
        (kind.to_owned(), id.to_owned(), connections, version)
    }

    #[test]
    fn first_arrival_joins_last_departure_leaves_after_its_time_and_a_return_in_time_is_silent() {
        let hub = Hub::new(16, Arc::new(Metrics::default()));
        let listener = hub.join(LiveEndpoint::for_test(ROOM, 99), Arc::default()).unwrap();
        let roster = Roster::new(Arc::clone(&hub));

        arrive(&roster, 1);
        arrive(&roster, 1);
        assert_eq!(heard(&listener), [entry("join", "ep_1", 1, 1)], "one join for two connections");
        depart(&roster, 1, 1_000);
        depart(&roster, 1, 1_000);
        let roll = roster.members(ROOM);
        assert_eq!((roll.version, roll.members[0].connections), (1, 0), "still a member during the grace");

        arrive(&roster, 1);
        roster.expire(5_000);
        assert!(heard(&listener).is_empty(), "back in time: neither leave nor join");

        depart(&roster, 1, 6_000);
        roster.expire(5_999);
        assert!(heard(&listener).is_empty(), "not before its leave time");
        roster.expire(6_000);
        assert_eq!(heard(&listener), [entry("leave", "ep_1", 0, 2)]);
        assert!(roster.members(ROOM).members.is_empty());
    }

    #[test]
    fn members_are_listed_in_the_order_they_joined_with_their_connections() {
        let hub = Hub::new(16, Arc::new(Metrics::default()));
        let roster = Roster::new(hub);
        for endpoint_id in [5, 2, 9, 2] {
            arrive(&roster, endpoint_id);
        }
        let roll = roster.members(ROOM);
        let listed: Vec<(&str, u64)> = roll.members.iter().map(|m| (m.id.as_str(), m.connections)).collect();
        assert_eq!(listed, [("ep_5", 1), ("ep_2", 2), ("ep_9", 1)]);
        assert_eq!(roll.version, 3);
    }
}
