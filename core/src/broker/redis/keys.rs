//! The names of every Redis key and channel comms uses, in one place.
//!
//! All start with the configured prefix, so several deployments (or test
//! runs) can share one Redis. Rooms are named by their database row id,
//! which is unique across nodes because they share one database.

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix`.
    pub(super) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// The prefix itself (scripts build per-node key names from it).
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The room's last handed-out seq (a string holding an integer).
    pub(super) fn seq(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:seq", self.prefix)
    }

    /// The room's retained messages: a stream whose entry ids are `SEQ-0`.
    pub(super) fn log(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:log", self.prefix)
    }

    /// The room's redacted messages: a hash from seq to the redaction's
    /// time (ms), read beside the stream, whose entries cannot change.
    pub(super) fn redacted(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:redacted", self.prefix)
    }

    /// The start of the keys of the room's nonces: each holds the channel
    /// payload of the message first published under it, and expires after
    /// the nonce window.
    pub(super) fn nonces(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:nonce:", self.prefix)
    }

    /// The channel the room's messages are published on.
    pub(super) fn channel(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}", self.prefix)
    }

    /// The room a channel name belongs to, if it is a room channel.
    pub(super) fn room_of(&self, channel: &str) -> Option<i64> {
        channel.strip_prefix(&self.prefix)?.strip_prefix(":room:")?.parse().ok()
    }

    /// A presence room's endpoints: a hash from endpoint row id to its live
    /// connections over every node (0 while it waits to leave).
    pub(super) fn presence(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:presence", self.prefix)
    }

    /// A presence room's member cards: a hash from endpoint row id to
    /// `"id":…,"meta":…`.
    pub(super) fn members(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:members", self.prefix)
    }

    /// A presence room's members in the order they joined: a sorted set of
    /// endpoint row ids scored by the version of their join.
    pub(super) fn joined(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:joined", self.prefix)
    }

    /// A presence room's change counter (an integer).
    pub(super) fn presence_version(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:pversion", self.prefix)
    }

    /// A presence room's name as a JSON string, for the frames scripts
    /// build.
    pub(super) fn room_name(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:name", self.prefix)
    }

    /// Endpoints waiting to leave: a sorted set of `ROOM:ENDPOINT` scored
    /// by leave time (ms).
    pub(super) fn leaving(&self) -> String {
        format!("{}:leaving", self.prefix)
    }

    /// The nodes that hold presence connections (a set of node ids).
    pub(super) fn presence_nodes(&self) -> String {
        format!("{}:presence-nodes", self.prefix)
    }

    /// One node's presence connections: a hash from `ROOM:ENDPOINT` to its
    /// connections on that node, kept until the node is counted out.
    pub(super) fn node_presence(&self, node: &str) -> String {
        format!("{}:node:{node}:presence", self.prefix)
    }

    /// The nodes with a live connection in a room (a set of node ids): the
    /// room is occupied while it is not empty.
    pub(super) fn room_nodes(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}:nodes", self.prefix)
    }

    /// The rooms one node has a live connection in (a set of room ids), so
    /// a node counted out leaves its rooms too.
    pub(super) fn node_rooms(&self, node: &str) -> String {
        format!("{}:node:{node}:rooms", self.prefix)
    }

    /// One node's liveness: a key that expires unless the node refreshes it.
    pub(super) fn node_alive(&self, node: &str) -> String {
        format!("{}:node:{node}:alive", self.prefix)
    }

    /// Set when other nodes counted a node out (its members were sent
    /// `leave`), so it announces them again if it comes back.
    pub(super) fn node_reaped(&self, node: &str) -> String {
        format!("{}:node:{node}:reaped", self.prefix)
    }

    /// The channel every node hears [`RoomEvent`](crate::message::RoomEvent)s on.
    pub(super) fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }

    /// The set of node ids that have published online counts.
    pub(super) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// One node's online counts: a hash from room id (and socket count
    /// name, see `quotas::SocketOwner`) to connections, which expires unless
    /// the node keeps refreshing it.
    pub(super) fn node_online(&self, node: &str) -> String {
        format!("{}:node:{node}:online", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_channels_read_back_their_room() {
        let keys = Keys::new("comms");
        assert_eq!(keys.room_of(&keys.channel(42)), Some(42));
        assert_eq!(keys.room_of(&keys.control()), None);
        assert_eq!(Keys::new("other").room_of(&keys.channel(42)), None);
    }
}
