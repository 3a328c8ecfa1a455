//! The in-process broker: one node, seq and recent history in memory,
//! history persisted through the [`HistoryWriter`].
//!
//! Each room's log is loaded from the store on first use (so seq and history
//! survive a restart) and then kept in memory. Seq assignment, retention and
//! the hand-off to the hub happen under the room's lock, which is what makes
//! every connection see the room's messages in seq order.

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

/// A room's seq counter and retained messages, oldest first.
struct RoomLog {
    last_seq: u64,
    retained: VecDeque<Arc<Published>>,
}

impl RoomLog {
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

type LogCell = OnceCell<Mutex<RoomLog>>;

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

    async fn load(&self, room: &RoomRef) -> Result<Mutex<RoomLog>, BrokerError> {
        let history = self
            .store
            .load_history(room.id, self.max_messages, self.oldest_retained_ms())
            .await?
            .ok_or(BrokerError::RoomGone)?;
        let retained =
            history.messages.into_iter().map(|stored| restore(room, stored).map(Arc::new)).collect::<Result<_, _>>()?;
        Ok(Mutex::new(RoomLog { last_seq: history.last_seq, retained }))
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

fn initialized(cell: &LogCell) -> &Mutex<RoomLog> {
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
        let published = {
            let mut log = initialized(&cell).lock();
            log.last_seq += 1;
            let now = now_ms();
            let message = Message {
                id: uuid::Uuid::now_v7().to_string(),
                seq: log.last_seq,
                room: room.name.clone(),
                timestamp: format_ms(now),
                sender: draft.sender,
                message: draft.payload,
            };
            let published = Arc::new(Published::new(room.id, now, message));
            log.retained.push_back(Arc::clone(&published));
            log.trim(self.max_messages, self.oldest_retained_ms());
            // Still under the room's lock: deliveries happen in seq order.
            self.hub.deliver(&published);
            published
        };
        self.metrics.messages_in.inc();
        self.writer.write(to_stored(&published), durability == Durability::Stored).await?;
        Ok(published)
    }

    async fn history(&self, room: &RoomRef, after_seq: u64, limit: usize) -> Result<History, BrokerError> {
        let cell = self.log(room).await?;
        let mut log = initialized(&cell).lock();
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
    }
}
