//! The WebSocket side of the service: finding the endpoint a client presents
//! the code of, joining its room (welcome, resume backlog, live queue, and
//! in a presence room its membership), and publishing messages and signals
//! through it with the permission check and the stamped meta.

use std::net::IpAddr;
use std::sync::Arc;

use comms_protocol::ws::{Nonce, ServerFrame};
use serde_json::value::RawValue;

use crate::broker::{BrokerError, Durability, History, RoomRef};
use crate::error::ServiceError;
use crate::hub::{CloseReason, Membership};
use crate::input::check_readable;
use crate::live_endpoint::{EndpointState, LiveEndpoint};
use crate::message::{Draft, NonceKey, Order, Outgoing, Published, Receipt};
use crate::presence::{MemberCard, PresenceGuard, Roll, Signal};
use crate::quotas::{Quota, QuotaExceeded, SocketLimits, SocketOwner, SocketPermit};
use crate::secrets;
use crate::service::Service;
use crate::store::{AppStatus, EndpointRecord};
use crate::time::now_ms;
use crate::usage::Refusal;

/// An endpoint a WebSocket may join, found by its code.
#[derive(Debug, Clone)]
pub struct JoinTicket {
    /// The endpoint's room.
    pub room: RoomRef,
    /// The endpoint itself: its public id, permission and meta.
    pub endpoint: EndpointRecord,
}

impl JoinTicket {
    /// The room, once joined: all a connection keeps of its ticket.
    pub fn into_room(self) -> RoomRef {
        self.room
    }
}

/// What a new connection through a [`JoinTicket`] counts against: kept
/// apart from the ticket, which lives as long as the connection, because
/// it is needed only at the handshake.
#[derive(Debug, Clone, Copy)]
pub struct SocketClaim {
    owner: SocketOwner,
    limits: SocketLimits,
    /// The endpoint's own `max_connections`, which tightens
    /// `limits.per_endpoint`.
    endpoint_cap: Option<u64>,
}

/// A joined connection: its membership in the room, the welcome frame, and
/// the retained messages it asked for with `after_seq`.
pub struct Subscription {
    /// The live queue and the close signal.
    pub membership: Membership,
    /// In a presence room, what counts the connection as a member until it
    /// is dropped.
    pub presence: Option<PresenceGuard>,
    /// Presence changes in the queue up to this version are already in the
    /// welcome's `members`, and must be skipped.
    pub covered_presence: u64,
    /// The first frame to send.
    pub welcome: ServerFrame,
    /// Retained messages after `after_seq`, oldest first, to send next.
    pub backlog: Vec<Arc<Published>>,
    /// Messages in the membership's queue up to this seq are already covered
    /// by the welcome's `last_seq` or the backlog, and must be skipped.
    pub covered_seq: u64,
}

/// Why a connection could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The endpoint or its room was deleted after the code was checked.
    #[error("cannot join: {}", .0.text())]
    Refused(CloseReason),
    /// A socket quota was full when the connection opened.
    #[error(transparent)]
    OverQuota(QuotaExceeded),
    /// The endpoint had its `max_connections` live connections already.
    #[error("the endpoint has its max_connections ({0}) already")]
    EndpointFull(u64),
    /// The history could not be read.
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

impl Service {
    /// Finds the endpoint a WebSocket from `client_ip` presents the code
    /// of, from a page at `origin` (the handshake's `Origin` header, if
    /// any), and what the connection will count against.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown or deleted code, or an endpoint whose app is
    /// not approved; `OriginNotAllowed` when the app lists its origins and
    /// `origin` is not one of them.
    pub async fn ticket(
        &self,
        code: &str,
        origin: Option<&str>,
        client_ip: IpAddr,
    ) -> Result<(JoinTicket, SocketClaim), ServiceError> {
        let unknown = || ServiceError::NotFound("unknown endpoint code".into());
        if !secrets::is_code_shaped(code) {
            return Err(unknown());
        }
        let access = self.store.endpoint_by_code(code).await?.ok_or_else(unknown)?;
        // Codes that exist but no longer work count against their app.
        let refused = |err: ServiceError| {
            self.usage.refused(access.app_id, Refusal::Credentials);
            Err(err)
        };
        if access.app_status != AppStatus::Approved {
            return refused(unknown());
        }
        let own = access.endpoint.limits();
        if own.single_use && access.endpoint.used_at.is_some() {
            return refused(ServiceError::NotFound("this single-use code was used already".into()));
        }
        if access.endpoint.expired(now_ms()) {
            return refused(ServiceError::NotFound("this code has expired".into()));
        }
        if !access.allowed_origins.permits(origin) {
            return Err(ServiceError::OriginNotAllowed(origin.unwrap_or_default().to_owned()));
        }
        let mut limits = SocketLimits::of(&access.app_quotas, &self.quotas);
        limits.per_endpoint = match (limits.per_endpoint, own.max_connections) {
            (Some(quota), Some(cap)) => Some(quota.min(cap)),
            (quota, cap) => quota.or(cap),
        };
        let claim = SocketClaim {
            owner: SocketOwner { app_id: access.app_id, endpoint_id: access.endpoint.id, ip: client_ip },
            limits,
            endpoint_cap: own.max_connections,
        };
        let room =
            RoomRef { id: access.endpoint.room_id, app_id: access.app_id, name: access.endpoint.room_name.clone() };
        Ok((JoinTicket { room, endpoint: access.endpoint }, claim))
    }

    /// Counts a new connection against the socket quotas, over every
    /// node, for as long as the permit lives.
    ///
    /// # Errors
    ///
    /// [`JoinError::OverQuota`] naming the first full quota;
    /// [`JoinError::Failed`] when the other nodes' counts cannot be read.
    pub async fn admit_socket(&self, claim: SocketClaim) -> Result<SocketPermit, JoinError> {
        let SocketClaim { owner, limits, endpoint_cap } = claim;
        let elsewhere = if limits.unlimited() {
            [0; 3]
        } else {
            self.broker.sockets_elsewhere(&owner).await.map_err(ServiceError::from)?
        };
        self.sockets.admit(&owner, limits, elsewhere).map_err(|full| match endpoint_cap {
            Some(cap) if full.quota == Quota::SocketsPerEndpoint && full.limit == cap => JoinError::EndpointFull(cap),
            _ => JoinError::OverQuota(full),
        })
    }

    /// Takes a single-use endpoint's one connection, before its upgrade;
    /// endpoints that are not single-use always pass.
    ///
    /// # Errors
    ///
    /// `NotFound` when another connection claimed it first.
    pub async fn claim_single_use(&self, ticket: &JoinTicket) -> Result<(), ServiceError> {
        if !ticket.endpoint.single_use || self.store.claim_single_use(ticket.endpoint.id).await? {
            return Ok(());
        }
        Err(ServiceError::NotFound("this single-use code was used already".into()))
    }

    /// Joins the room: registers the connection for live messages first
    /// (in the hub, and with the broker when messages come from other
    /// nodes), then reads history, so nothing published in between is missed; the
    /// overlap is skipped by seq (see [`Subscription::covered_seq`]).
    ///
    /// # Errors
    ///
    /// [`JoinError::Refused`] when the endpoint or room was deleted, or the
    /// app stopped being approved, since the ticket was issued;
    /// [`JoinError::Failed`] when the store or history cannot be read.
    pub async fn join(&self, ticket: &JoinTicket, after_seq: Option<u64>) -> Result<Subscription, JoinError> {
        let endpoint = LiveEndpoint::new(&ticket.endpoint).map_err(|err| ServiceError::Internal(err.into()))?;
        let meter = self.usage.meter(ticket.room.app_id);
        let membership = self.hub.join(endpoint, Arc::clone(&meter)).map_err(JoinError::Refused)?;
        self.broker.listen(ticket.room.id).await.map_err(ServiceError::from)?;
        // Read again now that the hub lists the connection: a suspension, a
        // revocation or a change committed after the ticket was issued is
        // either seen here, or reaches the connection by the next poll of
        // app changes (see `crate::changes`) or the change's announcement.
        let Some(access) = self.store.endpoint_by_id(ticket.endpoint.id).await.map_err(ServiceError::from)? else {
            return Err(JoinError::Refused(CloseReason::EndpointDeleted));
        };
        if access.app_status != AppStatus::Approved {
            return Err(JoinError::Refused(CloseReason::AppStopped));
        }
        let fresh = EndpointState::of(&access.endpoint).map_err(|err| ServiceError::Internal(err.into()))?;
        if membership.endpoint.update(fresh) {
            self.hub.schedule_expiry(&membership.endpoint);
        }
        let state = membership.endpoint.state();
        let (presence, roll) = if ticket.endpoint.room_presence {
            let card = MemberCard {
                endpoint_id: ticket.endpoint.id,
                id: ticket.endpoint.public_id.clone(),
                meta: state.meta.clone(),
            };
            let guard = self.presence.arrive(&ticket.room, card).await.map_err(ServiceError::from)?;
            (Some(guard), Some(self.broker.members(ticket.room.id).await.map_err(ServiceError::from)?))
        } else {
            (None, None)
        };
        let covered_presence = roll.as_ref().map_or(0, |roll| roll.version);
        let history = match after_seq {
            Some(after) => self.broker.history(&ticket.room, after, usize::MAX).await,
            None => self.broker.history(&ticket.room, u64::MAX, 0).await,
        };
        let History { first_seq, last_seq, messages } = history.map_err(ServiceError::from)?;
        for message in &messages {
            meter.delivered(1, message.outgoing.frame.len());
        }
        let shown = membership.endpoint.shown(&state);
        Ok(Subscription {
            membership,
            presence,
            covered_presence,
            welcome: ServerFrame::Welcome {
                room: ticket.room.name.clone(),
                endpoint: shown,
                last_seq,
                first_seq,
                members: roll.map(|Roll { members, .. }| members),
            },
            // History is read atomically (under the room's lock, or in one
            // Redis script): everything up to last_seq is either in the
            // backlog or older than after_seq.
            covered_seq: last_seq,
            backlog: messages,
        })
    }

    /// Publishes a message a connection sent through its endpoint, with
    /// the endpoint's current meta as sender meta, spending its budget if
    /// it has one. A nonce the endpoint published under within the window
    /// publishes nothing new, spends nothing, and answers the first
    /// publish's receipt. With a nonce it returns once the message is
    /// stored too, as its ack promises (see [`Broker::stored`]); delivery
    /// does not wait for that.
    ///
    /// # Errors
    ///
    /// `ReadOnly` for a `read` endpoint, `TooLarge` over the size limit,
    /// `Invalid` nested over the depth limit, `BudgetExhausted` once its
    /// `max_messages` are sent, `NotFound` if the room was deleted
    /// meanwhile.
    pub async fn publish_as_endpoint(
        &self,
        room: &RoomRef,
        endpoint: &LiveEndpoint,
        outbound: Outbound,
    ) -> Result<Receipt, ServiceError> {
        let state = endpoint.state();
        if !state.permission.can_write() {
            return Err(ServiceError::ReadOnly);
        }
        self.check_payload(&outbound.payload)?;
        if state.budgeted && !self.store.spend_budget(endpoint.id).await? {
            // A resend of the message that spent the last of the budget is
            // answered with its ack, not refused.
            if let Some(nonce) = &outbound.nonce {
                let key = NonceKey::of_endpoint(endpoint.id, nonce);
                if let Some(first) = self.broker.published_under(room, &key).await? {
                    return Ok(first);
                }
            }
            let budget = self.store.endpoint_by_id(endpoint.id).await?.and_then(|found| found.endpoint.max_messages);
            return Err(ServiceError::BudgetExhausted(budget.map_or(0, |n| u64::try_from(n).unwrap_or(0))));
        }
        let bytes = outbound.payload.get().len();
        let durability = if outbound.nonce.is_some() { Durability::Stored } else { Durability::Delivered };
        let draft = outbound.draft(endpoint, &state);
        let published = match self.broker.publish(room, draft, durability).await {
            Ok(published) => {
                self.usage.meter(room.app_id).published(bytes);
                if !state.budgeted {
                    self.sent.add(endpoint.id);
                }
                return Ok(Receipt::of(&published));
            }
            Err(BrokerError::Repeated(first)) => Ok(first),
            Err(err) => Err(err.into()),
        };
        if state.budgeted {
            self.store.refund_budget(endpoint.id).await?;
        }
        published
    }

    /// Publishes messages a connection sent together, in order, as
    /// [`Service::publish_as_endpoint`] one after the other would: one
    /// result per message. Without a budget they go to the broker at once
    /// (one Redis round trip for all); with one, one at a time.
    pub async fn publish_all_as_endpoint(
        &self,
        room: &RoomRef,
        endpoint: &LiveEndpoint,
        messages: Vec<Outbound>,
    ) -> Vec<Result<Receipt, ServiceError>> {
        let state = endpoint.state();
        if state.budgeted {
            let mut results = Vec::with_capacity(messages.len());
            for outbound in messages {
                results.push(self.publish_as_endpoint(room, endpoint, outbound).await);
            }
            return results;
        }
        let acknowledged = messages.iter().any(|outbound| outbound.nonce.is_some());
        let mut results: Vec<Result<Receipt, ServiceError>> = Vec::with_capacity(messages.len());
        let mut drafts = Vec::with_capacity(messages.len());
        for outbound in messages {
            let checked = if state.permission.can_write() {
                self.check_payload(&outbound.payload)
            } else {
                Err(ServiceError::ReadOnly)
            };
            results.push(checked.map(|()| Receipt::default()));
            if results.last().is_some_and(Result::is_ok) {
                drafts.push(outbound.draft(endpoint, &state));
            }
        }
        let sizes: Vec<usize> = drafts.iter().map(|draft| draft.payload.get().len()).collect();
        let mut published = self.broker.publish_all(room, drafts).await.into_iter().zip(sizes);
        let meter = self.usage.meter(room.app_id);
        for result in results.iter_mut().filter(|result| result.is_ok()) {
            *result = match published.next() {
                Some((Ok(published), bytes)) => {
                    self.sent.add(endpoint.id);
                    meter.published(bytes);
                    Ok(Receipt::of(&published))
                }
                Some((Err(BrokerError::Repeated(first)), _)) => Ok(first),
                Some((Err(err), _)) => Err(err.into()),
                None => Err(ServiceError::Internal(anyhow::anyhow!("the broker skipped a message"))),
            };
        }
        // One wait for the whole batch: acks promise their message is
        // stored. Should it time out, every send fails and the client's
        // resend with the same nonce is answered with its receipt.
        if acknowledged {
            if let Err(err) = self.broker.stored().await {
                for result in results.iter_mut().filter(|result| result.is_ok()) {
                    *result = Err(err.again().into());
                }
            }
        }
        results
    }
}

/// A message a connection sends: its payload and, when the client wants it
/// acknowledged, its nonce.
#[derive(Debug)]
pub struct Outbound {
    /// The payload exactly as sent.
    pub payload: Box<RawValue>,
    /// The client's name for the message.
    pub nonce: Option<Nonce>,
}

impl Outbound {
    /// The draft the endpoint publishes, as of `state`.
    fn draft(self, endpoint: &LiveEndpoint, state: &EndpointState) -> Draft {
        let nonce = self.nonce.map(|nonce| NonceKey::of_endpoint(endpoint.id, &nonce));
        Draft { sender: endpoint.sender(state), payload: self.payload, nonce }
    }
}

impl Service {
    /// Sends a signal from connection `from_member` of an endpoint to the
    /// room's other connections, on every node, with the endpoint's current
    /// meta as sender meta. Nothing is stored.
    ///
    /// # Errors
    ///
    /// `ReadOnly` for a `read` endpoint, `TooLarge` over
    /// `limits.max_signal_bytes`, `Invalid` nested over the depth limit.
    pub async fn signal(
        &self,
        room: &RoomRef,
        endpoint: &LiveEndpoint,
        from_member: u64,
        payload: Box<RawValue>,
    ) -> Result<(), ServiceError> {
        let state = endpoint.state();
        if !state.permission.can_write() {
            return Err(ServiceError::ReadOnly);
        }
        let size = payload.get().len();
        if size > self.limits.max_signal_bytes {
            return Err(ServiceError::TooLarge(format!(
                "signal is {size} bytes, over the limit of {} bytes",
                self.limits.max_signal_bytes
            )));
        }
        check_readable("signal", &payload, &self.limits)?;
        let frame = ServerFrame::Signal { room: room.name.clone(), sender: endpoint.sender(&state), signal: payload };
        let outgoing = Arc::new(Outgoing::new(&frame, Order::Ephemeral));
        self.broker.signal(Signal { room_id: room.id, from_member: Some(from_member), outgoing }).await?;
        self.usage.meter(room.app_id).signalled();
        Ok(())
    }
}
