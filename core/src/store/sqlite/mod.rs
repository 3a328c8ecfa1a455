//! The SQLite backend: one file in the data folder, WAL mode so readers never
//! wait for the history writer, migrations from `migrations/sqlite` applied
//! at open.
//!
//! Only what is SQLite's own lives here: opening the file with its pools,
//! grouped room creations (`room_batch`), appending messages on the single
//! writer, and that writer's lower CPU priority (`writer_priority`); every
//! other statement is shared with PostgreSQL in `store::sql`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use super::sql::{
    insert_message_events_for, message_webhooks_pattern, message_webhooks_sql, Backend, MessageWebhook, Parameters,
};
use super::{NewRoom, RoomRecord, StoreError, StoredMessage};

mod room_batch;
mod writer_priority;

use room_batch::RoomBatcher;
use writer_priority::{lower_writer_priority, READER_THREAD, WRITER_THREAD};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Connections to one SQLite file: a pool for reads, and a single
/// connection for writes.
///
/// SQLite lets one writer in at a time. With writes spread over a pool, the
/// others would wait on the file lock (sleeping and retrying in the busy
/// handler); funnelled through one connection they wait in an async queue
/// instead and commit back to back. Readers never wait for it (WAL mode).
/// The writer's thread may run at a lower priority (`writer_priority`).
#[derive(Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    rooms: RoomBatcher,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies pending
    /// migrations. The folder of a `sqlite://` file path is created too.
    /// `max_connections` readers; the writer's thread runs at `writer_nice`
    /// (`writer_priority`).
    ///
    /// # Errors
    ///
    /// The folder cannot be created, the file cannot be opened, or a
    /// migration fails.
    pub async fn open(url: &str, max_connections: u32, writer_nice: u8) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last commits on
            // power loss, and several times faster than FULL.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |_, _| {
                Box::pin(async move {
                    if let Err(err) = lower_writer_priority(writer_nice) {
                        tracing::warn!(error = %err, "could not lower the SQLite writer's priority");
                    }
                    Ok(())
                })
            })
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", CHECKPOINT_PAGES)
                    .thread_name(|_| WRITER_THREAD.to_owned()),
            )
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options.pragma("query_only", "ON").thread_name(|_| READER_THREAD.to_owned()))
            .await?;
        Ok(Self { reader, rooms: RoomBatcher::spawn(writer.clone()), writer })
    }

    /// The write connection, for the portal's session store, which keeps
    /// its table in the same file.
    pub fn write_pool(&self) -> SqlitePool {
        self.writer.clone()
    }
}

/// WAL pages after which a commit copies the log into the database file
/// (SQLite's default is 1000). A checkpoint runs inside the commit that
/// triggers it, on the core that also delivers messages: smaller, more
/// frequent ones keep each pause short. With the default, the benchmark's
/// small rooms waited up to 3 ms behind a checkpoint (p99 2.3 ms against
/// 1.3 ms with 100); 25 pages cost more in all and was no better.
const CHECKPOINT_PAGES: &str = "100";

/// Messages one insert writes (9 anonymous parameters each, well under
/// SQLite's limit of 32 766).
const MESSAGES_PER_INSERT: usize = 500;

#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    const LOCK_ROW: &'static str = "";
    const MANY_PARAMETERS: Parameters = Parameters::Anonymous;

    fn ids_in_json(n: usize) -> String {
        format!("SELECT value FROM json_each(${n})")
    }

    async fn create_room(&self, app_id: i64, room: &NewRoom, at_most: Option<u64>) -> Result<RoomRecord, StoreError> {
        self.rooms.create(app_id, room.clone(), at_most).await
    }

    async fn append_messages(&self, batch: &[StoredMessage], keep_per_room: usize) -> Result<(), StoreError> {
        let mut newest: BTreeMap<i64, u64> = BTreeMap::new();
        for message in batch {
            let seq = newest.entry(message.room_id).or_default();
            *seq = (*seq).max(message.seq);
        }
        // Each query is a trip to the writer thread, two context switches
        // on the core that delivers; at one message a batch the trips were
        // most of the writer's time. So a batch is a few queries: the
        // inserts, then everything else in one query of several statements
        // whose text never changes (the rooms come as one JSON parameter),
        // so it is prepared once.
        let mut tx = self.writer.begin().await?;
        for chunk in batch.chunks(MESSAGES_PER_INSERT) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            // A seq is never handed out twice, so a conflict can only be a
            // retry of a batch whose commit succeeded but was not confirmed;
            // skipping it keeps the writer from retrying forever. A message
            // of a room deleted meanwhile is skipped.
            let sql = format!(
                "INSERT INTO messages (room_id, seq, id, created_at, sender_id, sender_meta, payload, sender_parent, \
                   redacted_at, nonce) \
                 SELECT * FROM (VALUES {rows}) AS m WHERE EXISTS (SELECT 1 FROM rooms WHERE id = m.column1) \
                 ON CONFLICT (room_id, seq) DO NOTHING"
            );
            let mut insert = sqlx::query(&sql);
            for message in chunk {
                insert = insert
                    .bind(message.room_id)
                    .bind(message.seq as i64)
                    .bind(&message.id)
                    .bind(message.created_at)
                    .bind(&message.sender_id)
                    .bind(&message.sender_meta)
                    .bind(&message.payload)
                    .bind(&message.sender_parent)
                    .bind(message.redacted_at)
                    .bind(&message.nonce);
            }
            insert.execute(&mut *tx).await?;
        }
        let newest: Vec<String> = newest.iter().map(|(room_id, seq)| format!("[{room_id},{seq}]")).collect();
        let newest = format!("[{}]", newest.join(","));
        let keep = i64::try_from(keep_per_room).unwrap_or(i64::MAX);
        let webhooks = sqlx::query_as::<_, MessageWebhook>(&BATCH_ROOMS_SQL)
            .bind(&newest)
            .bind(keep)
            .bind(&newest)
            .bind(message_webhooks_pattern())
            .bind(&newest)
            .fetch_all(&mut *tx)
            .await?;
        insert_message_events_for::<Self>(&mut *tx, batch, webhooks).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What a batch of messages does to its rooms, after the inserts, in one
/// query: each room's `last_seq` moves up, then the room is trimmed from
/// the stored `last_seq` (which a later batch, from another process on the
/// same file, may have moved past this one), reading only the rows it
/// deletes (the key's range below the cut); then the rooms' webhooks that
/// receive messages are returned ([`message_webhooks_sql`]). Parameters, in
/// order: the rooms as a JSON array of `[room id, newest seq]`, the number
/// kept per room, the rooms again, the events pattern, the rooms again.
static BATCH_ROOMS_SQL: LazyLock<String> = LazyLock::new(|| {
    const ROOM_IDS: &str = "SELECT json_extract(value, '$[0]') FROM json_each(?)";
    format!(
        "UPDATE rooms SET last_seq = MAX(last_seq, v.newest) \
         FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS newest FROM json_each(?)) AS v \
         WHERE rooms.id = v.id; \
         DELETE FROM messages WHERE (room_id, seq) IN \
           (SELECT m.room_id, m.seq FROM rooms AS r \
            JOIN messages AS m ON m.room_id = r.id AND m.seq <= r.last_seq - ? \
            WHERE r.id IN ({ROOM_IDS})); \
         {}",
        message_webhooks_sql("?", ROOM_IDS)
    )
});

#[cfg(test)]
mod tests {
    //! What only the SQLite backend does; the suite every backend passes is
    //! in `store::tests`.

    use super::*;
    use crate::names::{AppName, RoomName};
    use crate::store::{AppProfile, AppStatus, NewApp, NewRoom, Store};

    async fn open_with_app() -> (tempfile::TempDir, SqliteStore, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(&format!("sqlite://{}", dir.path().join("comms.db").display()), 2, 0).await.unwrap();
        let new = NewApp {
            name: AppName::parse("a").unwrap(),
            status: AppStatus::Approved,
            owner_id: None,
            profile: AppProfile::default(),
            key: None,
        };
        let app = store.create_app(new, None).await.unwrap();
        (dir, store, app.id)
    }

    /// Room creations pending together go into one statement
    /// (`room_batch`), where the first request for a name wins.
    #[tokio::test]
    async fn grouped_room_creations_go_to_the_first_request_of_each_name() {
        let (_dir, store, app_id) = open_with_app().await;
        let rooms = ["x", "y", "x", "z", "x", "y"].map(|n| NewRoom::new(RoomName::parse(n).unwrap(), false));
        let results =
            futures_util::future::join_all(rooms.iter().map(|room| Store::create_room(&store, app_id, room, None)))
                .await;
        let created: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(created, [true, true, false, true, false, false]);
    }

    /// A stored value this version cannot read (written by hand, or by a
    /// newer version) is reported as corrupt, not as a database failure.
    #[tokio::test]
    async fn an_unreadable_stored_value_is_corrupt() {
        let (_dir, store, app_id) = open_with_app().await;
        sqlx::query("UPDATE apps SET allowed_origins = 'not an origin' WHERE id = $1")
            .bind(app_id)
            .execute(&store.writer)
            .await
            .unwrap();
        let read = store.app_by_name(&AppName::parse("a").unwrap()).await;
        assert!(matches!(read, Err(StoreError::Corrupt(_))), "{read:?}");
    }

    /// The outbox's queries read it through their partial indexes: a
    /// query that scanned the outbox would read every delivery kept (a
    /// week's, bodies included), and the prune would hold the writer as
    /// long.
    #[tokio::test]
    async fn the_outbox_queries_read_no_table_whole() {
        use crate::store::sql::{
            APPS_WITH_DUE_DELIVERIES_SQL, FAILING_WEBHOOKS_SQL, LEASE_DELIVERIES_SQL, PRUNE_DELIVERIES_SQL,
        };
        let (_dir, store, _) = open_with_app().await;
        let queries = [
            (APPS_WITH_DUE_DELIVERIES_SQL, 1, "webhook_deliveries_pending"),
            (LEASE_DELIVERIES_SQL, 4, "webhook_deliveries_pending"),
            (FAILING_WEBHOOKS_SQL, 1, "webhook_deliveries_failing"),
            (PRUNE_DELIVERIES_SQL, 2, "webhook_deliveries_finished"),
        ];
        for (sql, parameters, index) in queries {
            let text = format!("EXPLAIN QUERY PLAN {sql}");
            let mut explain = sqlx::query_as(&text);
            for _ in 0..parameters {
                explain = explain.bind(0_i64);
            }
            // Each step is (id, parent, unused, detail).
            let steps: Vec<(i64, i64, i64, String)> = explain.fetch_all(&store.writer).await.unwrap();
            let plan: Vec<String> = steps.into_iter().map(|(.., detail)| detail).collect();
            assert!(plan.iter().any(|step| step.contains(&format!("INDEX {index}"))), "{sql}: {plan:?}");
            let whole = plan.iter().find(|step| step.starts_with("SCAN") && !step.contains(" USING "));
            assert!(whole.is_none(), "{sql}: {plan:?}");
        }
    }
}
