//! Where apps stand now, for the portal and the admin area: an app's
//! connections over every node and each quota its own use can fill, with
//! how much of it is used; each node's connections; the busiest apps.

use comms_protocol::Quota;

use comms_protocol::usage::Granularity;

use crate::broker::NodeConnections;
use crate::error::ServiceError;
use crate::service::Service;
use crate::store::{AppRecord, AppUsageTotal};
use crate::time::now_ms;

/// The share of a quota from which the portal warns that it is nearly full.
pub const NEARLY_FULL_PERCENT: u64 = 80;

/// How much of one quota an app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUse {
    /// The quota.
    pub quota: Quota,
    /// How much of it is used: for `endpoints_per_room`, by the app's
    /// fullest room.
    pub used: u64,
    /// Its value for the app (`None`: unlimited).
    pub limit: Option<u64>,
}

impl QuotaUse {
    /// Whether the use is at [`NEARLY_FULL_PERCENT`] of the limit or over.
    pub fn nearly_full(&self) -> bool {
        self.limit.is_some_and(|limit| self.used * 100 >= limit * NEARLY_FULL_PERCENT)
    }
}

/// An app's connections now and its use of each quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Live WebSocket connections of the app, over every node.
    pub connections: u64,
    /// The quotas the app's own use fills, in the order of the docs.
    pub quotas: Vec<QuotaUse>,
}

impl Service {
    /// The app's live connections over every node.
    ///
    /// # Errors
    ///
    /// The store or the broker cannot be read.
    pub async fn connections_of(&self, app: &AppRecord) -> Result<u64, ServiceError> {
        Ok(self.broker.app_connections(app.id).await?)
    }

    /// Each node's live connections, this node's first.
    ///
    /// # Errors
    ///
    /// The broker cannot be read.
    pub async fn connections_by_node(&self) -> Result<Vec<NodeConnections>, ServiceError> {
        Ok(self.broker.connections_by_node().await?)
    }

    /// The apps that sent and received the most messages in the last
    /// `hours` hours, busiest first.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    pub async fn busiest_apps(&self, hours: i64, limit: u64) -> Result<Vec<AppUsageTotal>, ServiceError> {
        let since = Granularity::Hour.period_start(now_ms()) - (hours - 1) * Granularity::Hour.millis();
        Ok(self.store.busiest_apps(since, limit).await?)
    }

    /// Where the app stands against its quotas now.
    ///
    /// # Errors
    ///
    /// The store or the broker cannot be read.
    pub async fn standing(&self, app: &AppRecord) -> Result<Standing, ServiceError> {
        let rooms = self.list_rooms(app).await?;
        let webhooks = self.list_webhooks(app).await?;
        let connections = self.connections_of(app).await?;
        let used = [
            (Quota::RoomsPerApp, rooms.len() as u64),
            (Quota::EndpointsPerRoom, rooms.iter().map(|room| room.endpoint_count).max().unwrap_or(0)),
            (Quota::SocketsPerApp, connections),
            (Quota::WebhooksPerApp, webhooks.len() as u64),
        ];
        let quotas = used
            .into_iter()
            .map(|(quota, used)| QuotaUse { quota, used, limit: app.quotas.limit(quota, &self.quotas) })
            .collect();
        Ok(Standing { connections, quotas })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_is_nearly_full_from_four_fifths() {
        let used = |used, limit| QuotaUse { quota: Quota::RoomsPerApp, used, limit }.nearly_full();
        assert!(!used(7, Some(10)));
        assert!(used(8, Some(10)));
        assert!(used(12, Some(10)));
        assert!(!used(1_000_000, None), "unlimited is never full");
    }
}
