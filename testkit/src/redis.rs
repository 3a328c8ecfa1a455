//! Redis for tests: the shared server under a key prefix of the test's own,
//! or a private `redis-server` a test may stop and start again.
//!
//! Tests use `COMMS_TEST_REDIS_URL` (default [`DEFAULT_URL`]). When no
//! server answers, a test is skipped with a line on stderr, except under
//! `CI=true`, where a missing service fails the run instead.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::missing_service;

/// Where tests look for Redis when `COMMS_TEST_REDIS_URL` is unset.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The shared Redis with a key prefix no other test uses; the prefix's
/// keys are deleted (best effort) when this guard goes.
pub struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    /// The shared Redis under a fresh prefix, or `None` after printing why
    /// the test is skipped.
    ///
    /// # Panics
    ///
    /// Redis is not reachable and `CI` is `true`.
    pub async fn connect() -> Option<Self> {
        let url = std::env::var("COMMS_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        if let Err(reason) = ping(&url).await {
            return missing_service("Redis", &url, &reason);
        }
        let prefix = format!("comms_test_{:016x}", rand::random::<u64>());
        Some(Self { url, prefix })
    }

    /// The server's URL, for `broker.redis_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The prefix, for `broker.key_prefix`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl TestRedis {
    /// Deletes every key under the prefix, as a Redis that lost its data
    /// would look to the nodes using it (best effort).
    pub fn forget_everything(&self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else { return };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(2)) else { return };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query(&mut connection).unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.forget_everything();
    }
}

/// A `redis-server` of the test's own on a free port, keeping nothing on
/// disk, which the test may stop and start again on the same port.
pub struct PrivateRedis {
    port: u16,
    server: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server, or returns `None` after printing why the test is
    /// skipped when `redis-server` cannot be run.
    ///
    /// # Panics
    ///
    /// `redis-server` cannot be run and `CI` is `true`.
    pub async fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).ok()?.port();
        let mut redis = Self { port, server: None };
        match redis.run().await {
            Ok(()) => Some(redis),
            Err(reason) => missing_service("redis-server", "redis-server on PATH", &reason),
        }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    ///
    /// # Panics
    ///
    /// It does not come up.
    pub async fn restart(&mut self) {
        self.stop();
        self.run().await.expect("redis-server restarts");
    }

    async fn run(&mut self) -> Result<(), String> {
        let server = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run redis-server: {err}"))?;
        self.server = Some(server);
        for _ in 0..100 {
            if ping(&self.url()).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("redis-server did not answer within 5 s".into())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|err| err.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(2), async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut connection).await
    })
    .await;
    match answer {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no answer in time".into()),
    }
}
