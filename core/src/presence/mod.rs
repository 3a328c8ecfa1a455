//! Presence rooms' members, and the ephemeral signals of every room.
//!
//! **Members.** A connection of a presence room *arrives* when it joins and
//! *departs* when it ends. [`Tracker`] hands these transitions, in the order
//! they happen, to one task per node, which passes them to the broker
//! ([`Broker::presence`]). The broker keeps each room's roster over every
//! node (each endpoint's live connections and meta) and sends `join` when an
//! endpoint's connections go from none to one. When they drop to none, the
//! endpoint stays a member (with `connections: 0`) until its leave time, the
//! grace period later; the same task asks the broker every [`SWEEP_EVERY`]
//! to send the `leave`s that are due ([`Broker::expire_leaves`]), and a
//! connection of it arriving before then sends nothing at all, so a
//! reconnecting tab does not flap.
//!
//! **Exact welcomes.** Every join or leave of a room has a per-room
//! `version`. A joining connection is registered in the hub (so it receives
//! every change from then on) before it reads the members, which come with
//! the version they reflect ([`Roll`]); it then skips queued changes up to
//! that version, as it skips messages up to the welcome's `last_seq`. So the
//! welcome's list and the frames after it agree exactly, and a connection
//! never hears its own endpoint's `join`.
//!
//! **Signals** ([`Signal`]) are frames serialized once and handed to the
//! room's other connections, on every node, without a seq or storage; a
//! busy connection may miss them (see [`Hub::deliver_signal`]).
//!
//! # Layout
//!
//! - this module: the transitions, the tracker task and its guard, the
//!   frames' shared forms.
//! - [`roster`]: one node's rosters, for the in-process broker.
//!
//! [`Broker::presence`]: crate::broker::Broker::presence
//! [`Broker::expire_leaves`]: crate::broker::Broker::expire_leaves
//! [`Hub::deliver_signal`]: crate::hub::Hub::deliver_signal

pub mod roster;

use std::sync::Arc;
use std::time::Duration;

use comms_protocol::ws::ServerFrame;
use comms_protocol::Member;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::broker::{Broker, BrokerError, RoomRef};
use crate::message::{Order, Outgoing};
use crate::time::now_ms;

/// How often due leaves are sent; a leave goes out at most this long after
/// its grace period ends.
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How long a joining connection waits for its arrival to be recorded.
const ARRIVAL_WAIT: Duration = Duration::from_secs(5);
/// Longest pause between retries of a transition the broker refused.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The `join` of `member` into `room`, as the room's change number
/// `version`, serialized once for every recipient.
pub fn join(room: &str, member: Member, version: u64) -> Arc<Outgoing> {
    let frame = ServerFrame::Join { room: room.to_owned(), member };
    Arc::new(Outgoing::new(&frame, Order::Version(version)))
}

/// The `leave` of `member` from `room`, as the room's change number
/// `version`, serialized once for every recipient.
pub fn leave(room: &str, member: Member, version: u64) -> Arc<Outgoing> {
    let frame = ServerFrame::Leave { room: room.to_owned(), member };
    Arc::new(Outgoing::new(&frame, Order::Version(version)))
}

/// A signal on its way to the connections of a room.
#[derive(Debug)]
pub struct Signal {
    /// Row id of the room.
    pub room_id: i64,
    /// The sending connection's member id on this node, which does not get
    /// it back; `None` when it came from another node.
    pub from_member: Option<u64>,
    /// `{"type": "signal", …}`, [`Order::Ephemeral`].
    pub outgoing: Arc<Outgoing>,
}

/// Who a member is, as its frames show it.
#[derive(Debug, Clone)]
pub struct MemberCard {
    /// Row id of the endpoint.
    pub endpoint_id: i64,
    /// The endpoint's public id.
    pub id: String,
    /// The endpoint's meta.
    pub meta: Box<RawValue>,
}

impl MemberCard {
    /// The member as frames and the API show it, with `connections`.
    pub fn member(&self, connections: u64) -> Member {
        Member { id: self.id.clone(), meta: self.meta.clone(), connections }
    }
}

/// A presence room's members, with the room's change counter they reflect.
#[derive(Debug, Clone, Default)]
pub struct Roll {
    /// Changes up to this one are reflected in `members`.
    pub version: u64,
    /// Members in the order they joined.
    pub members: Vec<Member>,
}

/// A member joining or leaving a presence room, as the broker recorded it
/// once over every node: what the room's webhooks hear of.
#[derive(Debug, Clone)]
pub struct MemberChange {
    /// Row id of the room.
    pub room_id: i64,
    /// The room's name.
    pub room: String,
    /// The member, with its connections after the change.
    pub member: Member,
    /// Whether it joined (else it left).
    pub joined: bool,
}

/// What a sweep of due leaves did, over every node.
#[derive(Debug, Default)]
pub struct Swept {
    /// The leaves it sent.
    pub left: Vec<MemberChange>,
    /// Rooms whose last connections were on nodes it counted out (killed,
    /// or cut off from Redis): vacated now.
    pub vacated: Vec<i64>,
}

/// What the tracker hears that webhooks report.
#[derive(Debug)]
pub enum Observed {
    /// A member joined or left.
    Member(MemberChange),
    /// A room was vacated by counting out the node that held it.
    Vacated(i64),
}

/// A connection arriving in or departing from a presence room.
#[derive(Debug)]
pub enum Transition {
    /// A connection of `card`'s endpoint joined `room`.
    Arrived {
        /// The room.
        room: RoomRef,
        /// The connection's endpoint.
        card: MemberCard,
    },
    /// A connection of endpoint `endpoint_id` left room `room_id`; if it was
    /// the endpoint's last, the endpoint leaves at `leave_at_ms` unless one
    /// of its connections arrives first.
    Departed {
        /// Row id of the room.
        room_id: i64,
        /// Row id of the endpoint.
        endpoint_id: i64,
        /// Milliseconds since the epoch.
        leave_at_ms: i64,
    },
}

/// A transition and, for an arrival, who waits for it to be recorded.
type Queued = (Transition, Option<oneshot::Sender<()>>);

/// Hands this node's presence transitions to the broker, in order. Cheap to
/// clone; the task ends when the last clone and guard are gone.
#[derive(Clone)]
pub struct Tracker {
    transitions: mpsc::UnboundedSender<Queued>,
    grace: Duration,
}

/// Keeps a connection counted as a member of its presence room; dropping it
/// departs.
pub struct PresenceGuard {
    transitions: mpsc::UnboundedSender<Queued>,
    room_id: i64,
    endpoint_id: i64,
    grace: Duration,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let departed = Transition::Departed {
            room_id: self.room_id,
            endpoint_id: self.endpoint_id,
            leave_at_ms: now_ms() + self.grace.as_millis() as i64,
        };
        // Fails only once the task is gone, at the end of the process.
        let _ = self.transitions.send((departed, None));
    }
}

impl Tracker {
    /// Starts the task that passes transitions to `broker` and sends due
    /// leaves, handing what webhooks report (joins, leaves, rooms vacated
    /// by counting out a node) to `changes`; an
    /// endpoint leaves `grace` after its last connection.
    pub fn spawn(broker: Arc<dyn Broker>, grace: Duration, changes: mpsc::UnboundedSender<Observed>) -> Self {
        let (transitions, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(broker, queue, changes));
        Self { transitions, grace }
    }

    /// Records a connection of `card`'s endpoint arriving in `room`, over
    /// every node, and returns once it is recorded (so the members read
    /// next include it). The guard departs when dropped.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] when the arrival could not be recorded
    /// in time; it is recorded later, and departs with the dropped guard.
    pub async fn arrive(&self, room: &RoomRef, card: MemberCard) -> Result<PresenceGuard, BrokerError> {
        let guard = PresenceGuard {
            transitions: self.transitions.clone(),
            room_id: room.id,
            endpoint_id: card.endpoint_id,
            grace: self.grace,
        };
        let (recorded, wait) = oneshot::channel();
        let unavailable = || BrokerError::Unavailable("presence could not be recorded".into());
        self.transitions
            .send((Transition::Arrived { room: room.clone(), card }, Some(recorded)))
            .map_err(|_| unavailable())?;
        tokio::time::timeout(ARRIVAL_WAIT, wait).await.map_err(|_| unavailable())?.map_err(|_| unavailable())?;
        Ok(guard)
    }
}

/// The tracker task: applies transitions one at a time, in order, retrying
/// one the broker refuses (Redis down) until it goes through, since a lost
/// transition would leave a member behind forever; between them, sends the
/// leaves that are due. Joins and leaves go on to `changes`.
async fn run(
    broker: Arc<dyn Broker>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    changes: mpsc::UnboundedSender<Observed>,
) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            queued = queue.recv() => {
                let Some((transition, recorded)) = queued else { return };
                let mut pause = Duration::from_millis(100);
                let joined = loop {
                    match broker.presence(&transition).await {
                        Ok(joined) => break joined,
                        Err(err) => {
                            tracing::warn!(error = %err, retry_in = ?pause, "could not record a presence change; retrying");
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(MAX_RETRY_PAUSE);
                        }
                    }
                };
                if let Some(joined) = joined {
                    let _ = changes.send(Observed::Member(joined));
                }
                if let Some(recorded) = recorded {
                    let _ = recorded.send(());
                }
            }
            _ = sweep.tick() => {
                match broker.expire_leaves(now_ms()).await {
                    Ok(Swept { left, vacated }) => {
                        let observed = left.into_iter().map(Observed::Member).chain(vacated.into_iter().map(Observed::Vacated));
                        observed.for_each(|change| { let _ = changes.send(change); });
                    }
                    Err(err) => tracing::debug!(error = %err, "could not send due leaves; trying again"),
                }
            }
        }
    }
}
