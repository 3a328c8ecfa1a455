//! Endpoints as living capabilities: the app changes them while they are
//! in use, their holders mint narrower children, and moderators redact
//! messages.
//!
//! - **Live edits.** A change is written to the store, then announced to
//!   every node ([`RoomEvent::EndpointChanged`]); each hub gives the
//!   endpoint's open connections the new state (see
//!   [`crate::live_endpoint`]).
//! - **Delegation.** A child is never wider than its parent
//!   ([`within_parent`]): permission, expiry, budget and connection cap at
//!   most the parent's, and `can_delegate` only while the parent's chain is
//!   shorter than [`MAX_DELEGATING_CHAIN`]. A change that narrows a parent
//!   narrows its whole subtree the same way ([`narrowed_to`]); deleting a
//!   parent deletes its subtree, and a child's expiry never outlives its
//!   parent's, so expiring does too.
//! - **Moderation.** A redaction replaces the retained message's payload by
//!   `null` wherever history is kept (the broker's history and the store)
//!   and tells every live connection with a `redaction` frame.

use std::sync::Arc;

use crate::broker::RoomRef;
use crate::error::ServiceError;
use crate::input::{EndpointSpec, EndpointUpdate};
use crate::live_endpoint::{EndpointState, LiveEndpoint};
use crate::message::{Published, RoomEvent};
use crate::names::RoomName;
use crate::presence::MemberCard;
use crate::quotas::Quota;
use crate::secrets;
use crate::service::{room_ref, Service};
use crate::store::{AppStatus, EndpointAccess, EndpointLimits, EndpointRecord, EndpointSettings};
use crate::time::now_ms;

/// A child may itself delegate only while its parent's chain (the parent
/// and its ancestors) is shorter than this.
pub const MAX_DELEGATING_CHAIN: i64 = 3;

/// Which retained messages a redaction is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedactTarget {
    /// The message with this seq.
    Seq(u64),
    /// Every message of the endpoint with this public id.
    Sender(String),
}

impl RedactTarget {
    fn matches(&self, message: &Published) -> bool {
        match self {
            Self::Seq(seq) => message.seq() == *seq,
            Self::Sender(id) => message.message.sender.id == *id,
        }
    }
}

impl Service {
    /// Changes an endpoint of the app, and every endpoint minted from it
    /// that the change narrows; open connections of all of them take the
    /// change on every node.
    ///
    /// # Errors
    ///
    /// `NotFound` if the room or endpoint does not exist for this app.
    pub async fn update_endpoint(
        &self,
        app: &crate::store::AppRecord,
        room: &RoomName,
        code: &str,
        update: EndpointUpdate,
    ) -> Result<EndpointRecord, ServiceError> {
        let room = self.find_room(app, room).await?;
        let missing = || ServiceError::NotFound(format!("room {} has no endpoint with that code", room.name));
        if !secrets::is_code_shaped(code) {
            return Err(missing());
        }
        let endpoint = self.store.endpoint_in_room(room.id, code).await?.ok_or_else(missing)?;
        let mut settings = update.apply(endpoint.settings());
        if let Some(parent_id) = endpoint.parent_id {
            if let Some(parent) = self.store.endpoint_by_id(parent_id).await? {
                settings = narrowed_to(&parent.endpoint.settings(), settings);
            }
        }
        // A budget counts in the store from now on: what this node counted
        // off it must be there first.
        self.flush().await;
        let updated = self.write_settings(&endpoint, settings).await?.ok_or_else(missing)?;
        self.narrow_subtree(&updated).await?;
        Ok(updated)
    }

    /// Writes an endpoint's settings and tells its connections.
    async fn write_settings(
        &self,
        endpoint: &EndpointRecord,
        settings: EndpointSettings,
    ) -> Result<Option<EndpointRecord>, ServiceError> {
        let Some(updated) = self.store.update_endpoint(endpoint.id, &settings).await? else { return Ok(None) };
        let state = EndpointState::of(&updated).map_err(|err| ServiceError::Internal(err.into()))?;
        if updated.room_presence && updated.meta != endpoint.meta {
            let card = MemberCard { endpoint_id: updated.id, id: updated.public_id.clone(), meta: state.meta.clone() };
            self.broker.update_member(updated.room_id, &card).await?;
        }
        self.broker
            .announce(RoomEvent::EndpointChanged { room_id: updated.room_id, endpoint_id: updated.id, state })
            .await;
        Ok(Some(updated))
    }

    /// Narrows every endpoint minted from `root` (at any depth) to within
    /// its parent as it is now.
    async fn narrow_subtree(&self, root: &EndpointRecord) -> Result<(), ServiceError> {
        let mut parents = std::collections::HashMap::from([(root.id, root.settings())]);
        for child in self.store.descendants(root.id).await? {
            let Some(parent) = child.parent_id.and_then(|id| parents.get(&id)) else { continue };
            let narrowed = narrowed_to(parent, child.settings());
            let current = if narrowed == child.settings() {
                child.settings()
            } else {
                match self.write_settings(&child, narrowed).await? {
                    Some(updated) => updated.settings(),
                    None => continue,
                }
            };
            parents.insert(child.id, current);
        }
        Ok(())
    }

    /// The endpoint whose code is `code`, as a parent that may mint
    /// children, with its app.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown, expired or used-up code, or one whose app
    /// is not approved (the caller counts it as a failed credential);
    /// `Denied` when the endpoint may not delegate.
    pub async fn delegating_parent(&self, code: &str) -> Result<EndpointAccess, ServiceError> {
        let unknown = || ServiceError::NotFound("unknown endpoint code".into());
        if !secrets::is_code_shaped(code) {
            return Err(unknown());
        }
        let access = self.store.endpoint_by_code(code).await?.ok_or_else(unknown)?;
        let parent = &access.endpoint;
        if access.app_status != AppStatus::Approved
            || parent.expired(now_ms())
            || (parent.single_use && parent.used_at.is_some())
        {
            return Err(unknown());
        }
        if !parent.can_delegate {
            return Err(ServiceError::Denied("this endpoint may not mint children (can_delegate is false)".into()));
        }
        Ok(access)
    }

    /// Mints a child of `parent` (see [`Service::delegating_parent`]) in
    /// its room, without the app's key. Absent limits are the parent's.
    ///
    /// # Errors
    ///
    /// `Denied` when the child would be wider than its parent;
    /// `QuotaExceeded` when the room has its `endpoints_per_room`.
    pub async fn create_child(
        &self,
        parent: &EndpointAccess,
        spec: EndpointSpec,
    ) -> Result<EndpointRecord, ServiceError> {
        let EndpointAccess { endpoint, app_quotas, app_id, .. } = parent;
        let spec = within_parent(endpoint, spec)?;
        let room = RoomRef { id: endpoint.room_id, app_id: *app_id, name: endpoint.room_name.clone() };
        let at_most = app_quotas.limit(Quota::EndpointsPerRoom, &self.quotas);
        self.insert_endpoint(&room, spec, endpoint.key_id, Some(endpoint), at_most).await
    }

    /// Redacts retained messages of one of the app's rooms; how many it
    /// redacted (messages redacted already are not counted again).
    ///
    /// # Errors
    ///
    /// `NotFound` if the app has no such room, or for a seq that is not
    /// retained.
    pub async fn redact(
        &self,
        app: &crate::store::AppRecord,
        room: &RoomName,
        target: RedactTarget,
    ) -> Result<u64, ServiceError> {
        let room = self.find_room(app, room).await?;
        self.redact_in(&room_ref(&room), &target).await
    }

    /// Redacts the message `seq` of `room`, which a moderator's connection
    /// is in.
    ///
    /// # Errors
    ///
    /// `Denied` unless the endpoint has the `moderate` permission;
    /// `NotFound` for a seq that is not retained.
    pub async fn redact_as_endpoint(
        &self,
        room: &RoomRef,
        endpoint: &LiveEndpoint,
        seq: u64,
    ) -> Result<(), ServiceError> {
        if !endpoint.state().permission.can_moderate() {
            return Err(ServiceError::Denied("redacting needs the moderate permission".into()));
        }
        self.redact_in(room, &RedactTarget::Seq(seq)).await.map(|_| ())
    }

    async fn redact_in(&self, room: &RoomRef, target: &RedactTarget) -> Result<u64, ServiceError> {
        let history = self.broker.history(room, 0, usize::MAX).await?;
        let matching: Vec<&Arc<Published>> = history.messages.iter().filter(|m| target.matches(m)).collect();
        if let RedactTarget::Seq(seq) = target {
            if matching.is_empty() {
                return Err(ServiceError::NotFound(format!("room {} retains no message with seq {seq}", room.name)));
            }
        }
        let wanted: Vec<u64> = matching.iter().filter(|m| !m.is_redacted()).map(|m| m.seq()).collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let redacted = self.broker.redact(room, &wanted, now_ms()).await?;
        let messages: Vec<(u64, String)> =
            matching.iter().filter(|m| redacted.contains(&m.seq())).map(|m| (m.seq(), m.message.id.clone())).collect();
        if !messages.is_empty() {
            self.broker.announce(RoomEvent::Redacted { room_id: room.id, room: room.name.clone(), messages }).await;
        }
        Ok(redacted.len() as u64)
    }
}

/// `spec` for a child of `parent`: its absent limits filled in with the
/// parent's.
///
/// # Errors
///
/// `Denied`, naming the first way it would be wider than the parent.
fn within_parent(parent: &EndpointRecord, mut spec: EndpointSpec) -> Result<EndpointSpec, ServiceError> {
    let wider =
        |what: &str| Err(ServiceError::Denied(format!("a child endpoint cannot have a {what} than its parent")));
    if spec.permission > parent.permission {
        return wider("wider permission");
    }
    let own = parent.limits();
    let limits = &mut spec.limits;
    match (own.expires_at, limits.expires_at) {
        (Some(at), Some(asked)) if asked > at => return wider("later expires_at"),
        (Some(at), None) => limits.expires_at = Some(at),
        _ => {}
    }
    match (own.max_messages, limits.max_messages) {
        (Some(most), Some(asked)) if asked > most => return wider("larger max_messages"),
        (Some(most), None) => limits.max_messages = Some(most),
        _ => {}
    }
    match (own.max_connections, limits.max_connections) {
        (Some(most), Some(asked)) if asked > most => return wider("larger max_connections"),
        (Some(most), None) => limits.max_connections = Some(most),
        _ => {}
    }
    if spec.can_delegate && parent.depth >= MAX_DELEGATING_CHAIN {
        return Err(ServiceError::Denied(format!(
            "can_delegate is only for children of endpoints whose chain is shorter than {MAX_DELEGATING_CHAIN}"
        )));
    }
    Ok(spec)
}

/// `child` narrowed to within `parent`: no wider permission, no later
/// expiry, no larger budget or connection cap.
fn narrowed_to(parent: &EndpointSettings, child: EndpointSettings) -> EndpointSettings {
    let (own, asked) = (parent.limits, child.limits);
    EndpointSettings {
        permission: child.permission.min(parent.permission),
        meta: child.meta,
        limits: EndpointLimits {
            expires_at: tighter(own.expires_at, asked.expires_at),
            max_messages: tighter(own.max_messages, asked.max_messages),
            max_connections: tighter(own.max_connections, asked.max_connections),
            single_use: asked.single_use,
        },
    }
}

/// The tighter of two limits, `None` being no limit.
fn tighter<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use comms_protocol::Permission;

    use super::*;
    use crate::input::Meta;

    fn settings(permission: Permission, expires_at: Option<i64>, max_messages: Option<u64>) -> EndpointSettings {
        let limits = EndpointLimits { expires_at, max_messages, ..EndpointLimits::default() };
        EndpointSettings { permission, meta: "{}".into(), limits }
    }

    #[test]
    fn a_parent_narrows_its_child_and_never_widens_it() {
        let parent = settings(Permission::Read, Some(100), Some(5));
        let child = settings(Permission::ReadAndWrite, None, Some(9));
        assert_eq!(narrowed_to(&parent, child), settings(Permission::Read, Some(100), Some(5)));
        let wide_parent = settings(Permission::Moderate, None, None);
        let narrow_child = settings(Permission::Read, Some(50), Some(1));
        assert_eq!(narrowed_to(&wide_parent, narrow_child.clone()), narrow_child);
    }

    #[test]
    fn permissions_order_from_read_to_moderate() {
        assert!(Permission::Read < Permission::ReadAndWrite && Permission::ReadAndWrite < Permission::Moderate);
        assert!(Permission::Moderate.can_write() && !Permission::Read.can_write());
    }

    #[test]
    fn a_spec_wider_than_its_parent_is_refused_and_a_silent_one_inherits() {
        let spec = |permission| EndpointSpec::plain(permission, Meta::empty());
        let parent = parent_record();
        assert!(within_parent(&parent, spec(Permission::Moderate)).is_err());
        let child = within_parent(&parent, spec(Permission::Read)).unwrap();
        assert_eq!((child.limits.expires_at, child.limits.max_messages), (Some(1_000), Some(3)));
        let mut later = spec(Permission::Read);
        later.limits.expires_at = Some(2_000);
        assert!(within_parent(&parent, later).is_err());
        let mut delegating = spec(Permission::Read);
        delegating.can_delegate = true;
        assert!(within_parent(&parent, delegating.clone()).is_ok());
        let deep = EndpointRecord { depth: MAX_DELEGATING_CHAIN, ..parent_record() };
        assert!(within_parent(&deep, delegating).is_err());
    }

    fn parent_record() -> EndpointRecord {
        EndpointRecord {
            id: 1,
            public_id: "ep_1".into(),
            code: "c".into(),
            room_id: 1,
            room_name: "lobby".into(),
            room_presence: false,
            permission: Permission::ReadAndWrite,
            meta: "{}".into(),
            created_at: 0,
            max_connections: None,
            single_use: false,
            used_at: None,
            expires_at: Some(1_000),
            max_messages: Some(3),
            messages_sent: 0,
            can_delegate: true,
            parent_id: None,
            parent_public_id: None,
            depth: 1,
            revision: 0,
            key_id: None,
        }
    }
}
