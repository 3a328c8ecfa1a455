//! The names of the count quotas (`[quotas]` in the server's config), as
//! they appear in `quota_exceeded` messages, close reasons and the admin
//! area.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One count quota, named as in the server's `[quotas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    /// Rooms of one app.
    RoomsPerApp,
    /// Endpoints of one room.
    EndpointsPerRoom,
    /// Apps one portal account registered.
    AppsPerAccount,
    /// Live WebSocket connections of one app, over every node.
    SocketsPerApp,
    /// Live connections of one endpoint code, over every node.
    SocketsPerEndpoint,
    /// Live connections from one client address, over every node.
    SocketsPerIp,
    /// Webhooks of one app.
    WebhooksPerApp,
}

impl Quota {
    /// Every quota, in the order of the docs.
    pub const ALL: [Self; 7] = [
        Self::RoomsPerApp,
        Self::EndpointsPerRoom,
        Self::AppsPerAccount,
        Self::SocketsPerApp,
        Self::SocketsPerEndpoint,
        Self::SocketsPerIp,
        Self::WebhooksPerApp,
    ];

    /// The config key, e.g. `rooms_per_app`.
    pub fn key(self) -> &'static str {
        match self {
            Self::RoomsPerApp => "rooms_per_app",
            Self::EndpointsPerRoom => "endpoints_per_room",
            Self::AppsPerAccount => "apps_per_account",
            Self::SocketsPerApp => "sockets_per_app",
            Self::SocketsPerEndpoint => "sockets_per_endpoint",
            Self::SocketsPerIp => "sockets_per_ip",
            Self::WebhooksPerApp => "webhooks_per_app",
        }
    }

    /// The quota a config key names.
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|quota| quota.key() == key)
    }

    /// The reason of the WebSocket close (4029) for a socket quota: it
    /// names the quota, and fits the 123 bytes a close reason may hold.
    pub fn close_reason(self) -> &'static str {
        match self {
            Self::SocketsPerApp => "quota exceeded: sockets_per_app",
            Self::SocketsPerEndpoint => "quota exceeded: sockets_per_endpoint",
            Self::SocketsPerIp => "quota exceeded: sockets_per_ip",
            Self::RoomsPerApp | Self::EndpointsPerRoom | Self::AppsPerAccount | Self::WebhooksPerApp => {
                "quota exceeded"
            }
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
