//! Online counts over every node.
//!
//! Each node publishes its own counts (room id → connections, read from its
//! hub, and its sockets per app, endpoint and address under the names of
//! [`SocketOwner::count_names`](crate::quotas::SocketOwner::count_names),
//! for the socket quotas) as one Redis hash that expires unless refreshed,
//! and lists itself in the node set. Reading a count adds this node's own
//! (exact, at once) to the other nodes' published ones (at most
//! [`PUBLISH_EVERY`] old). A node that dies stops refreshing, its hash
//! expires and readers drop it from the set; after Redis restarts, every
//! node's next refresh puts its counts back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::counted::CountedConnection;
use super::keys::Keys;
use super::scripts;
use crate::broker::{BrokerError, NodeConnections};
use crate::hub::Hub;
use crate::quotas::SocketCounts;
use redis::AsyncCommands;

/// How often a node compares its hub with what it published.
pub(super) const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// Counts are rewritten at least this often even when unchanged, which
/// also restores them after Redis lost its data.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// A node's counts expire this long after its last refresh.
const EXPIRE_AFTER: Duration = Duration::from_secs(15);

/// One node's side of the shared online counts.
pub(super) struct Presence {
    node: String,
    keys: Keys,
    connection: CountedConnection,
}

impl Presence {
    /// The presence of node `node`.
    pub(super) fn new(node: String, keys: Keys, connection: CountedConnection) -> Self {
        Self { node, keys, connection }
    }

    /// Starts publishing this node's counts from `hub` until aborted.
    pub(super) fn spawn_publisher(self: &Arc<Self>, hub: Arc<Hub>) -> JoinHandle<()> {
        let presence = Arc::clone(self);
        tokio::spawn(async move {
            let mut published: Option<HashMap<String, u64>> = None;
            let mut since_refresh = Duration::ZERO;
            let mut tick = tokio::time::interval(PUBLISH_EVERY);
            loop {
                tick.tick().await;
                since_refresh += PUBLISH_EVERY;
                let mut counts = hub.sockets().snapshot();
                counts.extend(hub.online_by_room().into_iter().map(|(room, n)| (room.to_string(), n)));
                if published.as_ref() == Some(&counts) && since_refresh < REFRESH_EVERY {
                    continue;
                }
                match presence.publish(&counts).await {
                    Ok(()) => {
                        published = Some(counts);
                        since_refresh = Duration::ZERO;
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "could not publish online counts; retrying");
                        published = None;
                    }
                }
            }
        })
    }

    /// Replaces this node's published counts with `counts`.
    async fn publish(&self, counts: &HashMap<String, u64>) -> redis::RedisResult<()> {
        let key = self.keys.node_online(&self.node);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !counts.is_empty() {
            let fields: Vec<(&str, u64)> = counts.iter().map(|(name, n)| (name.as_str(), *n)).collect();
            pipe.hset_multiple(&key, &fields).ignore();
            pipe.pexpire(&key, EXPIRE_AFTER.as_millis() as i64).ignore();
            pipe.sadd(self.keys.nodes(), &self.node).ignore();
        }
        pipe.query_async(&mut self.connection.clone()).await
    }

    /// The other nodes' counts under each name (a room id, or a socket
    /// count name), in the order asked.
    ///
    /// # Errors
    ///
    /// Redis cannot be reached.
    pub(super) async fn elsewhere<T: redis::ToRedisArgs>(&self, names: &[T]) -> Result<Vec<u64>, BrokerError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = scripts::ONLINE.key(self.keys.nodes());
        invocation.arg(&self.node).arg(self.keys.prefix());
        for name in names {
            invocation.arg(name);
        }
        invocation.invoke_async(&mut self.connection.clone()).await.map_err(super::unavailable)
    }

    /// The other nodes' live connections, as they last published them.
    ///
    /// # Errors
    ///
    /// Redis cannot be reached.
    pub(super) async fn connections_elsewhere(&self) -> Result<Vec<NodeConnections>, BrokerError> {
        let mut connection = self.connection.clone();
        let mut nodes: Vec<String> = connection.smembers(self.keys.nodes()).await.map_err(super::unavailable)?;
        nodes.retain(|node| *node != self.node);
        nodes.sort_unstable();
        let mut pipe = redis::pipe();
        for node in &nodes {
            pipe.hgetall(self.keys.node_online(node));
        }
        let counts: Vec<HashMap<String, u64>> = pipe.query_async(&mut connection).await.map_err(super::unavailable)?;
        Ok(nodes
            .into_iter()
            .zip(counts)
            .filter(|(_, counts)| !counts.is_empty())
            .map(|(node, counts)| NodeConnections {
                node,
                connections: counts
                    .iter()
                    .filter(|(name, _)| SocketCounts::is_app_count_name(name))
                    .map(|(_, n)| n)
                    .sum(),
            })
            .collect())
    }

    /// Withdraws this node's counts, on shutdown.
    pub(super) async fn withdraw(&self) {
        let result: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .del(self.keys.node_online(&self.node))
            .ignore()
            .srem(self.keys.nodes(), &self.node)
            .ignore()
            .query_async(&mut self.connection.clone())
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not withdraw this node's online counts; they expire by themselves");
        }
    }
}
