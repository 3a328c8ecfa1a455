//! The in-process broker: one node, seq and recent history in memory,
//! history persisted through the [`HistoryWriter`].
//!
//! Each room's log is loaded from the store on first use (so seq and history
//! survive a restart) and kept in memory while the room is used; a sweeper
//! drops logs idle for `history.idle_room_secs`, after their history is
//! written. Seq assignment, retention and the hand-off to the hub happen
//! under the room's lock, which is what makes every connection see the
//! room's messages in seq order.
//!
//! Seqs are handed out from blocks reserved in the store beforehand (one
//! write per [`SEQ_BLOCK`] messages), so a crash that loses the last batch
//! of history can make numbering skip ahead, but never reuse a seq a client
//! has already seen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::room_log::RoomLog;
use super::writer::{HistoryWriter, WriterSettings};
use super::{Broker, BrokerError, Durability, History, NodeConnections, PublishGate, RoomRef};
use crate::hub::{Hub, Occupancy};
use crate::message::{Draft, NonceKey, Published, Receipt, RoomEvent, Unsequenced};
use crate::metrics::Metrics;
use crate::presence::roster::Roster;
use crate::presence::{MemberCard, MemberChange, Roll, Signal, Swept, Transition};
use crate::quotas::SocketOwner;
use crate::store::{Store, StoredMessage};
use crate::time::now_ms;

/// Seqs reserved per store write.
pub const SEQ_BLOCK: u64 = 1000;

type LogCell = OnceCell<RoomLog>;
/// Loaded rooms by id, shared with the sweeper.
type Logs = Arc<Mutex<HashMap<i64, Arc<LogCell>>>>;

/// How the local broker retains and persists history.
#[derive(Debug, Clone, Copy)]
pub struct LocalSettings {
    /// Retention and batching of the history writer.
    pub writer: WriterSettings,
    /// A room's log unused this long is dropped from memory.
    pub idle_room: Duration,
    /// How long a message's nonce is remembered.
    pub nonce_window: Duration,
}

/// The single-node broker. See the module docs.
pub struct LocalBroker {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    writer: HistoryWriter,
    logs: Logs,
    max_messages: usize,
    max_age: Duration,
    nonce_window: Duration,
    sweeper: JoinHandle<()>,
    /// Closed by `shutdown`: no seq is handed out after the final flush.
    gate: PublishGate,
    /// Presence rooms' members: this node's are all there are.
    roster: Roster,
}

/// The outcome of one try at publishing under the room's lock.
enum Attempt {
    Published(Arc<Published>),
    /// The draft's nonce was published already: the first's receipt.
    Repeated(Receipt),
    /// The reserved block is used up: reserve more, then try again.
    NeedsSeqs,
    /// The log was evicted meanwhile: load the room again.
    Evicted,
}

impl LocalBroker {
    /// A broker delivering to `hub`, persisting to `store`. Spawns the
    /// history writer and the idle-room sweeper on the current runtime.
    pub fn new(store: Arc<dyn Store>, hub: Arc<Hub>, metrics: Arc<Metrics>, settings: LocalSettings) -> Self {
        let writer = HistoryWriter::spawn(Arc::clone(&store), settings.writer);
        let logs = Logs::default();
        let sweeper =
            tokio::spawn(sweep_idle_rooms(Arc::clone(&logs), writer.clone(), Arc::clone(&store), settings.idle_room));
        Self {
            store,
            metrics,
            writer,
            logs,
            max_messages: settings.writer.keep_per_room,
            max_age: settings.writer.max_age,
            nonce_window: settings.nonce_window,
            sweeper,
            gate: PublishGate::default(),
            roster: Roster::new(Arc::clone(&hub)),
            hub,
        }
    }

    fn oldest_retained_ms(&self) -> i64 {
        now_ms() - self.max_age.as_millis() as i64
    }

    async fn log(&self, room: &RoomRef) -> Result<Arc<LogCell>, BrokerError> {
        let cell = Arc::clone(self.logs.lock().entry(room.id).or_default());
        let loaded = cell.get_or_try_init(|| self.load(room)).await;
        if let Err(BrokerError::RoomGone) = loaded {
            self.logs.lock().remove(&room.id);
        }
        loaded?;
        Ok(cell)
    }

    async fn load(&self, room: &RoomRef) -> Result<RoomLog, BrokerError> {
        let history = self
            .store
            .load_history(room.id, self.max_messages, self.oldest_retained_ms())
            .await?
            .ok_or(BrokerError::RoomGone)?;
        Ok(RoomLog::restore(room.id, &room.name, history, self.nonce_window)?)
    }

    /// Makes sure at least one seq is reserved, writing the next block's end
    /// to the store if none is left.
    async fn reserve(&self, room_id: i64, log: &RoomLog) -> Result<(), BrokerError> {
        let _one_at_a_time = log.reserving.lock().await;
        let target = {
            let state = log.lock();
            // An evicted log must not reserve: its publisher reloads the room.
            if state.evicted || state.last_seq < state.reserved_seq {
                return Ok(());
            }
            state.reserved_seq + SEQ_BLOCK
        };
        self.store.reserve_seq(room_id, target).await?;
        log.lock().reserved_seq = target;
        Ok(())
    }

    fn try_publish(&self, room: &RoomRef, log: &RoomLog, draft: &mut Option<Draft>) -> Attempt {
        let mut state = log.lock();
        if state.evicted {
            return Attempt::Evicted;
        }
        if state.last_seq >= state.reserved_seq {
            return Attempt::NeedsSeqs;
        }
        let nonce = draft.as_ref().and_then(|draft| draft.nonce.clone());
        if let Some(first) = nonce.as_ref().and_then(|key| state.nonces.find(key, self.nonce_window)) {
            return Attempt::Repeated(first);
        }
        let Some(draft) = draft.take() else { unreachable!("a draft is published once") };
        state.last_seq += 1;
        state.touched = std::time::Instant::now();
        let published = Arc::new(Unsequenced::new(&room.name, draft).sequence(room.id, state.last_seq, now_ms()));
        if let Some(key) = nonce {
            state.nonces.record(key, Receipt::of(&published));
        }
        state.retained.push_back(Arc::clone(&published));
        state.trim(self.max_messages, self.oldest_retained_ms());
        // Still under the room's lock: deliveries happen in seq order.
        self.hub.deliver(&published);
        Attempt::Published(published)
    }

    /// Rooms whose log is in memory.
    #[cfg(test)]
    fn loaded_rooms(&self) -> usize {
        self.logs.lock().len()
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        self.sweeper.abort();
    }
}

#[async_trait]
impl Broker for LocalBroker {
    async fn publish(
        &self,
        room: &RoomRef,
        draft: Draft,
        durability: Durability,
    ) -> Result<Arc<Published>, BrokerError> {
        let Some(_inside) = self.gate.enter().await else { return Err(BrokerError::ShuttingDown) };
        let nonce = draft.nonce.as_ref().map(|key| key.as_str().to_owned());
        let mut draft = Some(draft);
        let published = 'load: loop {
            let cell = self.log(room).await?;
            let log = cell.get().expect("log() initializes the cell");
            loop {
                match self.try_publish(room, log, &mut draft) {
                    Attempt::Published(published) => break 'load published,
                    Attempt::Repeated(first) => return Err(BrokerError::Repeated(first)),
                    Attempt::NeedsSeqs => self.reserve(room.id, log).await?,
                    Attempt::Evicted => continue 'load,
                }
            }
        };
        self.metrics.messages_in.inc();
        // The nonce goes into history with the message, so a restart after
        // a crash still knows it (see `RoomLog::restore`).
        let stored = StoredMessage { nonce, ..published.to_stored() };
        self.writer.write(stored, durability == Durability::Stored).await?;
        Ok(published)
    }

    async fn published_under(&self, room: &RoomRef, nonce: &NonceKey) -> Result<Option<Receipt>, BrokerError> {
        loop {
            let cell = self.log(room).await?;
            let mut state = cell.get().expect("log() initializes the cell").lock();
            if !state.evicted {
                return Ok(state.nonces.find(nonce, self.nonce_window));
            }
        }
    }

    async fn stored(&self) -> Result<(), BrokerError> {
        self.writer.flush_in_time().await
    }

    async fn history(&self, room: &RoomRef, after_seq: u64, limit: usize) -> Result<History, BrokerError> {
        loop {
            let cell = self.log(room).await?;
            let mut state = cell.get().expect("log() initializes the cell").lock();
            if state.evicted {
                continue;
            }
            state.touched = std::time::Instant::now();
            state.trim(self.max_messages, self.oldest_retained_ms());
            let start = state.retained.partition_point(|m| m.seq() <= after_seq);
            return Ok(History {
                first_seq: state.first_seq(),
                last_seq: state.last_seq,
                messages: state.retained.range(start..).take(limit).cloned().collect(),
            });
        }
    }

    async fn listen(&self, _room_id: i64) -> Result<(), BrokerError> {
        // Publishing delivers to this node's hub directly.
        Ok(())
    }

    async fn online(&self, room_ids: &[i64]) -> Result<Vec<u64>, BrokerError> {
        Ok(room_ids.iter().map(|room_id| self.hub.online(*room_id)).collect())
    }

    async fn endpoints_online(&self, endpoint_ids: &[i64]) -> Result<Vec<u64>, BrokerError> {
        Ok(endpoint_ids.iter().map(|id| self.hub.sockets().of_endpoint(*id)).collect())
    }

    async fn redact(&self, room: &RoomRef, seqs: &[u64], at_ms: i64) -> Result<Vec<u64>, BrokerError> {
        let redacted = loop {
            let cell = self.log(room).await?;
            let mut state = cell.get().expect("log() initializes the cell").lock();
            if state.evicted {
                continue;
            }
            let mut redacted = Vec::new();
            for seq in seqs {
                let at = state.retained.partition_point(|m| m.seq() < *seq);
                if let Some(message) = state.retained.get_mut(at).filter(|m| m.seq() == *seq && !m.is_redacted()) {
                    *message = Arc::new(message.redacted(at_ms));
                    redacted.push(*seq);
                }
            }
            break redacted;
        };
        self.writer.redact(room.id, &redacted, at_ms).await?;
        Ok(redacted)
    }

    async fn sockets_elsewhere(&self, _owner: &SocketOwner) -> Result<[u64; 3], BrokerError> {
        // One node: there is no elsewhere.
        Ok([0; 3])
    }

    async fn app_connections(&self, app_id: i64) -> Result<u64, BrokerError> {
        Ok(self.hub.sockets().of_app(app_id))
    }

    async fn connections_by_node(&self) -> Result<Vec<NodeConnections>, BrokerError> {
        Ok(vec![NodeConnections { node: "this node".into(), connections: self.hub.sockets().total() }])
    }

    async fn announce(&self, event: RoomEvent) {
        self.hub.apply(event);
    }

    async fn presence(&self, transition: &Transition) -> Result<Option<MemberChange>, BrokerError> {
        Ok(self.roster.apply(transition))
    }

    async fn expire_leaves(&self, now_ms: i64) -> Result<Swept, BrokerError> {
        Ok(Swept { left: self.roster.expire(now_ms), vacated: Vec::new() })
    }

    async fn occupancy(&self, _change: Occupancy) -> Result<bool, BrokerError> {
        // This node is the whole server: its hub's rooms are all there is.
        Ok(true)
    }

    async fn members(&self, room_id: i64) -> Result<Roll, BrokerError> {
        Ok(self.roster.members(room_id))
    }

    async fn update_member(&self, room_id: i64, card: &MemberCard) -> Result<(), BrokerError> {
        self.roster.update_card(room_id, card);
        Ok(())
    }

    async fn signal(&self, signal: Signal) -> Result<(), BrokerError> {
        self.hub.deliver_signal(&signal);
        Ok(())
    }

    async fn forget_room(&self, room_id: i64) {
        self.logs.lock().remove(&room_id);
    }

    async fn ready(&self) -> Result<(), BrokerError> {
        Ok(self.store.ping().await?)
    }

    async fn shutdown(&self) {
        self.gate.close().await;
        self.sweeper.abort();
        self.writer.flush().await;
        let loaded: Vec<(i64, u64)> =
            self.logs.lock().iter().filter_map(|(id, cell)| cell.get().map(|log| (*id, log.lock().last_seq))).collect();
        release_reservations(&*self.store, &loaded).await;
    }
}

/// Lowers each room's reservation to its last seq if everything up to it is
/// stored (the store checks), so the next load continues without a gap.
async fn release_reservations(store: &dyn Store, rooms: &[(i64, u64)]) {
    for (room_id, last_seq) in rooms {
        if let Err(err) = store.release_seq_reservation(*room_id, *last_seq).await {
            tracing::warn!(error = %err, room_id, "could not release a seq reservation; numbering will skip ahead");
        }
    }
}

/// Every half `idle` (at most 30 s): drops the logs of rooms untouched for
/// `idle`, after the writer has stored their history.
async fn sweep_idle_rooms(logs: Logs, writer: HistoryWriter, store: Arc<dyn Store>, idle: Duration) {
    let mut tick = tokio::time::interval((idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(30)));
    loop {
        tick.tick().await;
        let is_idle = |cell: &LogCell| cell.get().is_some_and(|log| log.lock().touched.elapsed() >= idle);
        let candidates: Vec<(i64, Arc<LogCell>)> =
            logs.lock().iter().filter(|(_, cell)| is_idle(cell)).map(|(id, cell)| (*id, Arc::clone(cell))).collect();
        if candidates.is_empty() {
            continue;
        }
        writer.flush().await;
        let mut evicted = 0;
        for (room_id, cell) in candidates {
            if evict(&logs, &*store, room_id, &cell, idle).await {
                evicted += 1;
            }
        }
        tracing::debug!(rooms = evicted, "dropped idle rooms from memory");
    }
}

/// Drops one idle room's log, unless it was used meanwhile.
///
/// The reservation is released while this log is still the room's only one
/// and cannot hand out seqs: holding `reserving` and with the in-memory
/// reservation lowered first, a publisher can only wait. So a reload right
/// after continues at `last_seq + 1`, with no gap and no reuse.
async fn evict(logs: &Logs, store: &dyn Store, room_id: i64, cell: &Arc<LogCell>, idle: Duration) -> bool {
    let Some(log) = cell.get() else { return false };
    let _no_new_seqs = log.reserving.lock().await;
    let last_seq = {
        let mut state = log.lock();
        if state.evicted || state.touched.elapsed() < idle {
            return false;
        }
        state.reserved_seq = state.last_seq;
        state.last_seq
    };
    if let Err(err) = store.release_seq_reservation(room_id, last_seq).await {
        tracing::warn!(error = %err, room_id, "keeping an idle room in memory: its seq reservation could not be released");
        return false;
    }
    let mut map = logs.lock();
    let mut state = log.lock();
    if state.touched.elapsed() < idle {
        return false;
    }
    state.evicted = true;
    if map.get(&room_id).is_some_and(|current| Arc::ptr_eq(current, cell)) {
        map.remove(&room_id);
    }
    true
}

#[cfg(test)]
mod tests {
    use comms_protocol::Sender;
    use serde_json::value::RawValue;

    use super::*;
    use crate::message::NonceKey;
    use crate::names::{AppName, RoomName};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AppProfile, AppStatus, NewApp, NewRoom};

    async fn store_with_room() -> (tempfile::TempDir, Arc<dyn Store>, RoomRef) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url, 2, 0).await.unwrap());
        let new = NewApp {
            name: AppName::parse("a").unwrap(),
            status: AppStatus::Approved,
            owner_id: None,
            profile: AppProfile::default(),
            key: None,
        };
        let app = store.create_app(new, None).await.unwrap();
        let room = store.create_room(app.id, &NewRoom::new(RoomName::parse("r").unwrap(), false), None).await.unwrap();
        (dir, store, RoomRef { id: room.id, app_id: room.app_id, name: room.name })
    }

    fn broker(store: &Arc<dyn Store>, idle_room: Duration) -> LocalBroker {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(8, Arc::clone(&metrics));
        let writer = WriterSettings { keep_per_room: 100, max_age: Duration::from_secs(3600), batch: 16 };
        LocalBroker::new(Arc::clone(store), hub, metrics, LocalSettings { writer, idle_room, nonce_window: HOUR })
    }

    async fn publish(broker: &LocalBroker, room: &RoomRef, durability: Durability) -> u64 {
        let draft = Draft {
            sender: Sender { id: "app".into(), meta: RawValue::from_string("{}".into()).unwrap(), parent: None },
            payload: RawValue::from_string("1".into()).unwrap(),
            nonce: None,
        };
        broker.publish(room, draft, durability).await.unwrap().seq()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn seq_continues_without_a_gap_after_a_clean_shutdown() {
        let (_dir, store, room) = store_with_room().await;
        let first = broker(&store, HOUR);
        for expected in 1..=3 {
            assert_eq!(publish(&first, &room, Durability::Stored).await, expected);
        }
        first.shutdown().await;
        assert_eq!(publish(&broker(&store, HOUR), &room, Durability::Stored).await, 4);
    }

    #[tokio::test]
    async fn seq_skips_ahead_but_never_repeats_after_a_crash() {
        let (_dir, store, room) = store_with_room().await;
        let crashed = broker(&store, HOUR);
        for expected in 1..=3 {
            assert_eq!(publish(&crashed, &room, Durability::Stored).await, expected);
        }
        // No shutdown: the reservation stays, as after a crash.
        assert_eq!(publish(&broker(&store, HOUR), &room, Durability::Stored).await, SEQ_BLOCK + 1);
    }

    #[tokio::test]
    async fn a_nonce_is_published_once_within_its_window() {
        let (_dir, store, room) = store_with_room().await;
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(8, Arc::clone(&metrics));
        let writer = WriterSettings { keep_per_room: 100, max_age: HOUR, batch: 10 };
        let window = Duration::from_millis(200);
        let settings = LocalSettings { writer, idle_room: HOUR, nonce_window: window };
        let broker = LocalBroker::new(Arc::clone(&store), hub, metrics, settings);
        let nonce = comms_protocol::ws::Nonce::parse("n".into()).unwrap();
        let draft = || Draft {
            sender: Sender { id: "ep_1".into(), meta: RawValue::from_string("{}".into()).unwrap(), parent: None },
            payload: RawValue::from_string("1".into()).unwrap(),
            nonce: Some(NonceKey::of_endpoint(1, &nonce)),
        };
        let first = broker.publish(&room, draft(), Durability::Delivered).await.unwrap();
        let Err(BrokerError::Repeated(repeated)) = broker.publish(&room, draft(), Durability::Delivered).await else {
            panic!("published twice within the window")
        };
        assert_eq!(repeated, Receipt::of(&first), "the first publish answers the repeat");
        tokio::time::sleep(window + Duration::from_millis(50)).await;
        let later = broker.publish(&room, draft(), Durability::Delivered).await.unwrap();
        assert_eq!(later.seq(), first.seq() + 1, "after the window, a new message");
    }

    #[tokio::test]
    async fn a_nonce_that_reached_history_is_known_after_a_crash() {
        let (_dir, store, room) = store_with_room().await;
        let nonce = comms_protocol::ws::Nonce::parse("n".into()).unwrap();
        let draft = |endpoint_id| Draft {
            sender: Sender { id: "ep_1".into(), meta: RawValue::from_string("{}".into()).unwrap(), parent: None },
            payload: RawValue::from_string("1".into()).unwrap(),
            nonce: Some(NonceKey::of_endpoint(endpoint_id, &nonce)),
        };
        let crashed = broker(&store, HOUR);
        let first = crashed.publish(&room, draft(1), Durability::Stored).await.unwrap();
        // No shutdown: the next broker starts from the store alone.
        let restarted = broker(&store, HOUR);
        let Err(BrokerError::Repeated(repeated)) = restarted.publish(&room, draft(1), Durability::Stored).await else {
            panic!("published again after the crash")
        };
        assert_eq!(repeated, Receipt::of(&first), "the stored message answers the repeat");
        let other = restarted.publish(&room, draft(2), Durability::Stored).await.unwrap();
        assert_eq!(other.seq(), SEQ_BLOCK + 1, "another endpoint's same nonce is its own message");
    }

    #[tokio::test]
    async fn idle_rooms_leave_memory_and_come_back_whole() {
        let (_dir, store, room) = store_with_room().await;
        let broker = broker(&store, Duration::from_millis(200));
        for expected in 1..=3 {
            assert_eq!(publish(&broker, &room, Durability::Delivered).await, expected);
        }
        assert_eq!(broker.loaded_rooms(), 1);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(broker.loaded_rooms(), 0, "the idle room was dropped");

        assert_eq!(publish(&broker, &room, Durability::Stored).await, 4, "no gap after reloading");
        let history = broker.history(&room, 0, 10).await.unwrap();
        assert_eq!(history.messages.iter().map(|m| m.seq()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }
}
