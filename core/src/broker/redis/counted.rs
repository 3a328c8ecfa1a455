//! The broker's Redis connection, counting its round trips.
//!
//! Every command the broker sends goes through one [`CountedConnection`]
//! (cloned per task), so `comms_redis_round_trips_total` is exact: one per
//! command, one per pipeline, and a script's `EVALSHA` plus the `SCRIPT
//! LOAD` and retry it needs the first time. The subscription connection
//! (the listener) only receives, and is not counted.

use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A [`ConnectionManager`] that counts each request it sends.
#[derive(Clone)]
pub struct CountedConnection {
    inner: ConnectionManager,
    round_trips: Counter,
}

impl CountedConnection {
    /// Counts `inner`'s requests in `round_trips`.
    pub fn new(inner: ConnectionManager, round_trips: Counter) -> Self {
        Self { inner, round_trips }
    }
}

impl ConnectionLike for CountedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.round_trips.inc();
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.round_trips.inc();
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
