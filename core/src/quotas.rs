//! Count quotas: how many rooms, endpoints, apps and live sockets one app,
//! room, account, endpoint code or client address may hold.
//!
//! Defaults come from `[quotas]`; an admin can override each one per app
//! ([`QuotaOverrides`], stored with the app). `0` means unlimited. Rooms,
//! endpoints and apps are counted by the store in the transaction that
//! creates them, so a quota holds exactly under concurrent requests. Live
//! sockets are counted per node by [`SocketCounts`]: exactly on one node,
//! and over every node through the broker, which sums the other nodes'
//! published counts (at most half a second old, see
//! `broker::redis::presence`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub use comms_protocol::Quota;

use crate::config::QuotasConfig;
use crate::limits::address_key;

/// A quota that is full: which one and its value, for the `quota_exceeded`
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("quota exceeded: {quota} is {limit}")]
pub struct QuotaExceeded {
    /// The quota that is full.
    pub quota: Quota,
    /// Its value for this app.
    pub limit: u64,
}

impl QuotasConfig {
    /// The configured default of `quota` (0: unlimited).
    pub fn default_of(&self, quota: Quota) -> u64 {
        match quota {
            Quota::RoomsPerApp => self.rooms_per_app,
            Quota::EndpointsPerRoom => self.endpoints_per_room,
            Quota::AppsPerAccount => self.apps_per_account,
            Quota::SocketsPerApp => self.sockets_per_app,
            Quota::SocketsPerEndpoint => self.sockets_per_endpoint,
            Quota::SocketsPerIp => self.sockets_per_ip,
            Quota::WebhooksPerApp => self.webhooks_per_app,
        }
    }
}

/// An app's own values for some quotas, set by an admin; the others keep
/// the configured default. Stored with the app as a JSON object
/// (`{"rooms_per_app": 50}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaOverrides(BTreeMap<Quota, u64>);

impl QuotaOverrides {
    /// Parses the stored form.
    ///
    /// # Errors
    ///
    /// Text that is not a JSON object of known quota keys to counts.
    pub fn parse(stored: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(stored)
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).expect("a map of quota keys to counts serializes")
    }

    /// Sets `quota` to `value`, or back to the default with `None`.
    pub fn set(&mut self, quota: Quota, value: Option<u64>) {
        match value {
            Some(value) => self.0.insert(quota, value),
            None => self.0.remove(&quota),
        };
    }

    /// The app's own value of `quota`, if an admin set one.
    pub fn get(&self, quota: Quota) -> Option<u64> {
        self.0.get(&quota).copied()
    }

    /// The value of `quota` for this app: its own, else `defaults`'.
    /// `None` when unlimited.
    pub fn limit(&self, quota: Quota, defaults: &QuotasConfig) -> Option<u64> {
        let value = self.get(quota).unwrap_or_else(|| defaults.default_of(quota));
        (value != 0).then_some(value)
    }
}

/// `apps_per_account` for an account owning apps with `owned` overrides.
/// The quota belongs to the account, but admins set quotas on apps: the
/// largest value set on any of the account's apps wins (0, unlimited, over
/// every number), else the default.
pub fn apps_per_account<'a>(
    owned: impl IntoIterator<Item = &'a QuotaOverrides>,
    defaults: &QuotasConfig,
) -> Option<u64> {
    let set = owned.into_iter().filter_map(|overrides| overrides.get(Quota::AppsPerAccount));
    match set.map(|value| if value == 0 { u64::MAX } else { value }).max() {
        Some(u64::MAX) => None,
        Some(value) => Some(value),
        None => QuotaOverrides::default().limit(Quota::AppsPerAccount, defaults),
    }
}

/// Who a WebSocket connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    /// Row id of the endpoint's app.
    pub app_id: i64,
    /// Row id of the endpoint.
    pub endpoint_id: i64,
    /// The client's address (IPv6 counted by its `/64`).
    pub ip: IpAddr,
}

impl SocketOwner {
    /// What the owner's connection counts under: its app, endpoint and
    /// address (IPv6 by its `/64`), in that order.
    fn counted(&self) -> [Counted; 3] {
        [Counted::App(self.app_id), Counted::Endpoint(self.endpoint_id), Counted::Address(address_key(self.ip))]
    }

    /// The names this owner's counts are published under, for other nodes
    /// (`app`, `endpoint`, `address`, in that order).
    pub fn count_names(&self) -> [String; 3] {
        self.counted().map(Counted::name)
    }
}

/// One thing sockets are counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Counted {
    App(i64),
    Endpoint(i64),
    Address(IpAddr),
}

impl Counted {
    /// The name other nodes read the count under (room counts, published
    /// beside these, are bare numbers).
    fn name(self) -> String {
        match self {
            Self::App(id) => format!("a:{id}"),
            Self::Endpoint(id) => format!("e:{id}"),
            Self::Address(ip) => format!("i:{ip}"),
        }
    }
}

/// The socket quotas that apply to one connection (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketLimits {
    /// `sockets_per_app`.
    pub per_app: Option<u64>,
    /// `sockets_per_endpoint`.
    pub per_endpoint: Option<u64>,
    /// `sockets_per_ip`.
    pub per_ip: Option<u64>,
}

impl SocketLimits {
    /// The socket quotas of an app with `overrides`.
    pub fn of(overrides: &QuotaOverrides, defaults: &QuotasConfig) -> Self {
        Self {
            per_app: overrides.limit(Quota::SocketsPerApp, defaults),
            per_endpoint: overrides.limit(Quota::SocketsPerEndpoint, defaults),
            per_ip: overrides.limit(Quota::SocketsPerIp, defaults),
        }
    }

    /// Whether no socket quota applies (then nothing needs counting
    /// elsewhere).
    pub fn unlimited(&self) -> bool {
        self.per_app.is_none() && self.per_endpoint.is_none() && self.per_ip.is_none()
    }
}

/// This node's live WebSocket connections per app, endpoint and client
/// address. Share it as `Arc<SocketCounts>`.
///
/// One mutex guards the counts, so checking every quota and counting the
/// connection is one step: two handshakes racing for the last slot cannot
/// both get it. It is taken once per handshake and once per close, never
/// on the message path. The same step keeps each app's peak for usage
/// (see [`crate::usage`]).
#[derive(Default)]
pub struct SocketCounts {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    live: HashMap<Counted, u64>,
    /// Per app, the most connections open at once since the peaks were
    /// last taken.
    peaks: HashMap<i64, u64>,
}

/// A connection counted in [`SocketCounts`]; dropping it (when the socket
/// closes) uncounts it. Small (it lives as long as its socket).
pub struct SocketPermit {
    counts: Arc<SocketCounts>,
    owner: SocketOwner,
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock();
        for counted in self.owner.counted() {
            if let Some(count) = counts.live.get_mut(&counted) {
                *count -= 1;
                if *count == 0 {
                    counts.live.remove(&counted);
                }
            }
        }
    }
}

impl SocketCounts {
    /// Counts a new connection of `owner` if every quota in `limits` has
    /// room for it, given `elsewhere`: the owner's connections on other
    /// nodes (app, endpoint, address, as [`SocketOwner::count_names`]).
    ///
    /// # Errors
    ///
    /// The first full quota, in the order app, endpoint, address.
    pub fn admit(
        self: &Arc<Self>,
        owner: &SocketOwner,
        limits: SocketLimits,
        elsewhere: [u64; 3],
    ) -> Result<SocketPermit, QuotaExceeded> {
        let counted = owner.counted();
        let checks = [
            (Quota::SocketsPerApp, limits.per_app),
            (Quota::SocketsPerEndpoint, limits.per_endpoint),
            (Quota::SocketsPerIp, limits.per_ip),
        ];
        let mut counts = self.counts.lock();
        for ((key, (quota, limit)), other_nodes) in counted.iter().zip(checks).zip(elsewhere) {
            let here = counts.live.get(key).copied().unwrap_or(0);
            if let Some(limit) = limit.filter(|limit| here + other_nodes >= *limit) {
                return Err(QuotaExceeded { quota, limit });
            }
        }
        for key in counted {
            *counts.live.entry(key).or_insert(0) += 1;
        }
        let of_app = counts.live[&Counted::App(owner.app_id)];
        let peak = counts.peaks.entry(owner.app_id).or_insert(0);
        *peak = (*peak).max(of_app);
        drop(counts);
        Ok(SocketPermit { counts: Arc::clone(self), owner: *owner })
    }

    /// This node's live connections of an endpoint.
    pub fn of_endpoint(&self, endpoint_id: i64) -> u64 {
        self.counts.lock().live.get(&Counted::Endpoint(endpoint_id)).copied().unwrap_or(0)
    }

    /// This node's live connections of an app.
    pub fn of_app(&self, app_id: i64) -> u64 {
        self.counts.lock().live.get(&Counted::App(app_id)).copied().unwrap_or(0)
    }

    /// Per app, the most connections open at once here since the last
    /// [`Self::take_peaks`]; apps with none open meanwhile are left out.
    pub fn peaks(&self) -> HashMap<i64, u64> {
        self.counts.lock().peaks.clone()
    }

    /// [`Self::peaks`], starting the next period's peaks from the
    /// connections open now.
    pub fn take_peaks(&self) -> HashMap<i64, u64> {
        let mut counts = self.counts.lock();
        let open: HashMap<i64, u64> = counts
            .live
            .iter()
            .filter_map(|(counted, n)| match counted {
                Counted::App(app_id) => Some((*app_id, *n)),
                _ => None,
            })
            .collect();
        std::mem::replace(&mut counts.peaks, open)
    }

    /// This node's live connections, of every app.
    pub fn total(&self) -> u64 {
        let counts = self.counts.lock();
        counts.live.iter().filter(|(counted, _)| matches!(counted, Counted::App(_))).map(|(_, n)| n).sum()
    }

    /// The name other nodes publish their connections of an app under.
    pub fn app_count_name(app_id: i64) -> String {
        Counted::App(app_id).name()
    }

    /// Whether a published count name is an app's (each connection is
    /// counted under exactly one).
    pub fn is_app_count_name(name: &str) -> bool {
        name.starts_with("a:")
    }

    /// The name other nodes publish their connections of an endpoint under.
    pub fn endpoint_count_name(endpoint_id: i64) -> String {
        Counted::Endpoint(endpoint_id).name()
    }

    /// Every count of this node, by published name, for other nodes.
    pub fn snapshot(&self) -> HashMap<String, u64> {
        self.counts.lock().live.iter().map(|(counted, n)| (counted.name(), *n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(endpoint_id: i64, ip: &str) -> SocketOwner {
        SocketOwner { app_id: 1, endpoint_id, ip: ip.parse().unwrap() }
    }

    #[test]
    fn a_full_quota_refuses_and_a_closed_socket_frees_its_slot() {
        let counts = Arc::new(SocketCounts::default());
        let limits = SocketLimits { per_endpoint: Some(2), ..SocketLimits::default() };
        let first = counts.admit(&owner(7, "10.0.0.1"), limits, [0; 3]).unwrap();
        let _second = counts.admit(&owner(7, "10.0.0.2"), limits, [0; 3]).unwrap();
        let refused = counts.admit(&owner(7, "10.0.0.3"), limits, [0; 3]).err();
        assert_eq!(refused, Some(QuotaExceeded { quota: Quota::SocketsPerEndpoint, limit: 2 }));
        assert!(counts.admit(&owner(8, "10.0.0.3"), limits, [0; 3]).is_ok(), "another endpoint");
        drop(first);
        assert!(counts.admit(&owner(7, "10.0.0.3"), limits, [0; 3]).is_ok(), "a slot freed");
    }

    #[test]
    fn other_nodes_count_and_every_count_leaves_with_its_socket() {
        let counts = Arc::new(SocketCounts::default());
        let limits = SocketLimits { per_app: Some(3), per_ip: Some(10), ..SocketLimits::default() };
        let refused = counts.admit(&owner(1, "10.0.0.1"), limits, [3, 0, 0]).err();
        assert_eq!(refused, Some(QuotaExceeded { quota: Quota::SocketsPerApp, limit: 3 }));
        let permit = counts.admit(&owner(1, "2001:db8::1"), limits, [2, 0, 0]).unwrap();
        assert_eq!(counts.snapshot().get("i:2001:db8::"), Some(&1), "IPv6 counted by its /64");
        drop(permit);
        assert!(counts.snapshot().is_empty());
    }

    #[test]
    fn an_app_s_peak_outlives_its_sockets_until_taken() {
        let counts = Arc::new(SocketCounts::default());
        let limits = SocketLimits::default();
        let first = counts.admit(&owner(1, "10.0.0.1"), limits, [0; 3]).unwrap();
        let second = counts.admit(&owner(2, "10.0.0.2"), limits, [0; 3]).unwrap();
        drop(second);
        assert_eq!(counts.of_app(1), 1);
        assert_eq!(counts.take_peaks(), HashMap::from([(1, 2)]), "two were open at once");
        assert_eq!(counts.peaks(), HashMap::from([(1, 1)]), "the next period starts from the one still open");
        drop(first);
        assert_eq!(counts.take_peaks(), HashMap::from([(1, 1)]));
        assert!(counts.take_peaks().is_empty(), "nothing open, nothing to report");
    }

    #[test]
    fn overrides_win_over_defaults_and_zero_is_unlimited() {
        let defaults = QuotasConfig { rooms_per_app: 5, ..QuotasConfig::default() };
        let mut overrides = QuotaOverrides::parse("{}").unwrap();
        assert_eq!(overrides.limit(Quota::RoomsPerApp, &defaults), Some(5));
        overrides.set(Quota::RoomsPerApp, Some(0));
        assert_eq!(overrides.limit(Quota::RoomsPerApp, &defaults), None);
        overrides.set(Quota::RoomsPerApp, Some(9));
        assert_eq!(
            QuotaOverrides::parse(&overrides.to_stored()).unwrap().limit(Quota::RoomsPerApp, &defaults),
            Some(9)
        );
        overrides.set(Quota::RoomsPerApp, None);
        assert_eq!(overrides.to_stored(), "{}");
        assert!(QuotaOverrides::parse(r#"{"rooms": 1}"#).is_err(), "unknown keys are refused");
    }

    #[test]
    fn the_largest_apps_per_account_set_on_an_account_s_apps_wins() {
        let defaults = QuotasConfig { apps_per_account: 3, ..QuotasConfig::default() };
        let with = |value| {
            let mut overrides = QuotaOverrides::default();
            overrides.set(Quota::AppsPerAccount, Some(value));
            overrides
        };
        assert_eq!(apps_per_account([], &defaults), Some(3));
        assert_eq!(apps_per_account(&[QuotaOverrides::default(), with(5), with(4)], &defaults), Some(5));
        assert_eq!(apps_per_account(&[with(5), with(0)], &defaults), None, "0 is unlimited");
    }
}
