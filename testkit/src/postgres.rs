//! A fresh PostgreSQL database per test, for the store suite and the
//! server's integration tests, so both find the server the same way and
//! clean up the same way.
//!
//! Tests connect to `COMMS_TEST_POSTGRES_URL` (default [`DEFAULT_URL`]),
//! create `comms_test_<random>` there and drop it when the
//! [`TestDatabase`] goes. When no server answers, a test is skipped with a
//! line on stderr, except under `CI=true`, where a missing service fails
//! the run instead of passing it silently ([`missing_service`], which the
//! Redis test helpers use too).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use comms_core::store::postgres::CONNECT_TIMEOUT;

use crate::missing_service;

/// Where tests look for PostgreSQL when `COMMS_TEST_POSTGRES_URL` is unset.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database made for one test; dropped (best effort) with this guard.
/// Keep it alive as long as anything uses [`TestDatabase::url`].
pub struct TestDatabase {
    admin: PgConnectOptions,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database, or returns `None` after printing why the
    /// test is skipped when PostgreSQL is not reachable.
    ///
    /// # Panics
    ///
    /// PostgreSQL is not reachable and `CI` is `true`; the URL is not a
    /// PostgreSQL URL; the server refuses `CREATE DATABASE`.
    pub async fn create() -> Option<Self> {
        let admin_url = std::env::var("COMMS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let admin = PgConnectOptions::from_str(&admin_url)
            .unwrap_or_else(|err| panic!("COMMS_TEST_POSTGRES_URL is not a PostgreSQL URL: {err}"));
        let mut connection = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&admin)).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => return missing_service("PostgreSQL", &admin_url, &err.to_string()),
            Err(_) => return missing_service("PostgreSQL", &admin_url, "no answer in time"),
        };
        let name = format!("comms_test_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|err| panic!("creating the test database {name}: {err}"));
        let _ = connection.close().await;
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        Some(Self { admin, name, url })
    }

    /// The URL of the database, for [`PostgresStore::open`](comms_core::store::postgres::PostgresStore::open)
    /// or a server's `database.url`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime, which cannot block on a
        // future: the database is dropped from a thread with its own.
        // FORCE ends the connections the test's pools still hold.
        let dropped = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(sqlx::Error::Io)?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect_with(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut connection).await?;
                connection.close().await
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop the test database {}: {err}", self.url);
        }
    }
}
