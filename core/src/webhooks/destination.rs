//! Where webhooks may post: `http` and `https` URLs only, and in the `prod`
//! profile never to this machine or the operator's private networks (a
//! webhook is an app's request that the server makes for it, so without
//! this rule any app could probe the inside of the network comms runs in).
//!
//! Names are checked twice: when a webhook is registered, and by the
//! resolver of every delivery's connection ([`GuardedResolver`]), so a name
//! that later resolves to a private address (DNS rebinding) is refused at
//! the moment it would be connected to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use crate::forwarded::Networks;

/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Which destinations are refused.
#[derive(Debug, Clone)]
pub struct Destinations {
    /// Whether loopback, private and link-local addresses are refused
    /// (the `prod` profile).
    refuse_private: bool,
    /// Addresses and networks allowed even so (`webhooks.allow_private`).
    allowed: Networks,
}

/// Why a destination is refused; the text is shown to the app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a URL, not http(s), or too long.
    #[error("{0}")]
    Url(String),
    /// It is, or resolves to, an address this server does not post to.
    #[error("{0} is a loopback, private or link-local address, which webhooks may not post to")]
    Private(IpAddr),
    /// Its host name does not resolve.
    #[error("the host {0} does not resolve")]
    Unresolved(String),
}

impl Destinations {
    /// Refusing private addresses (unless in `allowed`) or not.
    pub fn new(refuse_private: bool, allowed: Networks) -> Self {
        Self { refuse_private, allowed }
    }

    /// Checks the form of a webhook URL.
    ///
    /// # Errors
    ///
    /// [`Refused::Url`] for anything but an absolute `http(s)` URL with a
    /// host, without user or password, of at most [`MAX_URL_LEN`] bytes.
    pub fn parse_url(&self, text: &str) -> Result<Url, Refused> {
        if text.len() > MAX_URL_LEN {
            return Err(Refused::Url(format!("url is longer than {MAX_URL_LEN} bytes")));
        }
        let url = Url::parse(text).map_err(|err| Refused::Url(format!("url is not a valid URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Url("url must start with http:// or https://".into()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Refused::Url("url has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Url("url may not hold a user name or password".into()));
        }
        Ok(url)
    }

    /// Checks where `url` leads now: its address, or every address its
    /// name resolves to.
    ///
    /// # Errors
    ///
    /// [`Refused::Private`] or [`Refused::Unresolved`].
    pub async fn check(&self, url: &Url) -> Result<(), Refused> {
        if !self.refuse_private {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.permit(ip);
        }
        let addrs = tokio::net::lookup_host((bare, port)).await.map_err(|_| Refused::Unresolved(host.to_owned()))?;
        let mut any = false;
        for addr in addrs {
            self.permit(addr.ip())?;
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(Refused::Unresolved(host.to_owned()))
        }
    }

    /// `Ok` unless `ip` is refused.
    fn permit(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = ip.to_canonical();
        if self.refuse_private && is_internal(ip) && !self.allowed.contains(ip) {
            return Err(Refused::Private(ip));
        }
        Ok(())
    }
}

/// Loopback, private, link-local, shared (carrier-grade NAT) and
/// unspecified addresses: none of them is a receiver on the internet.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [first, second, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (first == 100 && (64..128).contains(&second))
                || first == 0
        }
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// The resolver of delivery connections: resolves as the system does, then
/// refuses the whole name if any address is refused.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<Destinations>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let destinations = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                destinations.permit(addr.ip())?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod(allowed: &[&str]) -> Destinations {
        Destinations::new(true, Networks::parse(allowed).unwrap())
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_taken() {
        let any = Destinations::new(false, Networks::default());
        assert!(any.parse_url("https://example.com/hook").is_ok());
        assert!(any.parse_url("http://127.0.0.1:9000/").is_ok());
        for bad in ["ftp://example.com/", "example.com/hook", "https://user:pw@example.com/", "file:///etc/passwd"] {
            assert!(any.parse_url(bad).is_err(), "{bad}");
        }
        assert!(any.parse_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[tokio::test]
    async fn prod_refuses_internal_addresses_unless_allowed() {
        let destinations = prod(&["10.1.0.0/16"]);
        for refused in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/",
            "http://192.168.1.2/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://localhost/",
        ] {
            let url = destinations.parse_url(refused).unwrap();
            assert!(destinations.check(&url).await.is_err(), "{refused}");
        }
        let allowed = destinations.parse_url("http://10.1.2.3/").unwrap();
        assert!(destinations.check(&allowed).await.is_ok());
        let public = destinations.parse_url("http://93.184.215.14/").unwrap();
        assert!(destinations.check(&public).await.is_ok());
    }
}
