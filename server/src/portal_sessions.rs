//! The portal's session store, in the same database as everything else:
//! the `tower_sessions` table of the SQLite file, or the
//! `tower_sessions.session` table of the PostgreSQL database.
//!
//! The session layer is generic over one store type, and the backend is
//! chosen at start from `DATABASE_URL`, so [`PortalSessionStore`] is an enum that
//! hands each call to the store of the backend in use.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions_sqlx_store::{sqlx, PostgresStore, SqliteStore};

/// Portal and admin sessions; clones share the database pool.
#[derive(Debug, Clone)]
pub enum PortalSessionStore {
    /// In the SQLite file, through its write connection.
    Sqlite(SqliteStore),
    /// In the PostgreSQL database, through the store's pool.
    Postgres(PostgresStore),
}

impl PortalSessionStore {
    /// Creates the session table if it is missing.
    ///
    /// # Errors
    ///
    /// The database refuses the statement.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(store) => store.migrate().await,
            Self::Postgres(store) => store.migrate().await,
        }
    }
}

#[async_trait]
impl tower_sessions::SessionStore for PortalSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.create(record).await,
            Self::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.save(record).await,
            Self::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite(store) => store.load(id).await,
            Self::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.delete(id).await,
            Self::Postgres(store) => store.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for PortalSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.delete_expired().await,
            Self::Postgres(store) => store.delete_expired().await,
        }
    }
}
