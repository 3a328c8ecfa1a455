//! This node's Redis subscription: the messages of the rooms it has live
//! connections in, and the [`RoomEvent`]s of every node.
//!
//! One task owns the pub/sub connection. It subscribes to a room's channel
//! when a joining connection asks ([`Listener::listen`], awaited before the
//! connection reads history, so nothing falls in between) and unsubscribes
//! rooms the hub no longer has on a periodic sweep: a node receives only
//! the rooms it has sockets in.
//!
//! Messages arrive on one connection in the order Redis published them,
//! which is seq order per room, and go straight to the hub. If the
//! connection drops, this node may miss messages, so it closes all its
//! sockets with 1013 (clients resume with `after_seq`, on this node or
//! another) and reconnects with backoff; until then it reports not ready
//! and refuses joins. The sweep also pings the connection, so one cut off
//! silently (a partition) is noticed within seconds too.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::keys::Keys;
use super::wire::{self, Announcement};
use crate::broker::BrokerError;
use crate::hub::{CloseReason, Hub};
use crate::message::{Order, Outgoing, RoomEvent};
use crate::presence::Signal;

/// How long connecting or one subscribe may take before counting as failed.
const REDIS_WAIT: Duration = Duration::from_secs(3);
/// How often rooms without local connections are unsubscribed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Ack = oneshot::Sender<Result<(), BrokerError>>;

/// What the rest of the broker shares with the listener task.
struct Shared {
    /// Rooms subscribed to. Checked and changed under this lock together
    /// with the hub's membership (see [`Listener::listen`]).
    subscribed: Mutex<HashSet<i64>>,
    /// Whether the pub/sub connection is up.
    connected: AtomicBool,
}

/// Handle of the listener task; aborts it when dropped.
pub(super) struct Listener {
    shared: Arc<Shared>,
    requests: mpsc::Sender<(i64, Ack)>,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Called with each event heard on the control channel, after the hub has
/// applied it.
pub(super) type OnEvent = Box<dyn Fn(RoomEvent) + Send + Sync>;

impl Listener {
    /// Starts listening with `client`, delivering to `hub`.
    /// `node` is this node's id: signals it sent come back on the room's
    /// channel and are skipped, having been delivered here already.
    pub(super) fn spawn(client: redis::Client, keys: Keys, hub: Arc<Hub>, node: String, on_event: OnEvent) -> Self {
        let shared = Arc::new(Shared { subscribed: Mutex::new(HashSet::new()), connected: AtomicBool::new(false) });
        let (requests, receiver) = mpsc::channel(1024);
        let shared_with_task = Arc::clone(&shared);
        let task = Task { client, keys, hub, node, shared: shared_with_task, requests: receiver, on_event };
        let task = tokio::spawn(task.run());
        Self { shared, requests, task }
    }

    /// Whether the pub/sub connection is up.
    pub(super) fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Returns once this node receives the room's messages. The caller has
    /// already joined the hub, so a sweep running meanwhile either sees the
    /// room in use or unsubscribes it before this request is served.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] when Redis cannot be reached.
    pub(super) async fn listen(&self, room_id: i64) -> Result<(), BrokerError> {
        if self.connected() && self.shared.subscribed.lock().contains(&room_id) {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        let unavailable = || BrokerError::Unavailable("not subscribed to Redis".into());
        self.requests.send((room_id, ack)).await.map_err(|_| unavailable())?;
        tokio::time::timeout(REDIS_WAIT * 2, done).await.map_err(|_| unavailable())?.map_err(|_| unavailable())?
    }
}

/// Whether the connection still answers: a connection cut off without a
/// reset (a partition) would otherwise look alive, and silent, for ever.
async fn alive(sink: &mut PubSubSink) -> bool {
    matches!(tokio::time::timeout(REDIS_WAIT, sink.ping::<redis::Value>()).await, Ok(Ok(_)))
}

/// The listener task's state.
struct Task {
    client: redis::Client,
    keys: Keys,
    hub: Arc<Hub>,
    node: String,
    shared: Arc<Shared>,
    requests: mpsc::Receiver<(i64, Ack)>,
    on_event: OnEvent,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.connect().await {
                Ok((sink, stream)) => {
                    backoff = Duration::from_millis(100);
                    self.shared.connected.store(true, Ordering::Release);
                    tracing::info!("listening to Redis");
                    self.serve(sink, stream).await;
                    self.shared.connected.store(false, Ordering::Release);
                    self.shared.subscribed.lock().clear();
                    tracing::warn!("lost the Redis subscription; closing this node's WebSockets so clients resume");
                    self.hub.close_all(CloseReason::BrokerLost);
                }
                Err(err) => tracing::warn!(error = %err, retry_in = ?backoff, "cannot subscribe to Redis"),
            }
            self.refuse_requests_for(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn connect(&self) -> Result<(PubSubSink, PubSubStream), redis::RedisError> {
        let timed_out = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let pubsub =
            tokio::time::timeout(REDIS_WAIT, self.client.get_async_pubsub()).await.map_err(|_| timed_out())??;
        let (mut sink, stream) = pubsub.split();
        tokio::time::timeout(REDIS_WAIT, sink.subscribe(self.keys.control())).await.map_err(|_| timed_out())??;
        Ok((sink, stream))
    }

    /// While disconnected, joins fail at once instead of waiting.
    async fn refuse_requests_for(&mut self, pause: Duration) {
        let deadline = tokio::time::Instant::now() + pause;
        while let Ok(Some((_, ack))) = tokio::time::timeout_at(deadline, self.requests.recv()).await {
            let _ = ack.send(Err(BrokerError::Unavailable("not connected to Redis".into())));
        }
    }

    /// Serves one connection until it drops.
    async fn serve(&mut self, mut sink: PubSubSink, mut stream: PubSubStream) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.deliver(&message),
                    None => return,
                },
                request = self.requests.recv() => {
                    let Some((room_id, ack)) = request else { return };
                    let subscribed = self.subscribe(&mut sink, room_id).await;
                    let failed = subscribed.is_err();
                    let _ = ack.send(subscribed);
                    if failed {
                        return;
                    }
                }
                _ = sweep.tick() => {
                    if self.unsubscribe_unused(&mut sink).await.is_err() || !alive(&mut sink).await {
                        return;
                    }
                }
            }
        }
    }

    async fn subscribe(&self, sink: &mut PubSubSink, room_id: i64) -> Result<(), BrokerError> {
        if self.shared.subscribed.lock().contains(&room_id) {
            return Ok(());
        }
        let subscribing = sink.subscribe(self.keys.channel(room_id));
        match tokio::time::timeout(REDIS_WAIT, subscribing).await {
            Ok(Ok(())) => {
                self.shared.subscribed.lock().insert(room_id);
                Ok(())
            }
            Ok(Err(err)) => Err(super::unavailable(err)),
            Err(_) => Err(BrokerError::Unavailable("subscribing timed out".into())),
        }
    }

    async fn unsubscribe_unused(&self, sink: &mut PubSubSink) -> Result<(), redis::RedisError> {
        let unused: Vec<i64> = {
            let mut subscribed = self.shared.subscribed.lock();
            let unused: Vec<i64> = subscribed.iter().copied().filter(|room| !self.hub.has_room(*room)).collect();
            for room in &unused {
                subscribed.remove(room);
            }
            unused
        };
        if unused.is_empty() {
            return Ok(());
        }
        let channels: Vec<String> = unused.iter().map(|room| self.keys.channel(*room)).collect();
        let timed_out = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        tokio::time::timeout(REDIS_WAIT, sink.unsubscribe(channels)).await.map_err(|_| timed_out())?
    }

    fn deliver(&self, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let payload = message.get_payload_bytes();
        if let Some(room_id) = self.keys.room_of(channel) {
            match wire::decode_announcement(room_id, payload) {
                Ok(Announcement::Message(published)) => self.hub.deliver(&Arc::new(published)),
                Ok(Announcement::Presence(change)) => self.hub.deliver_presence(room_id, &Arc::new(change)),
                Ok(Announcement::Signal { node, frame }) => {
                    if node != self.node {
                        let outgoing = Arc::new(Outgoing { frame, order: Order::Ephemeral });
                        self.hub.deliver_signal(&Signal { room_id, from_member: None, outgoing });
                    }
                }
                Err(err) => tracing::error!(error = %err, channel, "dropping a malformed message from Redis"),
            }
        } else if channel == self.keys.control() {
            match wire::decode_event(payload) {
                // The announcing node applied it already.
                Ok((node, _)) if node == self.node => {}
                Ok((_, event)) => {
                    self.hub.apply(event.clone());
                    (self.on_event)(event);
                }
                Err(err) => tracing::error!(error = %err, "dropping a malformed event from Redis"),
            }
        }
    }
}
