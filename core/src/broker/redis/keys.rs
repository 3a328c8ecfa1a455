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

    /// The channel the room's messages are published on.
    pub(super) fn channel(&self, room_id: i64) -> String {
        format!("{}:room:{room_id}", self.prefix)
    }

    /// The room a channel name belongs to, if it is a room channel.
    pub(super) fn room_of(&self, channel: &str) -> Option<i64> {
        channel.strip_prefix(&self.prefix)?.strip_prefix(":room:")?.parse().ok()
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
