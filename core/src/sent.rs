//! How many messages each endpoint published (`messages_sent`), counted
//! off the hot path.
//!
//! A publish through an endpoint without a budget only adds one to this
//! node's pending count; a task writes the pending counts to the store
//! once a second, and the API adds what is still pending here to what the
//! store says, so on one node the figure is exact when read. Endpoints with
//! a budget are counted in the store at once instead, by the same
//! conditional update that enforces the budget
//! ([`Store::spend_budget`](crate::store::Store::spend_budget)).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::store::Store;

/// How often pending counts are written to the store.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// This node's counts not yet in the store. Share it as `Arc<SentCounts>`.
#[derive(Default)]
pub struct SentCounts {
    pending: Mutex<HashMap<i64, u64>>,
}

impl SentCounts {
    /// Counts one message published through endpoint `endpoint_id`.
    pub fn add(&self, endpoint_id: i64) {
        *self.pending.lock().entry(endpoint_id).or_default() += 1;
    }

    /// Messages of `endpoint_id` counted here and not yet in the store.
    pub fn pending(&self, endpoint_id: i64) -> u64 {
        self.pending.lock().get(&endpoint_id).copied().unwrap_or(0)
    }

    /// Writes the pending counts to the store. They stay pending (and
    /// shown) until written, and are kept for the next try if the store
    /// fails.
    pub async fn flush(&self, store: &dyn Store) {
        let counts: Vec<(i64, u64)> = self.pending.lock().iter().map(|(id, n)| (*id, *n)).collect();
        if counts.is_empty() {
            return;
        }
        if let Err(err) = store.add_messages_sent(&counts).await {
            tracing::warn!(error = %err, "could not write endpoints' message counts; retrying");
            return;
        }
        let mut pending = self.pending.lock();
        for (id, written) in counts {
            if let Some(left) = pending.get_mut(&id) {
                *left -= written;
                if *left == 0 {
                    pending.remove(&id);
                }
            }
        }
    }

    /// Writes the pending counts every second, until the runtime stops.
    pub fn spawn_flusher(self: &Arc<Self>, store: Arc<dyn Store>) {
        let counts = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tick.tick().await;
                counts.flush(&*store).await;
            }
        });
    }
}
