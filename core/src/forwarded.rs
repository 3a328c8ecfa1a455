//! Who a request really comes from, and how the client reached us, when a
//! proxy (nginx) stands in front: `X-Forwarded-For`, `X-Forwarded-Proto`
//! and `X-Forwarded-Host` are believed only from the proxies listed in
//! `server.trusted_proxies`. Anyone else could send them to pose as another
//! client (dodging per-client limits) or to get `wss://` URLs naming a host
//! of their choosing.

use std::net::IpAddr;

use ipnet::IpNet;

/// Addresses and networks from the configuration (`127.0.0.1`, `::1`,
/// `10.0.0.0/8`), parsed once when it is read: `server.trusted_proxies`,
/// `metrics.allow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Networks(Vec<IpNet>);

/// The proxies whose forwarding headers are believed
/// (`server.trusted_proxies`).
pub type TrustedProxies = Networks;

/// An entry that is neither an address nor a network.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or a network like 10.0.0.0/8")]
pub struct InvalidNetwork(String);

/// The forwarding headers of a request, as given (absent ones `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardedHeaders<'a> {
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<&'a str>,
    /// `X-Forwarded-Proto`.
    pub forwarded_proto: Option<&'a str>,
    /// `X-Forwarded-Host`.
    pub forwarded_host: Option<&'a str>,
    /// `Host`.
    pub host: Option<&'a str>,
}

/// Where a request comes from, after believing what may be believed. (Not
/// to be confused with a browser's `Origin` header, the page a request is
/// made from: see [`crate::origins`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address: the peer's, or the nearest untrusted address
    /// a trusted proxy forwarded.
    pub ip: IpAddr,
    /// Whether the client used HTTPS (with a trusted proxy saying so).
    pub https: bool,
    /// The host the client asked for, if it gave a usable one.
    pub host: Option<String>,
}

impl Networks {
    /// Parses addresses (`127.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
    ///
    /// # Errors
    ///
    /// The first entry that is neither.
    pub fn parse(entries: &[impl AsRef<str>]) -> Result<Self, InvalidNetwork> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidNetwork(entry.to_owned()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `ip` is one of the addresses or in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Where a request from `peer` with `headers` comes from.
    pub fn client_addr(&self, peer: IpAddr, headers: ForwardedHeaders<'_>) -> ClientAddr {
        let host = headers.host.map(str::trim).filter(|host| valid_host(host)).map(str::to_owned);
        if !self.contains(peer) {
            return ClientAddr { ip: peer.to_canonical(), https: false, host };
        }
        // Each proxy appends the address it got the request from, so the
        // client is the rightmost address that is not one of ours.
        let ip = headers
            .forwarded_for
            .into_iter()
            .flat_map(|list| list.rsplit(','))
            .map_while(|entry| entry.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .find(|ip| !self.contains(*ip))
            .unwrap_or(peer.to_canonical());
        let https = first_of(headers.forwarded_proto).is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        let host = first_of(headers.forwarded_host).filter(|host| valid_host(host)).map(str::to_owned).or(host);
        ClientAddr { ip, https, host }
    }
}

/// The first value of a comma-separated header: the one the outermost
/// proxy set.
fn first_of(value: Option<&str>) -> Option<&str> {
    value.and_then(|list| list.split(',').next()).map(str::trim)
}

/// A host name or address with an optional port, nothing that could break
/// out of a URL.
fn valid_host(host: &str) -> bool {
    !host.is_empty() && host.len() <= 255 && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
}

impl TryFrom<Vec<String>> for Networks {
    type Error = InvalidNetwork;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(&entries)
    }
}

impl From<Networks> for Vec<String> {
    fn from(networks: Networks) -> Self {
        networks.0.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const SPOOFED: ForwardedHeaders<'static> = ForwardedHeaders {
        forwarded_for: Some("6.6.6.6, 1.2.3.4"),
        forwarded_proto: Some("https"),
        forwarded_host: Some("evil.example"),
        host: Some("comms.example.com"),
    };

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let client = proxies(&["127.0.0.1"]).client_addr(ip("9.9.9.9"), SPOOFED);
        assert_eq!(client, ClientAddr { ip: ip("9.9.9.9"), https: false, host: Some("comms.example.com".into()) });
        assert_eq!(TrustedProxies::default().client_addr(ip("127.0.0.1"), SPOOFED).ip, ip("127.0.0.1"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_scheme_and_host() {
        let client = proxies(&["127.0.0.1", "10.0.0.0/8"]).client_addr(ip("127.0.0.1"), SPOOFED);
        assert_eq!(client.ip, ip("1.2.3.4"), "the rightmost address not ours; 6.6.6.6 was the client's claim");
        assert!(client.https);
        assert_eq!(client.host.as_deref(), Some("evil.example"));

        let chained = ForwardedHeaders { forwarded_for: Some("1.2.3.4, 10.1.2.3"), ..SPOOFED };
        assert_eq!(proxies(&["127.0.0.1", "10.0.0.0/8"]).client_addr(ip("127.0.0.1"), chained).ip, ip("1.2.3.4"));
        let mapped = proxies(&["127.0.0.1"]).client_addr(ip("::ffff:127.0.0.1"), SPOOFED);
        assert!(mapped.https, "IPv4-mapped peers count as their IPv4 address");
    }

    #[test]
    fn garbage_is_refused_or_ignored() {
        assert!(TrustedProxies::parse(&["localhost".to_owned()]).is_err());
        let weird = ForwardedHeaders {
            forwarded_for: Some("not-an-ip"),
            forwarded_proto: Some("http"),
            forwarded_host: Some("a/b"),
            host: Some("x y"),
        };
        let client = proxies(&["::1"]).client_addr(ip("::1"), weird);
        assert_eq!(client, ClientAddr { ip: ip("::1"), https: false, host: None });
    }
}
