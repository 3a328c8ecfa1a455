//! Writes published messages to the store in batches, off the fan-out path.
//!
//! Publishers hand a message to a bounded channel and go on; one task drains
//! whatever has queued up into a single transaction (group commit), so the
//! database sees one round trip per batch, never one per message or per
//! recipient. A full channel makes publishers wait: back pressure rather
//! than lost history. A failed write is retried with backoff, never dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::BrokerError;
use crate::store::{Store, StoredMessage};
use crate::time::now_ms;

enum Command {
    Write(StoredMessage, Option<oneshot::Sender<()>>),
    Flush(oneshot::Sender<()>),
}

/// Handle of the writer task; clones share the task, which ends when every
/// handle is dropped.
#[derive(Clone)]
pub struct HistoryWriter {
    commands: mpsc::Sender<Command>,
    /// For redactions, written after the messages queued before them.
    store: Arc<dyn Store>,
}

/// What the writer keeps and how it batches.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Messages kept per room; older ones are deleted as new ones are stored.
    pub keep_per_room: usize,
    /// Messages older than this are deleted.
    pub max_age: Duration,
    /// Most messages written in one transaction.
    pub batch: usize,
}

const QUEUE: usize = 8192;
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long a publisher waiting for its message to be stored waits before
/// answering 503; the write itself goes on and is retried until it lands.
const STORED_WAIT: Duration = Duration::from_secs(10);

impl HistoryWriter {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Arc<dyn Store>, settings: WriterSettings) -> Self {
        let (commands, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(Arc::clone(&store), settings, receiver));
        Self { commands, store }
    }

    /// Queues a message; with `wait`, returns only once it is committed.
    ///
    /// # Errors
    ///
    /// [`BrokerError::ShuttingDown`] if the writer task has stopped.
    pub async fn write(&self, message: StoredMessage, wait: bool) -> Result<(), BrokerError> {
        let (ack, done) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // A queue full for this long means the database has been down a
        // while: answer 503 rather than hang the publisher.
        self.commands.send_timeout(Command::Write(message, ack), STORED_WAIT).await.map_err(|err| match err {
            mpsc::error::SendTimeoutError::Timeout(_) => BrokerError::StoreTimeout,
            mpsc::error::SendTimeoutError::Closed(_) => BrokerError::ShuttingDown,
        })?;
        if let Some(done) = done {
            tokio::time::timeout(STORED_WAIT, done)
                .await
                .map_err(|_| BrokerError::StoreTimeout)?
                .map_err(|_| BrokerError::ShuttingDown)?;
        }
        Ok(())
    }

    /// Returns once everything queued before this call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Like [`HistoryWriter::flush`], giving up after the time a publisher
    /// waits for its message to be stored.
    ///
    /// # Errors
    ///
    /// [`BrokerError::StoreTimeout`] when the database does not take the
    /// queued messages in time (they stay queued).
    pub async fn flush_in_time(&self) -> Result<(), BrokerError> {
        tokio::time::timeout(STORED_WAIT, self.flush()).await.map_err(|_| BrokerError::StoreTimeout)
    }

    /// Marks stored messages of a room redacted at `at_ms`, once this
    /// node's queued messages (which may hold them) are written.
    ///
    /// # Errors
    ///
    /// [`BrokerError::StoreTimeout`] when the queue does not drain in time;
    /// the store's failure.
    pub async fn redact(&self, room_id: i64, seqs: &[u64], at_ms: i64) -> Result<(), BrokerError> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.flush_in_time().await?;
        Ok(self.store.redact_messages(room_id, seqs, at_ms).await?)
    }
}

async fn run(store: Arc<dyn Store>, settings: WriterSettings, mut commands: mpsc::Receiver<Command>) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let mut batch = Vec::with_capacity(settings.batch);
    let mut acks = Vec::new();
    loop {
        let first = tokio::select! {
            command = commands.recv() => match command {
                Some(command) => command,
                None => return,
            },
            _ = prune.tick() => {
                prune_old(&*store, settings.max_age).await;
                continue;
            }
        };
        take(first, &mut batch, &mut acks);
        while batch.len() < settings.batch {
            match commands.try_recv() {
                Ok(command) => take(command, &mut batch, &mut acks),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_until_done(&*store, &batch, settings.keep_per_room).await;
            batch.clear();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

fn take(command: Command, batch: &mut Vec<StoredMessage>, acks: &mut Vec<oneshot::Sender<()>>) {
    match command {
        Command::Write(message, ack) => {
            batch.push(message);
            acks.extend(ack);
        }
        Command::Flush(ack) => acks.push(ack),
    }
}

async fn write_until_done(store: &dyn Store, batch: &[StoredMessage], keep_per_room: usize) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.append_messages(batch, keep_per_room).await {
            Ok(()) => return,
            Err(err) => {
                tracing::error!(error = %err, messages = batch.len(), retry_in = ?backoff, "writing history failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn prune_old(store: &dyn Store, max_age: Duration) {
    let before = now_ms() - max_age.as_millis() as i64;
    match store.prune_history(before).await {
        Ok(0) => {}
        Ok(pruned) => tracing::debug!(pruned, "pruned aged-out history"),
        Err(err) => tracing::warn!(error = %err, "pruning history failed"),
    }
}
