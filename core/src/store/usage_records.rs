//! Records of the `app_usage` table (see [`crate::usage`]).

use comms_protocol::usage::{Refused, UsagePoint};

use crate::time::format_ms;

/// What an app did in one period, on one node or summed over nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageCounts {
    /// The most connections open at once (summed over nodes: each node's
    /// peak).
    #[sqlx(try_from = "i64")]
    pub connections_peak: u64,
    /// Messages published into the app's rooms.
    #[sqlx(try_from = "i64")]
    pub messages_in: u64,
    /// Messages delivered to sockets.
    #[sqlx(try_from = "i64")]
    pub messages_out: u64,
    /// Payload bytes of the messages published.
    #[sqlx(try_from = "i64")]
    pub bytes_in: u64,
    /// Frame bytes of the messages delivered.
    #[sqlx(try_from = "i64")]
    pub bytes_out: u64,
    /// Signals sent.
    #[sqlx(try_from = "i64")]
    pub signals: u64,
    /// Webhook deliveries answered with a 2xx.
    #[sqlx(try_from = "i64")]
    pub webhook_deliveries: u64,
    /// Refused over a count quota.
    #[sqlx(try_from = "i64")]
    pub refused_quota: u64,
    /// Refused over a rate.
    #[sqlx(try_from = "i64")]
    pub refused_rate: u64,
    /// Refused for JSON nested too deep.
    #[sqlx(try_from = "i64")]
    pub refused_depth: u64,
    /// Refused for a key or code of the app that does not work.
    #[sqlx(try_from = "i64")]
    pub refused_credentials: u64,
}

impl UsageCounts {
    /// Whether nothing happened (no connection open, nothing counted).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Adds `other` in, as two nodes' counts of one period add up.
    pub fn add(&mut self, other: &Self) {
        self.connections_peak += other.connections_peak;
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.signals += other.signals;
        self.webhook_deliveries += other.webhook_deliveries;
        self.refused_quota += other.refused_quota;
        self.refused_rate += other.refused_rate;
        self.refused_depth += other.refused_depth;
        self.refused_credentials += other.refused_credentials;
    }

    /// The counts as the API shows the period starting at `at_ms`.
    pub fn point(&self, at_ms: i64) -> UsagePoint {
        UsagePoint {
            at: format_ms(at_ms),
            connections_peak: self.connections_peak,
            messages_in: self.messages_in,
            messages_out: self.messages_out,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            signals: self.signals,
            webhook_deliveries: self.webhook_deliveries,
            refused: self.refused(),
        }
    }

    /// The refusals, by why, as the API shows them.
    pub fn refused(&self) -> Refused {
        Refused {
            quota: self.refused_quota,
            rate: self.refused_rate,
            depth: self.refused_depth,
            credentials: self.refused_credentials,
        }
    }
}

/// One node's row of one period of an app's usage.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    /// The period's start, milliseconds since the epoch.
    pub period_start: i64,
    /// The node that counted it.
    pub node: String,
    /// What happened in it there.
    #[sqlx(flatten)]
    pub counts: UsageCounts,
}

/// One app's usage over a time, for the admin area's busiest apps:
/// `connections_peak` is the highest of its periods, the rest are sums.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppUsageTotal {
    /// The app's name.
    pub app_name: String,
    /// What it did.
    #[sqlx(flatten)]
    pub counts: UsageCounts,
}
