//! The SQLite backend: one file in the data folder, WAL mode so readers never
//! wait for the history writer, migrations from `migrations/sqlite` applied
//! at open.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use comms_protocol::Permission;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{
    AccountRecord, AppFilter, AppProfile, AppRecord, AppStatus, AppSummary, AuditEntry, EndpointAccess, EndpointRecord,
    NewApp, NewEndpoint, RoomHistory, RoomRecord, Store, StoreError, StoredMessage,
};
use crate::names::{AppName, RoomName};
use crate::origins::AllowedOrigins;
use crate::secrets::ApiKeyHash;
use crate::time::now_ms;

mod accounts;
mod room_batch;

use room_batch::RoomBatcher;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Connections to one SQLite file: a pool for reads, and a single
/// connection for writes.
///
/// SQLite lets one writer in at a time. With writes spread over a pool, the
/// others would wait on the file lock (sleeping and retrying in the busy
/// handler); funnelled through one connection they wait in an async queue
/// instead and commit back to back. Readers never wait for it (WAL mode).
#[derive(Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    rooms: RoomBatcher,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies pending
    /// migrations. The folder of a `sqlite://` file path is created too.
    ///
    /// # Errors
    ///
    /// The folder cannot be created, the file cannot be opened, or a
    /// migration fails.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
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
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        Ok(Self { reader, rooms: RoomBatcher::spawn(writer.clone()), writer })
    }

    /// The write connection, for the portal's session store, which keeps
    /// its table in the same file.
    pub fn write_pool(&self) -> SqlitePool {
        self.writer.clone()
    }
}

fn conflict_or(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::ParentMissing,
        _ => StoreError::Database(err),
    }
}

fn app_from(row: &SqliteRow) -> Result<AppRecord, StoreError> {
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

fn origins_from(row: &SqliteRow) -> Result<AllowedOrigins, StoreError> {
    let stored: String = row.try_get("allowed_origins")?;
    AllowedOrigins::parse(stored.split_whitespace())
        .map_err(|err| StoreError::Corrupt(format!("allowed origins {stored:?}: {err}")))
}

fn room_from(row: &SqliteRow) -> Result<RoomRecord, StoreError> {
    Ok(RoomRecord {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        endpoint_count: row.try_get::<i64, _>("endpoint_count")? as u64,
    })
}

fn endpoint_from(row: &SqliteRow) -> Result<EndpointRecord, StoreError> {
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

fn message_from(row: &SqliteRow) -> Result<StoredMessage, StoreError> {
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
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }

    async fn create_app(&self, new: NewApp) -> Result<AppRecord, StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(
            "INSERT INTO apps (name, status, owner_id, description, website, intended_use, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id, name, status, owner_id, created_at, allowed_origins",
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
            sqlx::query("INSERT INTO api_keys (app_id, key_hash, created_at) VALUES (?, ?, ?)")
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
            sqlx::query("SELECT id, name, status, owner_id, created_at, allowed_origins FROM apps WHERE name = ?")
                .bind(name.as_str())
                .fetch_optional(&self.reader)
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
             FROM apps a WHERE (?1 IS NULL OR a.owner_id = ?1) AND (?2 IS NULL OR a.id = ?2) ORDER BY a.id",
        )
        .bind(owner)
        .bind(id)
        .fetch_all(&self.reader)
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
        sqlx::query("UPDATE apps SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(app_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn set_allowed_origins(&self, app_id: i64, origins: &AllowedOrigins) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET allowed_origins = ? WHERE id = ?")
            .bind(origins.to_stored())
            .bind(app_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn replace_api_keys(&self, app_id: i64, new: ApiKeyHash) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE app_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(app_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO api_keys (app_id, key_hash, created_at) VALUES (?, ?, ?)")
            .bind(app_id)
            .bind(new.to_hex())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_api_keys(&self, app_id: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE app_id = ? AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(app_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_app(&self, app_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM apps WHERE id = ?").bind(app_id).execute(&self.writer).await?;
        Ok(())
    }

    async fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<AccountRecord, StoreError> {
        accounts::create(&self.writer, email, password_hash, is_admin).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        accounts::by_email(&self.reader, email).await
    }

    async fn account_by_id(&self, id: i64) -> Result<Option<AccountRecord>, StoreError> {
        accounts::by_id(&self.reader, id).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        accounts::record_audit(&self.writer, entry).await
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        accounts::audit_log(&self.reader, limit).await
    }

    async fn app_by_key(&self, key: ApiKeyHash) -> Result<Option<AppRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.status, a.owner_id, a.created_at, a.allowed_origins \
             FROM api_keys k JOIN apps a ON a.id = k.app_id \
             WHERE k.key_hash = ? AND k.revoked_at IS NULL",
        )
        .bind(key.to_hex())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(app_from).transpose()
    }

    async fn create_room(&self, app_id: i64, name: &RoomName) -> Result<RoomRecord, StoreError> {
        self.rooms.create(app_id, name.as_str().to_owned()).await
    }

    async fn room(&self, app_id: i64, name: &RoomName) -> Result<Option<RoomRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.app_id = ? AND r.name = ?"))
            .bind(app_id)
            .bind(name.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn list_rooms(&self, app_id: i64) -> Result<Vec<RoomRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.app_id = ? ORDER BY r.id"))
            .bind(app_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(room_from).collect()
    }

    async fn delete_room(&self, app_id: i64, name: &RoomName) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("DELETE FROM rooms WHERE app_id = ? AND name = ? RETURNING id")
            .bind(app_id)
            .bind(name.as_str())
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }

    async fn create_endpoint(&self, new: NewEndpoint) -> Result<EndpointRecord, StoreError> {
        let row = sqlx::query(
            "INSERT INTO endpoints (public_id, code, room_id, permission, meta, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             RETURNING id, public_id, code, room_id, \
               (SELECT name FROM rooms WHERE id = room_id) AS room_name, permission, meta, created_at",
        )
        .bind(&new.public_id)
        .bind(&new.code)
        .bind(new.room_id)
        .bind(new.permission.as_str())
        .bind(&new.meta)
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await
        .map_err(conflict_or)?;
        endpoint_from(&row)
    }

    async fn list_endpoints(&self, room_id: i64) -> Result<Vec<EndpointRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE e.room_id = ? ORDER BY e.id"
        ))
        .bind(room_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }

    async fn list_app_endpoints(&self, app_id: i64) -> Result<Vec<EndpointRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE r.app_id = ? ORDER BY e.id"
        ))
        .bind(app_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }

    async fn delete_endpoint(&self, room_id: i64, code: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("DELETE FROM endpoints WHERE room_id = ? AND code = ? RETURNING id")
            .bind(room_id)
            .bind(code)
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }

    async fn endpoint_by_code(&self, code: &str) -> Result<Option<EndpointAccess>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS}, a.status AS app_status, a.allowed_origins \
             FROM endpoints e JOIN rooms r ON r.id = e.room_id JOIN apps a ON a.id = r.app_id \
             WHERE e.code = ?"
        ))
        .bind(code)
        .fetch_optional(&self.reader)
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
        let mut newest: BTreeMap<i64, u64> = BTreeMap::new();
        let mut tx = self.writer.begin().await?;
        for message in batch {
            // A seq is never handed out twice, so a conflict can only be a
            // retry of a batch whose commit succeeded but was not confirmed;
            // skipping it keeps the writer from retrying forever.
            sqlx::query(
                "INSERT INTO messages (room_id, seq, id, created_at, sender_id, sender_meta, payload) \
                 SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM rooms WHERE id = ?) \
                 ON CONFLICT (room_id, seq) DO NOTHING",
            )
            .bind(message.room_id)
            .bind(message.seq as i64)
            .bind(&message.id)
            .bind(message.created_at)
            .bind(&message.sender_id)
            .bind(&message.sender_meta)
            .bind(&message.payload)
            .bind(message.room_id)
            .execute(&mut *tx)
            .await?;
            let seq = newest.entry(message.room_id).or_default();
            *seq = (*seq).max(message.seq);
        }
        for (room_id, last_seq) in newest {
            // Trim from the stored last_seq, which a later batch (from
            // another process on the same file) may have moved past this one.
            let stored: Option<i64> =
                sqlx::query_scalar("UPDATE rooms SET last_seq = MAX(last_seq, ?) WHERE id = ? RETURNING last_seq")
                    .bind(last_seq as i64)
                    .bind(room_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(last_seq) = stored.map(|seq| seq as u64) else { continue };
            // Until a room has more messages than it keeps there is nothing
            // to drop, and most batches touch many young rooms.
            if last_seq > keep_per_room as u64 {
                sqlx::query("DELETE FROM messages WHERE room_id = ? AND seq <= ?")
                    .bind(room_id)
                    .bind((last_seq - keep_per_room as u64) as i64)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn load_history(&self, room_id: i64, limit: usize, since_ms: i64) -> Result<Option<RoomHistory>, StoreError> {
        let last_seq: Option<i64> = sqlx::query_scalar("SELECT MAX(last_seq, reserved_seq) FROM rooms WHERE id = ?")
            .bind(room_id)
            .fetch_optional(&self.reader)
            .await?;
        let Some(last_seq) = last_seq else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT room_id, seq, id, created_at, sender_id, sender_meta, payload FROM messages \
             WHERE room_id = ? AND created_at >= ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(room_id)
        .bind(since_ms)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        let mut messages = rows.iter().map(message_from).collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(Some(RoomHistory { last_seq: last_seq as u64, messages }))
    }

    async fn prune_history(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM messages WHERE created_at < ?").bind(before_ms).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }

    async fn reserve_seq(&self, room_id: i64, up_to: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE rooms SET reserved_seq = MAX(reserved_seq, ?) WHERE id = ?")
            .bind(up_to as i64)
            .bind(room_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn release_seq_reservation(&self, room_id: i64, last_seq: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE rooms SET reserved_seq = last_seq WHERE id = ? AND last_seq = ?")
            .bind(room_id)
            .bind(last_seq as i64)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! What only the SQLite backend does; the suite every backend passes is
    //! in `store::tests`.

    use super::*;

    /// Room creations pending together go into one statement
    /// (`room_batch`), where the first request for a name wins.
    #[tokio::test]
    async fn grouped_room_creations_go_to_the_first_request_of_each_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("comms.db").display()), 2).await.unwrap();
        let new = NewApp {
            name: AppName::parse("a").unwrap(),
            status: AppStatus::Approved,
            owner_id: None,
            profile: AppProfile::default(),
            key: None,
        };
        let app = store.create_app(new).await.unwrap();
        let names = ["x", "y", "x", "z", "x", "y"].map(|n| RoomName::parse(n).unwrap());
        let results = futures_util::future::join_all(names.iter().map(|name| store.create_room(app.id, name))).await;
        let created: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(created, [true, true, false, true, false, false]);
    }
}
