//! The PostgreSQL backend, for deployments where several nodes share one
//! database (`DATABASE_URL=postgres://…`). Same schema and semantics as the
//! SQLite backend, migrations from `migrations/postgres` applied at open.
//!
//! One pool serves reads and writes: PostgreSQL has no single-writer lock,
//! so SQLite's separate write connection and its grouped room creations
//! (`sqlite/room_batch.rs`) have no job here.
//!
//! Unlike the SQLite file, the database may be written by several nodes at
//! once, so every write that moves a counter only ever raises it
//! (`GREATEST`), and appending a message some node already stored is a
//! no-op.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use comms_protocol::Permission;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use super::{
    AccountRecord, AppFilter, AppProfile, AppRecord, AppStatus, AppSummary, AuditEntry, EndpointAccess, EndpointRecord,
    NewApp, NewEndpoint, RoomHistory, RoomRecord, Store, StoreError, StoredMessage,
};
use crate::names::{AppName, RoomName};
use crate::origins::AllowedOrigins;
use crate::secrets::ApiKeyHash;
use crate::time::now_ms;

mod accounts;

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
            .await
            .map_err(|err| match err {
                sqlx::Error::PoolTimedOut => StoreError::Unavailable,
                other => StoreError::Database(other),
            })?;
        // Payloads are kept byte for byte; another server encoding would
        // convert them, or refuse characters it cannot hold.
        let encoding: String = sqlx::query_scalar("SHOW server_encoding").fetch_one(&pool).await?;
        if encoding != "UTF8" {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("the database's encoding is {encoding}; comms needs UTF8 (CREATE DATABASE … ENCODING 'UTF8')")
                    .into(),
            )));
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

fn conflict_or(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::ParentMissing,
        _ => StoreError::Database(err),
    }
}

fn app_from(row: &PgRow) -> Result<AppRecord, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(AppRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: AppStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("app status {status:?}")))?,
        owner_id: row.try_get("owner_id")?,
        created_at: row.try_get("created_at")?,
        allowed_origins: origins_from(row)?,
    })
}

fn origins_from(row: &PgRow) -> Result<AllowedOrigins, StoreError> {
    let stored: String = row.try_get("allowed_origins")?;
    AllowedOrigins::parse(stored.split_whitespace())
        .map_err(|err| StoreError::Corrupt(format!("allowed origins {stored:?}: {err}")))
}

fn room_from(row: &PgRow) -> Result<RoomRecord, StoreError> {
    Ok(RoomRecord {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        endpoint_count: row.try_get::<i64, _>("endpoint_count")? as u64,
    })
}

fn endpoint_from(row: &PgRow) -> Result<EndpointRecord, StoreError> {
    let permission: String = row.try_get("permission")?;
    Ok(EndpointRecord {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        code: row.try_get("code")?,
        room_id: row.try_get("room_id")?,
        room_name: row.try_get("room_name")?,
        permission: Permission::parse(&permission)
            .ok_or_else(|| StoreError::Corrupt(format!("endpoint permission {permission:?}")))?,
        meta: row.try_get("meta")?,
        created_at: row.try_get("created_at")?,
    })
}

fn message_from(row: &PgRow) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        room_id: row.try_get("room_id")?,
        seq: row.try_get::<i64, _>("seq")? as u64,
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        sender_id: row.try_get("sender_id")?,
        sender_meta: row.try_get("sender_meta")?,
        payload: row.try_get("payload")?,
    })
}

const ROOM_COLUMNS: &str = "r.id, r.app_id, r.name, r.created_at, \
     (SELECT COUNT(*) FROM endpoints e WHERE e.room_id = r.id) AS endpoint_count";

const ENDPOINT_COLUMNS: &str =
    "e.id, e.public_id, e.code, e.room_id, r.name AS room_name, e.permission, e.meta, e.created_at";

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_app(&self, new: NewApp) -> Result<AppRecord, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO apps (name, status, owner_id, description, website, intended_use, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, name, status, owner_id, created_at, allowed_origins",
        )
        .bind(new.name.as_str())
        .bind(new.status.as_str())
        .bind(new.owner_id)
        .bind(&new.profile.description)
        .bind(&new.profile.website)
        .bind(&new.profile.intended_use)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_or)?;
        let app = app_from(&row)?;
        if let Some(key) = new.key {
            sqlx::query("INSERT INTO api_keys (app_id, key_hash, created_at) VALUES ($1, $2, $3)")
                .bind(app.id)
                .bind(key.to_hex())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(app)
    }

    async fn app_by_name(&self, name: &AppName) -> Result<Option<AppRecord>, StoreError> {
        let row =
            sqlx::query("SELECT id, name, status, owner_id, created_at, allowed_origins FROM apps WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(app_from).transpose()
    }

    async fn list_apps(&self, filter: AppFilter) -> Result<Vec<AppSummary>, StoreError> {
        let (owner, id) = match filter {
            AppFilter::All => (None, None),
            AppFilter::OwnedBy(owner) => (Some(owner), None),
            AppFilter::Id(id) => (None, Some(id)),
        };
        let rows = sqlx::query(
            "SELECT a.id, a.name, a.status, a.owner_id, a.created_at, a.allowed_origins, a.description, a.website, a.intended_use, \
               (SELECT email FROM accounts o WHERE o.id = a.owner_id) AS owner_email, \
               (SELECT COUNT(*) FROM api_keys k WHERE k.app_id = a.id AND k.revoked_at IS NULL) AS active_keys, \
               (SELECT COUNT(*) FROM rooms r WHERE r.app_id = a.id) AS rooms \
             FROM apps a WHERE ($1::BIGINT IS NULL OR a.owner_id = $1) AND ($2::BIGINT IS NULL OR a.id = $2) ORDER BY a.id",
        )
        .bind(owner)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AppSummary {
                    app: app_from(row)?,
                    profile: AppProfile {
                        description: row.try_get("description")?,
                        website: row.try_get("website")?,
                        intended_use: row.try_get("intended_use")?,
                    },
                    owner_email: row.try_get("owner_email")?,
                    active_keys: row.try_get::<i64, _>("active_keys")? as u64,
                    rooms: row.try_get::<i64, _>("rooms")? as u64,
                })
            })
            .collect()
    }

    async fn set_app_status(&self, app_id: i64, status: AppStatus) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_allowed_origins(&self, app_id: i64, origins: &AllowedOrigins) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET allowed_origins = $1 WHERE id = $2")
            .bind(origins.to_stored())
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn replace_api_keys(&self, app_id: i64, new: ApiKeyHash) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE app_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(app_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO api_keys (app_id, key_hash, created_at) VALUES ($1, $2, $3)")
            .bind(app_id)
            .bind(new.to_hex())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_api_keys(&self, app_id: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE app_id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_app(&self, app_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM apps WHERE id = $1").bind(app_id).execute(&self.pool).await?;
        Ok(())
    }

    async fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<AccountRecord, StoreError> {
        accounts::create(&self.pool, email, password_hash, is_admin).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        accounts::by_email(&self.pool, email).await
    }

    async fn account_by_id(&self, id: i64) -> Result<Option<AccountRecord>, StoreError> {
        accounts::by_id(&self.pool, id).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        accounts::record_audit(&self.pool, entry).await
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        accounts::audit_log(&self.pool, limit).await
    }

    async fn app_by_key(&self, key: ApiKeyHash) -> Result<Option<AppRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.status, a.owner_id, a.created_at, a.allowed_origins \
             FROM api_keys k JOIN apps a ON a.id = k.app_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(key.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(app_from).transpose()
    }

    async fn create_room(&self, app_id: i64, name: &RoomName) -> Result<RoomRecord, StoreError> {
        let row = sqlx::query(
            "INSERT INTO rooms (app_id, name, created_at) VALUES ($1, $2, $3) \
             RETURNING id, app_id, name, created_at, 0::BIGINT AS endpoint_count",
        )
        .bind(app_id)
        .bind(name.as_str())
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_or)?;
        room_from(&row)
    }

    async fn room(&self, app_id: i64, name: &RoomName) -> Result<Option<RoomRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.app_id = $1 AND r.name = $2"))
            .bind(app_id)
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn list_rooms(&self, app_id: i64) -> Result<Vec<RoomRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.app_id = $1 ORDER BY r.id"))
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(room_from).collect()
    }

    async fn delete_room(&self, app_id: i64, name: &RoomName) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("DELETE FROM rooms WHERE app_id = $1 AND name = $2 RETURNING id")
            .bind(app_id)
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }

    async fn create_endpoint(&self, new: NewEndpoint) -> Result<EndpointRecord, StoreError> {
        let row = sqlx::query(&format!(
            "WITH e AS ( \
               INSERT INTO endpoints (public_id, code, room_id, permission, meta, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING * \
             ) SELECT {ENDPOINT_COLUMNS} FROM e JOIN rooms r ON r.id = e.room_id"
        ))
        .bind(&new.public_id)
        .bind(&new.code)
        .bind(new.room_id)
        .bind(new.permission.as_str())
        .bind(&new.meta)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_or)?;
        endpoint_from(&row)
    }

    async fn list_endpoints(&self, room_id: i64) -> Result<Vec<EndpointRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE e.room_id = $1 ORDER BY e.id"
        ))
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }

    async fn list_app_endpoints(&self, app_id: i64) -> Result<Vec<EndpointRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE r.app_id = $1 ORDER BY e.id"
        ))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }

    async fn delete_endpoint(&self, room_id: i64, code: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("DELETE FROM endpoints WHERE room_id = $1 AND code = $2 RETURNING id")
            .bind(room_id)
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }

    async fn endpoint_by_code(&self, code: &str) -> Result<Option<EndpointAccess>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS}, a.status AS app_status, a.allowed_origins \
             FROM endpoints e JOIN rooms r ON r.id = e.room_id JOIN apps a ON a.id = r.app_id \
             WHERE e.code = $1"
        ))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("app_status")?;
        Ok(Some(EndpointAccess {
            endpoint: endpoint_from(&row)?,
            app_status: AppStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("app status {status:?}")))?,
            allowed_origins: origins_from(&row)?,
        }))
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
            "INSERT INTO messages (room_id, seq, id, created_at, sender_id, sender_meta, payload) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], \
                                  $7::TEXT[]) \
             ON CONFLICT (room_id, seq) DO NOTHING",
        )
        .bind(kept.iter().map(|m| m.room_id).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.seq as i64).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.created_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.sender_id.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.sender_meta.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|m| m.payload.as_str()).collect::<Vec<_>>())
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
        tx.commit().await?;
        Ok(())
    }

    async fn load_history(&self, room_id: i64, limit: usize, since_ms: i64) -> Result<Option<RoomHistory>, StoreError> {
        let last_seq: Option<i64> =
            sqlx::query_scalar("SELECT GREATEST(last_seq, reserved_seq) FROM rooms WHERE id = $1")
                .bind(room_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(last_seq) = last_seq else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT room_id, seq, id, created_at, sender_id, sender_meta, payload FROM messages \
             WHERE room_id = $1 AND created_at >= $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(room_id)
        .bind(since_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut messages = rows.iter().map(message_from).collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(Some(RoomHistory { last_seq: last_seq as u64, messages }))
    }

    async fn prune_history(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM messages WHERE created_at < $1").bind(before_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn reserve_seq(&self, room_id: i64, up_to: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE rooms SET reserved_seq = GREATEST(reserved_seq, $1) WHERE id = $2")
            .bind(up_to as i64)
            .bind(room_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_seq_reservation(&self, room_id: i64, last_seq: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE rooms SET reserved_seq = last_seq WHERE id = $1 AND last_seq = $2")
            .bind(room_id)
            .bind(last_seq as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
