//! Usage: what an app's rooms, sockets and webhooks did, per period, as
//! `GET /api/v1/usage` answers it.

use serde::{Deserialize, Serialize};

/// The length of the periods a usage answer is cut into. Periods start on
/// the minute, the hour or midnight, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One point per minute.
    Minute,
    /// One point per hour.
    Hour,
    /// One point per UTC day.
    Day,
}

impl Granularity {
    /// Every granularity, shortest first.
    pub const ALL: [Self; 3] = [Self::Minute, Self::Hour, Self::Day];

    /// The name on the wire and in the database, e.g. `hour`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    /// The granularity named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|granularity| granularity.as_str() == name)
    }

    /// A period's length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    /// The start of the period holding `at_ms` (milliseconds since the
    /// epoch).
    pub fn period_start(self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.millis()) * self.millis()
    }
}

/// Requests refused, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refused {
    /// Over a count quota: `403 quota_exceeded`, or a socket closed with
    /// 4029.
    pub quota: u64,
    /// Over a rate: `429 rate_limited`, or a `rate_limited` error frame.
    pub rate: u64,
    /// JSON nested deeper than the limit.
    pub depth: u64,
    /// A key or code of this app that does not work: the app is not
    /// approved, the code expired or was used already.
    pub credentials: u64,
}

/// What one app did in one period, summed over every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsagePoint {
    /// The period's start, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// The most WebSocket connections open at once during the period: each
    /// node's peak, added up.
    pub connections_peak: u64,
    /// Messages published into the app's rooms (by sockets and by the
    /// REST API).
    pub messages_in: u64,
    /// Messages delivered to sockets, counted once per receiving socket
    /// (resumed backlogs included).
    pub messages_out: u64,
    /// Bytes of the payloads of `messages_in`, as published (JSON text).
    pub bytes_in: u64,
    /// Bytes of the message frames of `messages_out`, as sent.
    pub bytes_out: u64,
    /// Signals sent by the app's sockets.
    pub signals: u64,
    /// Webhook deliveries answered with a 2xx.
    pub webhook_deliveries: u64,
    /// Requests and frames refused, by why.
    pub refused: Refused,
}

/// `GET /api/v1/usage`: one point per period that had any activity,
/// oldest first. The current period is included and may still grow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    /// The periods' length.
    pub granularity: Granularity,
    /// One point per period with any activity, oldest first.
    pub points: Vec<UsagePoint>,
}
