//! The PostgreSQL backend, for deployments where several nodes share one
//! database (`DATABASE_URL=postgres://…`). Same schema and semantics as the
//! SQLite backend, migrations from `migrations/postgres` applied at open.
//!
//! Only what is PostgreSQL's own lives here: connecting, and appending
//! messages with arrays and row locks; every other statement is shared with
//! SQLite in `store::sql`. One pool serves reads and writes: PostgreSQL has
//! no single-writer lock, so SQLite's separate write connection and its
//! grouped room creations (`sqlite/room_batch.rs`) have no job here.
//!
//! Unlike the SQLite file, the database may be written by several nodes at
//! once, so every write that moves a counter only ever raises it, and
//! appending a message some node already stored is a no-op.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Postgres};

use super::sql::{insert_message_events, insert_room, Backend, Parameters};
use super::{NewRoom, RoomRecord, StoreError, StoredMessage};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// How long opening the store, and later any query, waits for a connection
/// before giving up: an unreachable server fails fast instead of hanging.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`)
    /// with up to `max_connections` connections and applies pending
    /// migrations. Nodes starting together are safe: sqlx holds an advisory
    /// lock while migrating.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when no connection is made within
    /// [`CONNECT_TIMEOUT`]; the server's refusal (authentication, unknown
    /// database) as [`StoreError::Database`]; a database whose encoding is not
    /// UTF-8; or a failed migration.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?
            .application_name("comms")
            // Keeps the notices of every start (`… already exists, skipping`)
            // out of the log.
            .options([("client_min_messages", "warning")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await?;
        // Payloads are kept byte for byte; another server encoding would
        // convert them, or refuse characters it cannot hold.
        let encoding: String = sqlx::query_scalar("SHOW server_encoding").fetch_one(&pool).await?;
        if encoding != "UTF8" {
            return Err(StoreError::Database(
                format!("the database's encoding is {encoding}; comms needs UTF8 (CREATE DATABASE … ENCODING 'UTF8')")
                    .into(),
            ));
        }
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for the portal's session store, which keeps its table in
    /// the same database.
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }
}

#[async_trait]
impl Backend for PostgresStore {
    type Db = Postgres;

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    const LOCK_ROW: &'static str = " FOR NO KEY UPDATE";
    const MANY_PARAMETERS: Parameters = Parameters::Numbered;

    fn ids_in_json(n: usize) -> String {
        format!("SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(${n} AS json))")
    }

    async fn create_room(&self, app_id: i64, room: &NewRoom, at_most: Option<u64>) -> Result<RoomRecord, StoreError> {
        insert_room(&self.pool, app_id, room, at_most, Self::LOCK_ROW).await
    }

    async fn append_messages(&self, batch: &[StoredMessage], keep_per_room: usize) -> Result<(), StoreError> {
        let mut newest: BTreeMap<i64, i64> = BTreeMap::new();
        for message in batch {
            let seq = newest.entry(message.room_id).or_default();
            *seq = (*seq).max(message.seq as i64);
        }
        if newest.is_empty() {
            return Ok(());
        }
        let room_ids: Vec<i64> = newest.keys().copied().collect();
        let mut tx = self.pool.begin().await?;
        // Lock the rooms first, in id order. A room deleted meanwhile is not
        // returned and its messages are skipped; one still here cannot be
        // deleted before this commits (so no foreign-key failure midway).
        // Taking the locks in one order on every node keeps two nodes
        // writing overlapping rooms from deadlocking: the second waits.
        let live: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
                .bind(&room_ids)
                .fetch_all(&mut *tx)
                .await?;
        let kept: Vec<&StoredMessage> = batch.iter().filter(|m| live.binary_search(&m.room_id).is_ok()).collect();
        if kept.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        // A seq is never handed out twice, so a conflict is either a retry of
        // a batch whose commit was not confirmed or the same message written
        // by another node: either way it is already there.
        sqlx::query(
            "INSERT INTO messages (room_id, seq, id, created_at, sender_id, sender_meta, payload, sender_parent, \
               redacted_at, nonce) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], \
                                  $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::TEXT[]) \
             ON CONFLICT (room_id, seq) DO NOTHING",
        )
        .bind(kept.iter().map(|m| m.room_id).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.seq as i64).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.created_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.sender_id.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.sender_meta.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.payload.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.sender_parent.as_deref()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.redacted_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.nonce.as_deref()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        let seqs: Vec<i64> = live.iter().map(|id| newest[id]).collect();
        // Another node may have stored later messages already: never move
        // last_seq back, and trim from the stored one.
        let last_seqs: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE rooms SET last_seq = GREATEST(rooms.last_seq, b.seq) \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS b (id, seq) WHERE rooms.id = b.id \
             RETURNING rooms.id, rooms.last_seq",
        )
        .bind(&live)
        .bind(&seqs)
        .fetch_all(&mut *tx)
        .await?;
        let keep = keep_per_room as i64;
        // Until a room has more messages than it keeps there is nothing to
        // drop, and most batches touch many young rooms.
        let (trimmed, below): (Vec<i64>, Vec<i64>) =
            last_seqs.into_iter().filter(|(_, last)| *last > keep).map(|(id, last)| (id, last - keep)).unzip();
        if !trimmed.is_empty() {
            sqlx::query(
                "DELETE FROM messages m USING UNNEST($1::BIGINT[], $2::BIGINT[]) AS t (room_id, below) \
                 WHERE m.room_id = t.room_id AND m.seq <= t.below",
            )
            .bind(&trimmed)
            .bind(&below)
            .execute(&mut *tx)
            .await?;
        }
        insert_message_events::<Self>(&mut *tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }
}
