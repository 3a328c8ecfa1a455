//! An endpoint as this node's connections of it use it while they are
//! open: the state the app may change at any moment (permission, meta,
//! expiry, budget), shared by all of them through one [`LiveEndpoint`].
//!
//! The app's change is written to the store first, then announced to every
//! node as a [`RoomEvent::EndpointChanged`](crate::message::RoomEvent)
//! carrying the new [`EndpointState`]; each node's hub swaps it in and
//! tells the endpoint's connections. A connection that registers while a
//! change is in flight reads the endpoint again once registered (see
//! `Service::join`), and of two states the one with the higher `revision`
//! wins, so no connection keeps an older state than the store's.

use std::sync::Arc;

use comms_protocol::ws::{ChangedEndpoint, ServerFrame, WelcomeEndpoint};
use comms_protocol::{Permission, Sender};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::EndpointRecord;
use crate::time::format_ms;

/// What the app may change of an endpoint while it has connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointState {
    /// The store's revision of the endpoint this state is.
    pub revision: i64,
    /// What the endpoint may do.
    pub permission: Permission,
    /// The JSON object stamped on its messages.
    #[serde(with = "json_text")]
    pub meta: Box<RawValue>,
    /// Milliseconds since the epoch from which the code no longer works.
    pub expires_at: Option<i64>,
    /// Whether the endpoint has a message budget, which every send then
    /// spends in the store.
    pub budgeted: bool,
}

impl EndpointState {
    /// The state of a stored endpoint.
    ///
    /// # Errors
    ///
    /// Stored meta that is not JSON.
    pub fn of(record: &EndpointRecord) -> Result<Self, serde_json::Error> {
        Ok(Self {
            revision: record.revision,
            permission: record.permission,
            meta: RawValue::from_string(record.meta.clone())?,
            expires_at: record.expires_at,
            budgeted: record.max_messages.is_some(),
        })
    }
}

/// A JSON value carried as a string of its text: events are internally
/// tagged enums, through which serde cannot read raw JSON.
mod json_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::value::RawValue;

    pub(super) fn serialize<S: Serializer>(value: &RawValue, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.get())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Box<RawValue>, D::Error> {
        RawValue::from_string(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// One endpoint with connections on this node. Its connections and the
/// hub share it as `Arc<LiveEndpoint>`; the hub swaps the state in when
/// the app changes the endpoint.
#[derive(Debug)]
pub struct LiveEndpoint {
    /// Row id.
    pub id: i64,
    /// Row id of its room.
    pub room_id: i64,
    /// Public id, the sender id of its messages.
    pub public_id: String,
    /// Public id of the endpoint that minted it.
    pub parent: Option<String>,
    state: RwLock<Arc<EndpointState>>,
}

impl LiveEndpoint {
    /// The live form of a stored endpoint.
    ///
    /// # Errors
    ///
    /// Stored meta that is not JSON.
    pub fn new(record: &EndpointRecord) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: record.id,
            room_id: record.room_id,
            public_id: record.public_id.clone(),
            parent: record.parent_public_id.clone(),
            state: RwLock::new(Arc::new(EndpointState::of(record)?)),
        })
    }

    /// The current state.
    pub fn state(&self) -> Arc<EndpointState> {
        Arc::clone(&self.state.read())
    }

    /// Takes `state` if it is newer than the current one; whether it did.
    pub fn update(&self, state: EndpointState) -> bool {
        let mut current = self.state.write();
        if state.revision <= current.revision {
            return false;
        }
        *current = Arc::new(state);
        true
    }

    /// Who its messages and signals are from, as of `state`.
    pub fn sender(&self, state: &EndpointState) -> Sender {
        Sender { id: self.public_id.clone(), meta: state.meta.clone(), parent: self.parent.clone() }
    }

    /// The endpoint as its connections are shown it (welcome, `endpoint`
    /// frame), as of `state`.
    pub fn shown(&self, state: &EndpointState) -> WelcomeEndpoint {
        WelcomeEndpoint {
            id: self.public_id.clone(),
            permission: state.permission,
            meta: state.meta.clone(),
            expires_at: state.expires_at.map(format_ms),
        }
    }

    /// The `endpoint` frame telling its connections the current state.
    pub fn frame(&self) -> ServerFrame {
        let WelcomeEndpoint { id, permission, meta, expires_at } = self.shown(&self.state());
        ServerFrame::Endpoint { endpoint: ChangedEndpoint { id, permission, meta, expires_at } }
    }
}

#[cfg(test)]
impl LiveEndpoint {
    /// A `read_and_write` endpoint with empty meta, for hub tests.
    pub(crate) fn for_test(room_id: i64, id: i64) -> Self {
        let state = EndpointState {
            revision: 0,
            permission: Permission::ReadAndWrite,
            meta: RawValue::from_string("{}".into()).expect("JSON"),
            expires_at: None,
            budgeted: false,
        };
        Self { id, room_id, public_id: format!("ep_{id}"), parent: None, state: RwLock::new(Arc::new(state)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::RoomEvent;

    #[test]
    fn a_change_event_reads_back_with_its_meta_untouched() {
        let mut state = LiveEndpoint::for_test(3, 7).state().as_ref().clone();
        state.meta = RawValue::from_string(r#"{"name": "Ann"}"#.into()).unwrap();
        let event = RoomEvent::EndpointChanged { room_id: 3, endpoint_id: 7, state };
        let text = serde_json::to_string(&event).unwrap();
        let RoomEvent::EndpointChanged { state, .. } = serde_json::from_str(&text).unwrap() else {
            panic!("read back as another event: {text}")
        };
        assert_eq!(state.meta.get(), r#"{"name": "Ann"}"#);
    }
}
