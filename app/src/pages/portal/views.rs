//! What the portal and admin pages show: the types server functions answer
//! with, shared by the server (which builds them) and the browser (which
//! renders them). Plain data, no rules; on the server, each is built from
//! the `comms_core` record it shows.

use comms_protocol::usage::Refused;
use comms_protocol::webhook::{Delivery, Webhook};
use serde::{Deserialize, Serialize};

/// Who is signed in, and the form token of this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The token every form of this session sends back.
    pub csrf: String,
    /// The signed-in account's email; `None` when signed out.
    pub email: Option<String>,
    /// Whether that account may use the admin area.
    pub is_admin: bool,
    /// Whether that account's address is confirmed (only then may it
    /// register apps).
    pub email_verified: bool,
}

/// An app as its developer (or an admin) sees it in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRow {
    /// Unique name.
    pub name: String,
    /// `pending`, `approved`, `rejected` or `suspended`.
    pub status: String,
    /// What it is.
    pub description: String,
    /// Its web site, or empty.
    pub website: String,
    /// What it will use comms for.
    pub intended_use: String,
    /// The owner's email (admins see it), or empty.
    pub owner: String,
    /// Keys that work.
    pub active_keys: u64,
    /// Browser origins its pages may use the API and WebSocket from; empty
    /// allows any.
    pub allowed_origins: Vec<String>,
    /// Rooms it has.
    pub rooms: u64,
    /// Quotas an admin set for it, as `key = value`; the others have the
    /// configured default.
    pub quotas: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// One of an app's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRow {
    /// Public id.
    pub id: String,
    /// The code clients connect with.
    pub code: String,
    /// `read`, `read_and_write` or `moderate`.
    pub permission: String,
    /// The meta object, as JSON text.
    pub meta: String,
    /// The full WebSocket URL.
    pub ws_url: String,
    /// Its live connections, over every node.
    pub online: u64,
    /// Messages published through it so far.
    pub messages_sent: u64,
    /// Messages it may ever publish; `None`: unlimited.
    pub max_messages: Option<u64>,
    /// When its code stops working (RFC 3339); `None`: never.
    pub expires_at: Option<String>,
    /// Whether its code works for one connection only.
    pub single_use: bool,
    /// The public id of the endpoint that minted it, if one did.
    pub parent: Option<String>,
}

/// A recent message of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// Per-room sequence number.
    pub seq: u64,
    /// RFC 3339.
    pub timestamp: String,
    /// The sender's public id or `app`.
    pub sender: String,
    /// The payload as JSON text; empty once redacted.
    pub message: String,
    /// When it was redacted (RFC 3339), if it was.
    pub redacted_at: Option<String>,
}

/// A member of a presence room: an endpoint with a live connection (or
/// within the leave grace period after its last one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    /// The endpoint's public id.
    pub id: String,
    /// The `name` in its meta, if it has one.
    pub name: Option<String>,
    /// Its live connections.
    pub connections: u64,
}

/// A room with its endpoints and latest messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPanel {
    /// The room's name.
    pub name: String,
    /// Connections open now.
    pub online: u64,
    /// Who is in the room, in a presence room; `None` in other rooms.
    pub members: Option<Vec<MemberRow>>,
    /// Oldest first.
    pub endpoints: Vec<EndpointRow>,
    /// The newest few, oldest first.
    pub latest: Vec<MessageRow>,
}

/// A webhook with its recent deliveries, as the REST API lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPanel {
    /// The webhook.
    pub webhook: Webhook,
    /// Its most recent deliveries, newest first.
    pub deliveries: Vec<Delivery>,
}

/// Everything the page of one app shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDetails {
    /// The app.
    pub app: AppRow,
    /// Its rooms (empty unless approved).
    pub rooms: Vec<RoomPanel>,
    /// Its webhooks, oldest first (empty unless approved).
    pub webhooks: Vec<WebhookPanel>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Which app.
    pub app: String,
    /// More.
    pub detail: String,
}

/// A webhook whose deliveries are failing, for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingWebhookRow {
    /// The app's name.
    pub app: String,
    /// The webhook's public id.
    pub id: String,
    /// Where it posts.
    pub url: String,
    /// Deliveries that failed for good.
    pub failed: u64,
    /// Deliveries still pending after at least one failed attempt.
    pub retrying: u64,
}

/// What the admin area shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    /// Every app, oldest first.
    pub apps: Vec<AppRow>,
    /// The newest audit entries, newest first.
    pub audit: Vec<AuditRow>,
    /// Webhooks with failed or retrying deliveries, most failures first.
    pub failing_webhooks: Vec<FailingWebhookRow>,
    /// The apps with the most messages in the last 24 hours, busiest
    /// first.
    pub busiest: Vec<BusyAppRow>,
    /// Each node's live connections, the answering node's first.
    pub nodes: Vec<NodeRow>,
}

/// One app's usage over the last 24 hours, for the admin area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusyAppRow {
    /// The app's name.
    pub app: String,
    /// The most connections it held at once in an hour.
    pub connections_peak: u64,
    /// Messages published into its rooms.
    pub messages_in: u64,
    /// Messages delivered to its sockets.
    pub messages_out: u64,
    /// Refusals: over a quota, over a rate, too deep, bad credentials.
    pub refused: Refused,
}

/// One node's live connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRow {
    /// The node's id.
    pub node: String,
    /// Its live WebSocket connections.
    pub connections: u64,
}

/// One bar of a chart: its period's label and value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    /// What the bar is, e.g. `14:00` or `12-05`.
    pub label: String,
    /// Its height.
    pub value: u64,
}

/// A bar chart of one figure over consecutive periods, oldest first
/// (periods without activity are bars of 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chart {
    /// What it shows, e.g. `Messages per hour, last 7 days`.
    pub title: String,
    /// One per period, oldest first.
    pub bars: Vec<Bar>,
}

/// How much of one quota an app uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRow {
    /// The quota's key, e.g. `rooms_per_app`.
    pub quota: String,
    /// How much is used.
    pub used: u64,
    /// Its value for the app; `None`: unlimited.
    pub limit: Option<u64>,
    /// Whether the use is near the limit (or over it).
    pub nearly_full: bool,
}

/// An app's usage as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageView {
    /// Live connections now, over every node.
    pub connections: u64,
    /// Connections per hour over 24 hours, messages per hour over 7 days,
    /// messages per day over 30 days.
    pub charts: Vec<Chart>,
    /// Refusals in the last 30 days.
    pub refused: Refused,
    /// Each quota the app's own use fills.
    pub quotas: Vec<QuotaRow>,
    /// The last 7 days by hour as CSV, in a `data:` URL to download.
    pub csv_href: String,
}

#[cfg(feature = "ssr")]
mod from_records {
    use comms_core::broker::NodeConnections;
    use comms_core::overview::RoomOverview;
    use comms_core::store::{AppSummary, AppUsageTotal, AuditEntry, FailingWebhook};
    use comms_core::time::format_ms;
    use comms_core::usage::standing::QuotaUse;
    use comms_protocol::{Endpoint, Member, Message};
    use serde::Deserialize;

    use super::{
        AppRow, AuditRow, BusyAppRow, EndpointRow, FailingWebhookRow, MemberRow, MessageRow, NodeRow, QuotaRow,
        RoomPanel,
    };

    impl From<AppSummary> for AppRow {
        fn from(summary: AppSummary) -> Self {
            Self {
                name: summary.app.name,
                status: summary.app.status.as_str().to_owned(),
                description: summary.profile.description,
                website: summary.profile.website,
                intended_use: summary.profile.intended_use,
                owner: summary.owner_email.unwrap_or_default(),
                active_keys: summary.active_keys,
                allowed_origins: summary.app.allowed_origins.entries(),
                rooms: summary.rooms,
                quotas: comms_core::quotas::Quota::ALL
                    .into_iter()
                    .filter_map(|quota| Some(format!("{quota} = {}", summary.app.quotas.get(quota)?)))
                    .collect(),
                created_at: format_ms(summary.app.created_at),
            }
        }
    }

    impl From<AuditEntry> for AuditRow {
        fn from(entry: AuditEntry) -> Self {
            Self {
                at: format_ms(entry.at),
                actor: entry.actor,
                action: entry.action,
                app: entry.app_name,
                detail: entry.detail,
            }
        }
    }

    impl From<AppUsageTotal> for BusyAppRow {
        fn from(total: AppUsageTotal) -> Self {
            let counts = total.counts;
            Self {
                app: total.app_name,
                connections_peak: counts.connections_peak,
                messages_in: counts.messages_in,
                messages_out: counts.messages_out,
                refused: counts.refused(),
            }
        }
    }

    impl From<NodeConnections> for NodeRow {
        fn from(node: NodeConnections) -> Self {
            Self { node: node.node, connections: node.connections }
        }
    }

    impl From<QuotaUse> for QuotaRow {
        fn from(quota: QuotaUse) -> Self {
            Self {
                quota: quota.quota.key().to_owned(),
                used: quota.used,
                limit: quota.limit,
                nearly_full: quota.nearly_full(),
            }
        }
    }

    impl From<FailingWebhook> for FailingWebhookRow {
        fn from(webhook: FailingWebhook) -> Self {
            Self {
                app: webhook.app_name,
                id: webhook.public_id,
                url: webhook.url,
                failed: u64::try_from(webhook.failed).unwrap_or(0),
                retrying: u64::try_from(webhook.retrying).unwrap_or(0),
            }
        }
    }

    impl From<Message> for MessageRow {
        fn from(message: Message) -> Self {
            let text = if message.redacted_at.is_some() { String::new() } else { message.message.get().to_owned() };
            Self {
                seq: message.seq,
                timestamp: message.timestamp,
                sender: message.sender.id,
                message: text,
                redacted_at: message.redacted_at,
            }
        }
    }

    impl From<Member> for MemberRow {
        fn from(member: Member) -> Self {
            #[derive(Deserialize)]
            struct Named {
                name: Option<String>,
            }
            let name = serde_json::from_str::<Named>(member.meta.get()).ok().and_then(|meta| meta.name);
            Self { id: member.id, name, connections: member.connections }
        }
    }

    impl From<Endpoint> for EndpointRow {
        fn from(endpoint: Endpoint) -> Self {
            Self {
                id: endpoint.id,
                code: endpoint.code,
                permission: endpoint.permission.as_str().to_owned(),
                meta: endpoint.meta.get().to_owned(),
                ws_url: endpoint.ws_url,
                online: endpoint.online,
                messages_sent: endpoint.messages_sent,
                max_messages: endpoint.max_messages,
                expires_at: endpoint.expires_at,
                single_use: endpoint.single_use,
                parent: endpoint.parent,
            }
        }
    }

    impl RoomPanel {
        /// The room as the page shows it, with its `members` (in a
        /// presence room).
        pub fn new(overview: RoomOverview, members: Option<Vec<Member>>) -> Self {
            Self {
                name: overview.room.name,
                online: overview.online,
                members: members.map(|members| members.into_iter().map(MemberRow::from).collect()),
                endpoints: overview.endpoints.into_iter().map(EndpointRow::from).collect(),
                latest: overview.latest.into_iter().map(MessageRow::from).collect(),
            }
        }
    }
}
