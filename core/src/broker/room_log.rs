//! One room's log as the local broker keeps it in memory: the seq counter,
//! the reserved seq block, and the retained messages.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use crate::message::{NonceKey, Published, Receipt};
use crate::store::RoomHistory;
use crate::time::now_ms;

/// A loaded room. Its state sits under a sync lock that is never held across
/// an await; the async `reserving` lock lets one task at a time reserve the
/// next seq block in the store.
pub(super) struct RoomLog {
    state: Mutex<LogState>,
    pub(super) reserving: tokio::sync::Mutex<()>,
}

/// What the lock guards.
pub(super) struct LogState {
    pub(super) last_seq: u64,
    /// Seqs up to this one may be handed out without asking the store.
    pub(super) reserved_seq: u64,
    /// Retained messages, oldest first, in seq order.
    pub(super) retained: VecDeque<Arc<Published>>,
    /// Last publish or read, for evicting idle rooms from memory.
    pub(super) touched: Instant,
    /// Set when the log is dropped from memory: whoever still holds it must
    /// load the room afresh, so two logs never hand out seqs for one room.
    pub(super) evicted: bool,
    /// Messages published under a nonce within the window.
    pub(super) nonces: NonceBook,
}

/// A room's messages published under a nonce, remembered for the nonce
/// window (a room's log stays in memory at least that long after its last
/// publish, see `history.idle_room_secs`), and at most [`Self::MOST`] of
/// them: past that the oldest are forgotten first.
#[derive(Default)]
pub(super) struct NonceBook {
    by_key: HashMap<NonceKey, Receipt>,
    /// When each was recorded, oldest first.
    order: VecDeque<(Instant, NonceKey)>,
}

impl NonceBook {
    /// Nonces one room remembers at most: a client sending fresh nonces as
    /// fast as its rate allows cannot grow a room's memory without bound.
    const MOST: usize = 100_000;

    /// The receipt of the message published under `key` within `window`,
    /// if any.
    pub(super) fn find(&mut self, key: &NonceKey, window: Duration) -> Option<Receipt> {
        while self.order.front().is_some_and(|(at, _)| at.elapsed() >= window) {
            if let Some((_, old)) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
        self.by_key.get(key).cloned()
    }

    /// Remembers that the message of `receipt` went out under `key` now.
    pub(super) fn record(&mut self, key: NonceKey, receipt: Receipt) {
        self.record_at(Instant::now(), key, receipt);
    }

    /// Remembers that the message of `receipt` went out under `key` at
    /// `at`; calls come in the order of `at`.
    fn record_at(&mut self, at: Instant, key: NonceKey, receipt: Receipt) {
        if self.order.len() >= Self::MOST {
            if let Some((_, old)) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
        self.by_key.insert(key.clone(), receipt);
        self.order.push_back((at, key));
    }
}

impl RoomLog {
    /// A log restored from the store, with the nonces its retained
    /// messages were published under within `nonce_window`: a client that
    /// resends after a restart, even one after a crash, gets the first
    /// publish's ack for every message that reached history.
    ///
    /// # Errors
    ///
    /// A stored payload or meta that is not valid JSON.
    pub(super) fn restore(
        room_id: i64,
        room_name: &str,
        history: RoomHistory,
        nonce_window: Duration,
    ) -> Result<Self, serde_json::Error> {
        let retained = history
            .messages
            .iter()
            .map(|stored| Published::from_stored(room_id, room_name, stored).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let mut nonces = NonceBook::default();
        let (now, now_ms) = (Instant::now(), now_ms());
        for stored in history.messages {
            let age = Duration::from_millis(u64::try_from(now_ms - stored.created_at).unwrap_or(0));
            let (Some(key), Some(at)) = (stored.nonce, now.checked_sub(age)) else { continue };
            if age < nonce_window {
                nonces.record_at(at, NonceKey::from_stored(key), Receipt { id: stored.id, seq: stored.seq });
            }
        }
        let state = LogState {
            last_seq: history.last_seq,
            reserved_seq: history.last_seq,
            retained,
            touched: Instant::now(),
            evicted: false,
            nonces,
        };
        Ok(Self { state: Mutex::new(state), reserving: tokio::sync::Mutex::new(()) })
    }

    /// Locks the state.
    pub(super) fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock()
    }
}

impl LogState {
    /// Drops messages past the count and age limits.
    pub(super) fn trim(&mut self, max_messages: usize, oldest_ms: i64) {
        while self.retained.len() > max_messages {
            self.retained.pop_front();
        }
        while self.retained.front().is_some_and(|m| m.created_ms < oldest_ms) {
            self.retained.pop_front();
        }
    }

    /// Oldest retained seq, or `last_seq + 1` when none is retained.
    pub(super) fn first_seq(&self) -> u64 {
        self.retained.front().map_or(self.last_seq + 1, |m| m.seq())
    }
}
