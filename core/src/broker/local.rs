//! The in-process broker: one node, seq and recent history in memory,
//! history persisted through the [`HistoryWriter`].
//!
//! Each room's log is loaded from the store on first use (so seq and history
//! survive a restart) and then kept in memory. Seq assignment, retention and
//! the hand-off to the hub happen under the room's lock, which is what makes
//! every connection see the room's messages in seq order.
//!
//! Seqs are handed out from blocks reserved in the store beforehand (one
//! write per [`SEQ_BLOCK`] messages), so a crash that loses the last batch
//! of history can make numbering skip ahead, but never reuse a seq a client
//! has already seen.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use comms_protocol::{Message, Sender};
use parking_lot::Mutex;
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use super::writer::{HistoryWriter, WriterSettings};
use super::{Broker, BrokerError, Draft, Durability, History, Published, RoomRef};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::{Store, StoredMessage};
use crate::time::{format_ms, now_ms};

/// Seqs reserved per store write.
pub const SEQ_BLOCK: u64 = 1000;

/// A room's seq counter and retained messages, oldest first.
struct LogState {
    last_seq: u64,
    /// Seqs up to this one may be handed out without asking the store.
    reserved_seq: u64,
    retained: VecDeque<Arc<Published>>,
}

/// A loaded room: its state under a sync lock (never held across an await),
/// and an async lock so one task at a time reserves the next block.
struct RoomLog {
    state: Mutex<LogState>,
    reserving: tokio::sync::Mutex<()>,
}

impl LogState {
    fn trim(&mut self, max_messages: usize, oldest_ms: i64) {
        while self.retained.len() > max_messages {
            self.retained.pop_front();
        }
        while self.retained.front().is_some_and(|m| m.created_ms < oldest_ms) {
            self.retained.pop_front();
        }
    }

    fn first_seq(&self) -> u64 {
        self.retained.front().map_or(self.last_seq + 1, |m| m.seq())
    }
}

type LogCell = OnceCell<RoomLog>;

/// The single-node broker. See the module docs.
pub struct LocalBroker {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    writer: HistoryWriter,
    logs: Mutex<HashMap<i64, Arc<LogCell>>>,
    max_messages: usize,
    max_age: Duration,
}

impl LocalBroker {
    /// A broker delivering to `hub`, persisting to `store`.
    pub fn new(store: Arc<dyn Store>, hub: Arc<Hub>, metrics: Arc<Metrics>, settings: WriterSettings) -> Self {
        Self {
            writer: HistoryWriter::spawn(Arc::clone(&store), settings),
            store,
            hub,
            metrics,
            logs: Mutex::new(HashMap::new()),
            max_messages: settings.keep_per_room,
            max_age: settings.max_age,
        }
    }

    fn oldest_retained_ms(&self) -> i64 {
        now_ms() - self.max_age.as_millis() as i64
    }

    async fn log(&self, room: &RoomRef) -> Result<Arc<LogCell>, BrokerError> {
        let cell = Arc::clone(self.logs.lock().entry(room.id).or_default());
        cell.get_or_try_init(|| self.load(room)).await?;
        Ok(cell)
    }

    async fn load(&self, room: &RoomRef) -> Result<RoomLog, BrokerError> {
        let history = self
            .store
            .load_history(room.id, self.max_messages, self.oldest_retained_ms())
            .await?
            .ok_or(BrokerError::RoomGone)?;
        let retained =
            history.messages.into_iter().map(|stored| restore(room, stored).map(Arc::new)).collect::<Result<_, _>>()?;
        Ok(RoomLog {
            state: Mutex::new(LogState { last_seq: history.last_seq, reserved_seq: history.last_seq, retained }),
            reserving: tokio::sync::Mutex::new(()),
        })
    }

    /// Makes sure at least one seq is reserved, writing the next block's end
    /// to the store if none is left.
    async fn reserve(&self, room_id: i64, log: &RoomLog) -> Result<(), BrokerError> {
        let _one_at_a_time = log.reserving.lock().await;
        let target = {
            let state = log.state.lock();
            if state.last_seq < state.reserved_seq {
                return Ok(());
            }
            state.reserved_seq + SEQ_BLOCK
        };
        self.store.reserve_seq(room_id, target).await?;
        log.state.lock().reserved_seq = target;
        Ok(())
    }
}

fn restore(room: &RoomRef, stored: StoredMessage) -> Result<Published, serde_json::Error> {
    let message = Message {
        id: stored.id,
        seq: stored.seq,
        room: room.name.clone(),
        timestamp: format_ms(stored.created_at),
        sender: Sender { id: stored.sender_id, meta: RawValue::from_string(stored.sender_meta)? },
        message: RawValue::from_string(stored.payload)?,
    };
    Ok(Published::new(room.id, stored.created_at, message))
}

fn to_stored(published: &Published) -> StoredMessage {
    let message = &published.message;
    StoredMessage {
        room_id: published.room_id,
        seq: message.seq,
        id: message.id.clone(),
        created_at: published.created_ms,
        sender_id: message.sender.id.clone(),
        sender_meta: message.sender.meta.get().to_owned(),
        payload: message.message.get().to_owned(),
    }
}

fn initialized(cell: &LogCell) -> &RoomLog {
    cell.get().expect("LocalBroker::log initializes the cell")
}

#[async_trait]
impl Broker for LocalBroker {
    async fn publish(
        &self,
        room: &RoomRef,
        draft: Draft,
        durability: Durability,
    ) -> Result<Arc<Published>, BrokerError> {
        let cell = self.log(room).await?;
        let log = initialized(&cell);
        let mut draft = Some(draft);
        let published = loop {
            {
                let mut state = log.state.lock();
                if state.last_seq < state.reserved_seq {
                    let Draft { sender, payload } = draft.take().expect("taken once, then the loop ends");
                    state.last_seq += 1;
                    let now = now_ms();
                    let message = Message {
                        id: uuid::Uuid::now_v7().to_string(),
                        seq: state.last_seq,
                        room: room.name.clone(),
                        timestamp: format_ms(now),
                        sender,
                        message: payload,
                    };
                    let published = Arc::new(Published::new(room.id, now, message));
                    state.retained.push_back(Arc::clone(&published));
                    state.trim(self.max_messages, self.oldest_retained_ms());
                    // Still under the room's lock: deliveries happen in seq order.
                    self.hub.deliver(&published);
                    break published;
                }
            }
            self.reserve(room.id, log).await?;
        };
        self.metrics.messages_in.inc();
        self.writer.write(to_stored(&published), durability == Durability::Stored).await?;
        Ok(published)
    }

    async fn history(&self, room: &RoomRef, after_seq: u64, limit: usize) -> Result<History, BrokerError> {
        let cell = self.log(room).await?;
        let mut log = initialized(&cell).state.lock();
        log.trim(self.max_messages, self.oldest_retained_ms());
        let start = log.retained.partition_point(|m| m.seq() <= after_seq);
        Ok(History {
            first_seq: log.first_seq(),
            last_seq: log.last_seq,
            messages: log.retained.range(start..).take(limit).cloned().collect(),
        })
    }

    async fn forget_room(&self, room_id: i64) {
        self.logs.lock().remove(&room_id);
    }

    async fn ready(&self) -> Result<(), BrokerError> {
        Ok(self.store.ping().await?)
    }

    async fn shutdown(&self) {
        self.writer.flush().await;
        if let Err(err) = self.store.release_seq_reservations().await {
            tracing::warn!(error = %err, "could not release seq reservations; numbering will skip ahead");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{AppName, RoomName};
    use crate::secrets::NewApiKey;
    use crate::store::sqlite::SqliteStore;
    use crate::store::AppStatus;

    async fn store_with_room() -> (tempfile::TempDir, Arc<dyn Store>, RoomRef) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url, 2).await.unwrap());
        let name = AppName::parse("a").unwrap();
        let app = store.create_app(&name, AppStatus::Approved, NewApiKey::generate().hash).await.unwrap();
        let room = store.create_room(app.id, &RoomName::parse("r").unwrap()).await.unwrap();
        (dir, store, RoomRef { id: room.id, name: room.name })
    }

    fn broker(store: &Arc<dyn Store>) -> LocalBroker {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(8, Arc::clone(&metrics));
        let settings = WriterSettings { keep_per_room: 100, max_age: Duration::from_secs(3600), batch: 16 };
        LocalBroker::new(Arc::clone(store), hub, metrics, settings)
    }

    async fn publish(broker: &LocalBroker, room: &RoomRef) -> u64 {
        let draft = Draft {
            sender: Sender { id: "app".into(), meta: RawValue::from_string("{}".into()).unwrap() },
            payload: RawValue::from_string("1".into()).unwrap(),
        };
        broker.publish(room, draft, Durability::Stored).await.unwrap().seq()
    }

    #[tokio::test]
    async fn seq_continues_without_a_gap_after_a_clean_shutdown() {
        let (_dir, store, room) = store_with_room().await;
        let first = broker(&store);
        for expected in 1..=3 {
            assert_eq!(publish(&first, &room).await, expected);
        }
        first.shutdown().await;
        assert_eq!(publish(&broker(&store), &room).await, 4);
    }

    #[tokio::test]
    async fn seq_skips_ahead_but_never_repeats_after_a_crash() {
        let (_dir, store, room) = store_with_room().await;
        let crashed = broker(&store);
        for expected in 1..=3 {
            assert_eq!(publish(&crashed, &room).await, expected);
        }
        // No shutdown: the reservation stays, as after a crash.
        assert_eq!(publish(&broker(&store), &room).await, SEQ_BLOCK + 1);
    }
}
