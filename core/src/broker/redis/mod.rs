//! The Redis broker: several comms nodes behind a load balancer, sharing one
//! database and one Redis, act as one server.
//!
//! - **Seq and order.** One Lua script ([`scripts::PUBLISH`]) assigns the
//!   room's next seq, appends the message to the room's stream and publishes
//!   it on the room's channel, atomically; so every node hears a room's
//!   messages in seq order, whichever node they were sent to. A socket's
//!   messages sent back to back go through one run of it, one round trip
//!   for all of them ([`Broker::publish_all`]).
//! - **History.** The stream keeps the newest `history.max_messages` (and
//!   drops older than `history.max_age_secs`), read by `after_seq` resumes and
//!   the messages API on any node. The publishing node also writes every
//!   message to the database through the [`HistoryWriter`], which is what
//!   survives Redis losing its data: a room whose seq is missing from Redis
//!   is seeded again from the database ([`scripts::SEED`]).
//! - **No seq used twice.** A node hands out seqs only up to a ceiling it
//!   reserved in the database beforehand (one write per [`SEQ_BLOCK`]
//!   seqs), so after Redis loses its data numbering resumes above every
//!   reservation: it may skip ahead, it never repeats.
//! - **Fan-out.** A node subscribes only to the rooms it has sockets in
//!   ([`listener`]); deletions travel as [`RoomEvent`]s on a control channel
//!   every node hears; online counts are summed over nodes ([`presence`]).
//! - **Presence and signals.** Presence rooms' members are kept in Redis
//!   by atomic scripts that also publish each join and leave on the room's
//!   channel ([`roster`]); signals go out on the same channel, so both
//!   reach only the nodes with a connection in the room.
//!
//! # Layout
//!
//! - this module: [`RedisBroker`] and its `Broker` implementation.
//! - [`scripts`]: the Lua scripts. [`keys`]: key and channel names.
//! - [`wire`]: a message's form in Redis.
//! - [`listener`]: the pub/sub task. [`presence`]: online counts.
//! - [`roster`]: presence rooms' members.
//! - [`counted`]: the connection every command goes through, counting
//!   round trips.
//!
//! Redis for tests is in the `comms-testkit` crate.

mod counted;
mod keys;
mod listener;
mod presence;
mod roster;
mod scripts;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::ConnectionManagerConfig;
use redis::Value;
use tokio::task::JoinHandle;

use self::counted::CountedConnection;
use self::keys::Keys;
use self::listener::Listener;
use self::presence::Presence;
use self::roster::RedisRoster;
use super::local::SEQ_BLOCK;
use super::writer::{HistoryWriter, WriterSettings};
use super::{Broker, BrokerError, Durability, History, NodeConnections, PublishGate, RoomRef};
use crate::hub::{Hub, Occupancy};
use crate::message::{Draft, NonceKey, Published, Receipt, RoomEvent, Unsequenced};
use crate::metrics::Metrics;
use crate::presence::{MemberCard, MemberChange, Roll, Signal, Swept, Transition};
use crate::quotas::{SocketCounts, SocketOwner};
use crate::store::Store;
use crate::time::now_ms;

/// How long one Redis command may take before counting as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the Redis broker connects and what it retains.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://…` or `rediss://…`.
    pub url: String,
    /// Start of every key and channel name.
    pub key_prefix: String,
    /// Retention (shared by the streams and the database) and batching.
    pub writer: WriterSettings,
    /// How long a message's nonce is remembered.
    pub nonce_window: Duration,
}

/// Why the Redis broker could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL: {0}")]
pub struct InvalidRedisUrl(#[from] redis::RedisError);

/// The multi-node broker. See the module docs.
pub struct RedisBroker {
    connection: CountedConnection,
    keys: Keys,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    writer: HistoryWriter,
    listener: Listener,
    presence: Arc<Presence>,
    presence_task: JoinHandle<()>,
    roster: RedisRoster,
    /// This node's id, which its signals carry on the room channels.
    node: String,
    /// Per room, the highest seq this node may hand out: reserved in the
    /// database first. Shared with the listener, which drops deleted rooms.
    ceilings: Arc<Mutex<HashMap<i64, u64>>>,
    max_messages: usize,
    max_age: Duration,
    /// How long a message's nonce is remembered (see `scripts::PUBLISH`).
    nonce_window: Duration,
    /// Closed by `shutdown`: no message is published after the final flush.
    gate: PublishGate,
}

impl RedisBroker {
    /// A broker on the Redis at `settings.url`, delivering to `hub`,
    /// persisting to `store`. Connects lazily: a Redis that is down at start
    /// makes the node not ready until it comes up, never fails the start.
    ///
    /// # Errors
    ///
    /// A URL that is not a Redis URL.
    pub fn new(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        settings: RedisSettings,
    ) -> Result<Self, InvalidRedisUrl> {
        let client = redis::Client::open(settings.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection =
            CountedConnection::new(client.get_connection_manager_lazy(config)?, metrics.redis_round_trips.clone());
        let keys = Keys::new(&settings.key_prefix);
        let ceilings = Arc::new(Mutex::new(HashMap::new()));
        let forget = Arc::clone(&ceilings);
        let on_event = Box::new(move |event: RoomEvent| {
            if let RoomEvent::RoomDeleted { room_id } = event {
                forget.lock().remove(&room_id);
            }
        });
        let node = uuid::Uuid::now_v7().simple().to_string();
        let listener = Listener::spawn(client, keys.clone(), Arc::clone(&hub), node.clone(), on_event);
        let roster = RedisRoster::new(node.clone(), keys.clone(), connection.clone());
        let presence = Arc::new(Presence::new(node.clone(), keys.clone(), connection.clone()));
        let presence_task = presence.spawn_publisher(Arc::clone(&hub));
        Ok(Self {
            connection,
            keys,
            writer: HistoryWriter::spawn(Arc::clone(&store), settings.writer),
            store,
            hub,
            metrics,
            listener,
            presence,
            presence_task,
            roster,
            node,
            ceilings,
            max_messages: settings.writer.keep_per_room,
            max_age: settings.writer.max_age,
            nonce_window: settings.nonce_window,
            gate: PublishGate::default(),
        })
    }

    fn max_age_ms(&self) -> u64 {
        self.max_age.as_millis().max(1) as u64
    }

    /// Runs the publish script once for `bodies` (each with its nonce
    /// key, if any), in order.
    async fn try_publish(
        &self,
        room: &RoomRef,
        bodies: &[(Option<NonceKey>, &Unsequenced)],
    ) -> Result<Run, BrokerError> {
        let room_id = room.id;
        let ceiling = self.ceilings.lock().get(&room_id).copied().unwrap_or(0);
        let mut invocation = scripts::PUBLISH.key(self.keys.seq(room_id));
        invocation
            .key(self.keys.log(room_id))
            .key(self.keys.channel(room_id))
            .key(self.keys.nonces(room_id))
            .arg(ceiling)
            .arg(self.max_messages)
            .arg(self.max_age_ms())
            .arg(self.nonce_window.as_millis().max(1) as u64);
        for (nonce, body) in bodies {
            let id = if nonce.is_some() { body.id() } else { "" };
            invocation.arg(nonce.as_ref().map_or("", NonceKey::as_str)).arg(id).arg(wire::encode(body));
        }
        let reply: Vec<redis::Value> =
            invocation.invoke_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        let number = |at: usize| match reply.get(at) {
            Some(redis::Value::Int(n)) => Ok(*n),
            other => Err(malformed(format!("publish reply item {at}: {other:?}"))),
        };
        let (created_ms, last_seq, stop) = (number(0)?, to_seq(number(1)?)?, number(3)?);
        let items = reply[4.min(reply.len())..]
            .iter()
            .map(|item| match item {
                redis::Value::Int(seq) => to_seq(*seq).map(Outcome::Published),
                redis::Value::BulkString(first) => first_publish(first).map(Outcome::Repeated),
                other => Err(malformed(format!("publish reply item: {other:?}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Run {
            created_ms,
            items,
            stop: match stop {
                0 => Stop::Done,
                1 => Stop::Unseeded,
                _ => Stop::NeedsSeqs { current: last_seq },
            },
        })
    }

    /// Publishes one message; the caller holds the publish gate.
    async fn publish_body(
        &self,
        room: &RoomRef,
        nonce: Option<NonceKey>,
        body: Unsequenced,
        durability: Durability,
    ) -> Result<Arc<Published>, BrokerError> {
        let text = [(nonce, &body)];
        let run = loop {
            let run = self.try_publish(room, &text).await?;
            if !run.items.is_empty() {
                break run;
            }
            match run.stop {
                Stop::Done => return Err(malformed("the publish script went through nothing".into())),
                Stop::Unseeded => self.seed(room).await?,
                Stop::NeedsSeqs { current } => self.reserve(room.id, current).await?,
            }
        };
        match run.items.into_iter().next() {
            Some(Outcome::Published(seq)) => self.record(room, body, seq, run.created_ms, durability).await,
            Some(Outcome::Repeated(first)) => Err(BrokerError::Repeated(first)),
            None => Err(malformed("the publish script went through nothing".into())),
        }
    }

    /// Hands a message the script published to the history writer.
    async fn record(
        &self,
        room: &RoomRef,
        body: Unsequenced,
        seq: u64,
        created_ms: i64,
        durability: Durability,
    ) -> Result<Arc<Published>, BrokerError> {
        let published = Arc::new(body.sequence(room.id, seq, created_ms));
        self.metrics.messages_in.inc();
        self.writer.write(published.to_stored(), durability == Durability::Stored).await?;
        Ok(published)
    }

    /// Reserves the next block of seqs in the database, then lets this node
    /// hand them out.
    async fn reserve(&self, room_id: i64, current: u64) -> Result<(), BrokerError> {
        let ceiling = current + SEQ_BLOCK;
        self.store.reserve_seq(room_id, ceiling).await?;
        let mut ceilings = self.ceilings.lock();
        let known = ceilings.entry(room_id).or_default();
        *known = (*known).max(ceiling);
        Ok(())
    }

    /// Puts a room's seq and retained messages back into Redis from the
    /// database (first use, or after Redis lost its data).
    async fn seed(&self, room: &RoomRef) -> Result<(), BrokerError> {
        // What this node still has queued belongs in the stream too.
        self.writer.flush_in_time().await?;
        let oldest = now_ms() - self.max_age.as_millis() as i64;
        let history =
            self.store.load_history(room.id, self.max_messages, oldest).await?.ok_or(BrokerError::RoomGone)?;
        let mut invocation = scripts::SEED.key(self.keys.seq(room.id));
        invocation
            .key(self.keys.log(room.id))
            .key(self.keys.redacted(room.id))
            .arg(history.last_seq)
            .arg(self.max_age_ms());
        for stored in &history.messages {
            invocation
                .arg(stored.seq)
                .arg(stored.created_at)
                .arg(wire::encode(&Unsequenced::from_stored(&room.name, stored)?))
                .arg(stored.redacted_at.unwrap_or(0));
        }
        let seeded: i64 = invocation.invoke_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        if seeded == 1 {
            tracing::info!(room_id = room.id, last_seq = history.last_seq, "seeded a room's seq in Redis");
        }
        Ok(())
    }

    /// Runs the history script once; `None` when the room must be seeded.
    async fn try_history(&self, room: &RoomRef, after_seq: u64, limit: usize) -> Result<Option<History>, BrokerError> {
        let limit = limit.min(self.max_messages);
        let values: Vec<Value> = scripts::HISTORY
            .key(self.keys.seq(room.id))
            .key(self.keys.log(room.id))
            .key(self.keys.redacted(room.id))
            .arg(after_seq.saturating_add(1))
            .arg(limit)
            .arg(self.max_age_ms())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        let mut values = values.into_iter();
        let last_seq = match values.next() {
            Some(Value::Int(-1)) => return Ok(None),
            Some(Value::Int(last)) => to_seq(last)?,
            other => return Err(malformed(format!("history bounds: {other:?}"))),
        };
        let first_seq = match values.next() {
            Some(Value::Int(first)) => to_seq(first)?,
            other => return Err(malformed(format!("history bounds: {other:?}"))),
        };
        let mut messages = Vec::new();
        while let Some(seq) = values.next() {
            let (Value::Int(seq), Some(Value::Int(ms)), Some(Value::BulkString(body)), Some(Value::Int(redacted))) =
                (seq, values.next(), values.next(), values.next())
            else {
                return Err(malformed("a history entry".into()));
            };
            let published = wire::decode(&body)?.sequence(room.id, to_seq(seq)?, ms);
            messages.push(Arc::new(match redacted {
                0 => published,
                at_ms => published.redacted(at_ms),
            }));
        }
        Ok(Some(History { first_seq, last_seq, messages }))
    }
}

/// One run of the publish script: the first `count` bodies it was given
/// were published with consecutive seqs from `first_seq`.
struct Run {
    created_ms: i64,
    /// What became of each message the run went through, in order.
    items: Vec<Outcome>,
    stop: Stop,
}

/// What a run did with one message.
enum Outcome {
    /// Published with this seq.
    Published(u64),
    /// Its nonce was published under already: the first publish's receipt.
    Repeated(Receipt),
}

/// Why a run of the publish script stopped.
enum Stop {
    /// It published every body.
    Done,
    /// The room's seq is not in Redis: seed it from the database.
    Unseeded,
    /// This node has handed out every seq it reserved, up to `current`.
    NeedsSeqs { current: u64 },
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.presence_task.abort();
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(
        &self,
        room: &RoomRef,
        draft: Draft,
        durability: Durability,
    ) -> Result<Arc<Published>, BrokerError> {
        let Some(_inside) = self.gate.enter().await else { return Err(BrokerError::ShuttingDown) };
        let nonce = draft.nonce.clone();
        self.publish_body(room, nonce, Unsequenced::new(&room.name, draft), durability).await
    }

    /// One script run publishes every draft, unless the room must be seeded
    /// or more seqs reserved first (then another run publishes the rest).
    /// A failure fails every draft left: a run that timed out may still
    /// have published them, so none is tried again.
    async fn publish_all(&self, room: &RoomRef, drafts: Vec<Draft>) -> Vec<Result<Arc<Published>, BrokerError>> {
        let mut results = Vec::with_capacity(drafts.len());
        let mut bodies: VecDeque<(Option<NonceKey>, Unsequenced)> =
            drafts.into_iter().map(|draft| (draft.nonce.clone(), Unsequenced::new(&room.name, draft))).collect();
        let Some(_inside) = self.gate.enter().await else {
            return bodies.iter().map(|_| Err(BrokerError::ShuttingDown)).collect();
        };
        while !bodies.is_empty() {
            let texts: Vec<(Option<NonceKey>, &Unsequenced)> =
                bodies.iter().map(|(nonce, body)| (nonce.clone(), body)).collect();
            let ready = match self.try_publish(room, &texts).await {
                Ok(run) => {
                    let went_through = bodies.drain(..run.items.len().min(bodies.len()));
                    for (outcome, (_, body)) in run.items.into_iter().zip(went_through) {
                        results.push(match outcome {
                            Outcome::Published(seq) => {
                                self.record(room, body, seq, run.created_ms, Durability::Delivered).await
                            }
                            Outcome::Repeated(first) => Err(BrokerError::Repeated(first)),
                        });
                    }
                    match run.stop {
                        Stop::Done => Ok(()),
                        Stop::Unseeded => self.seed(room).await,
                        Stop::NeedsSeqs { current } => self.reserve(room.id, current).await,
                    }
                }
                Err(err) => Err(err),
            };
            if let Err(err) = ready {
                results.extend(bodies.iter().map(|_| Err(err.again())));
                break;
            }
        }
        results
    }

    async fn published_under(&self, room: &RoomRef, nonce: &NonceKey) -> Result<Option<Receipt>, BrokerError> {
        let key = format!("{}{}", self.keys.nonces(room.id), nonce.as_str());
        let first: Option<Vec<u8>> =
            redis::cmd("GET").arg(key).query_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        first.as_deref().map(first_publish).transpose()
    }

    async fn stored(&self) -> Result<(), BrokerError> {
        self.writer.flush_in_time().await
    }

    async fn history(&self, room: &RoomRef, after_seq: u64, limit: usize) -> Result<History, BrokerError> {
        loop {
            if let Some(history) = self.try_history(room, after_seq, limit).await? {
                return Ok(history);
            }
            self.seed(room).await?;
        }
    }

    async fn listen(&self, room_id: i64) -> Result<(), BrokerError> {
        self.listener.listen(room_id).await
    }

    async fn online(&self, room_ids: &[i64]) -> Result<Vec<u64>, BrokerError> {
        let elsewhere = self.presence.elsewhere(room_ids).await?;
        Ok(room_ids.iter().zip(elsewhere).map(|(room_id, others)| self.hub.online(*room_id) + others).collect())
    }

    async fn endpoints_online(&self, endpoint_ids: &[i64]) -> Result<Vec<u64>, BrokerError> {
        let names: Vec<String> = endpoint_ids.iter().map(|id| SocketCounts::endpoint_count_name(*id)).collect();
        let elsewhere = self.presence.elsewhere(&names).await?;
        let here = self.hub.sockets();
        Ok(endpoint_ids.iter().zip(elsewhere).map(|(id, others)| here.of_endpoint(*id) + others).collect())
    }

    async fn redact(&self, room: &RoomRef, seqs: &[u64], at_ms: i64) -> Result<Vec<u64>, BrokerError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = scripts::REDACT.key(self.keys.log(room.id));
        invocation.key(self.keys.redacted(room.id)).arg(at_ms).arg(self.max_age_ms());
        for seq in seqs {
            invocation.arg(*seq);
        }
        let redacted: Vec<u64> = invocation.invoke_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        self.writer.redact(room.id, &redacted, at_ms).await?;
        Ok(redacted)
    }

    async fn sockets_elsewhere(&self, owner: &SocketOwner) -> Result<[u64; 3], BrokerError> {
        let counts = self.presence.elsewhere(&owner.count_names()).await?;
        Ok([0, 1, 2].map(|i| counts.get(i).copied().unwrap_or(0)))
    }

    async fn app_connections(&self, app_id: i64) -> Result<u64, BrokerError> {
        let elsewhere = self.presence.elsewhere(&[SocketCounts::app_count_name(app_id)]).await?;
        Ok(self.hub.sockets().of_app(app_id) + elsewhere.first().copied().unwrap_or(0))
    }

    async fn connections_by_node(&self) -> Result<Vec<NodeConnections>, BrokerError> {
        let mut nodes = vec![NodeConnections { node: self.node.clone(), connections: self.hub.sockets().total() }];
        nodes.extend(self.presence.connections_elsewhere().await?);
        Ok(nodes)
    }

    async fn announce(&self, event: RoomEvent) {
        self.hub.apply(event.clone());
        let text = wire::encode_event(&self.node, &event);
        if self.tell_other_nodes(&text).await.is_ok() {
            return;
        }
        // Keep trying in the background, so a passing failure does not
        // leave sockets open (or out of date) on other nodes.
        let (connection, channel) = (self.connection.clone(), self.keys.control());
        tokio::spawn(async move {
            for pause in [100, 500, 1000, 2000, 5000, 10_000, 30_000] {
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if publish_event(connection.clone(), &channel, &text).await.is_ok() {
                    return;
                }
            }
            tracing::error!(
                ?event,
                "gave up telling the other nodes of a deletion; their sockets close when they reconnect"
            );
        });
    }

    async fn presence(&self, transition: &Transition) -> Result<Option<MemberChange>, BrokerError> {
        self.roster.apply(transition).await
    }

    async fn expire_leaves(&self, now_ms: i64) -> Result<Swept, BrokerError> {
        self.roster.expire(now_ms).await
    }

    async fn occupancy(&self, change: Occupancy) -> Result<bool, BrokerError> {
        self.roster.occupancy(change).await
    }

    async fn members(&self, room_id: i64) -> Result<Roll, BrokerError> {
        self.roster.members(room_id).await
    }

    async fn update_member(&self, room_id: i64, card: &MemberCard) -> Result<(), BrokerError> {
        self.roster.update_card(room_id, card).await
    }

    async fn signal(&self, signal: Signal) -> Result<(), BrokerError> {
        self.hub.deliver_signal(&signal);
        // Only nodes with a connection in the room listen on its channel.
        let payload = wire::encode_signal(&self.node, &signal.outgoing.frame);
        let _: i64 = redis::cmd("PUBLISH")
            .arg(self.keys.channel(signal.room_id))
            .arg(payload)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn forget_room(&self, room_id: i64) {
        self.ceilings.lock().remove(&room_id);
        let deleted: redis::RedisResult<i64> = redis::cmd("DEL")
            .arg(self.keys.seq(room_id))
            .arg(self.keys.log(room_id))
            .arg(self.keys.redacted(room_id))
            .arg(&self.roster.room_keys(room_id))
            .query_async(&mut self.connection.clone())
            .await;
        if let Err(err) = deleted {
            tracing::warn!(error = %err, room_id, "could not delete a deleted room's keys from Redis");
        }
    }

    async fn ready(&self) -> Result<(), BrokerError> {
        self.store.ping().await?;
        let _: String = redis::cmd("PING").query_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        if !self.listener.connected() {
            return Err(BrokerError::Unavailable("the Redis subscription is down".into()));
        }
        Ok(())
    }

    async fn shutdown(&self) {
        self.gate.close().await;
        self.presence_task.abort();
        self.presence.withdraw().await;
        self.writer.flush().await;
    }
}

impl RedisBroker {
    async fn tell_other_nodes(&self, text: &str) -> redis::RedisResult<()> {
        let published = publish_event(self.connection.clone(), &self.keys.control(), text).await;
        if let Err(err) = &published {
            tracing::warn!(error = %err, event = text, "could not tell the other nodes of an event; retrying");
        }
        published
    }
}

/// Publishes an encoded [`RoomEvent`] on the control channel every node
/// hears.
async fn publish_event(mut connection: CountedConnection, channel: &str, text: &str) -> redis::RedisResult<()> {
    redis::cmd("PUBLISH").arg(channel).arg(text).query_async(&mut connection).await
}

/// A Redis failure as the broker reports it: unreachable, or a reply this
/// version does not understand.
fn unavailable(err: redis::RedisError) -> BrokerError {
    BrokerError::Unavailable(err.to_string())
}

fn malformed(what: String) -> BrokerError {
    BrokerError::Unavailable(format!("unexpected reply from Redis: {what}"))
}

/// The receipt a nonce key holds: `SEQ ID`.
fn first_publish(value: &[u8]) -> Result<Receipt, BrokerError> {
    let text = std::str::from_utf8(value).map_err(|_| malformed("a nonce's receipt is not text".into()))?;
    let (seq, id) = text.split_once(' ').ok_or_else(|| malformed(format!("a nonce's receipt: {text}")))?;
    let seq = seq.parse().map_err(|_| malformed(format!("a nonce's receipt: {text}")))?;
    Ok(Receipt { id: id.to_owned(), seq })
}

fn to_seq(value: i64) -> Result<u64, BrokerError> {
    u64::try_from(value).map_err(|_| malformed(format!("negative seq {value}")))
}
