//! Per-app allow-lists of web origins.
//!
//! Browsers send an `Origin` header with cross-site requests and with every
//! WebSocket handshake; an app may list the origins its pages are served
//! from, and then the REST API and the WebSocket refuse pages elsewhere
//! (`403 forbidden`). An empty list allows every origin, as the original
//! server did. Requests without an `Origin` (servers, command-line tools)
//! are always let through: the header only tells about browsers, and any
//! other client can send whatever it likes in it.
//!
//! Entries are origins as browsers send them, `scheme://host[:port]`, or
//! `scheme://*.domain[:port]` for every subdomain of `domain` (not `domain`
//! itself). They are kept normalized: lower case, without a default port or
//! a trailing slash.

use std::fmt;

/// Entries an app may list, at most.
pub const MAX_ORIGINS: usize = 50;

/// Longest entry, in bytes (a 253-byte host name plus scheme and port).
const MAX_ORIGIN_BYTES: usize = 300;

/// An entry of an allow-list or an `Origin` header that is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrigin {
    /// The text is not `scheme://host[:port]`.
    #[error("{0:?} is not an origin: write scheme://host or scheme://host:port, for example https://example.com")]
    Malformed(String),
    /// More entries than [`MAX_ORIGINS`] (or more text than they can take).
    #[error("at most {MAX_ORIGINS} origins can be listed")]
    TooMany,
}

/// The origins an app's pages may use the API and the WebSocket from;
/// empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<OriginPattern>);

impl AllowedOrigins {
    /// Parses entries (see the module docs); duplicates are kept once.
    ///
    /// # Errors
    ///
    /// The first entry that is not an origin, or too many entries.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidOrigin> {
        let mut patterns: Vec<OriginPattern> = Vec::new();
        for entry in entries {
            let pattern = OriginPattern::parse(entry, true)?;
            if !patterns.contains(&pattern) {
                // Checked as the list grows, so a huge list costs no more
                // than a full one.
                if patterns.len() == MAX_ORIGINS {
                    return Err(InvalidOrigin::TooMany);
                }
                patterns.push(pattern);
            }
        }
        Ok(Self(patterns))
    }

    /// Parses a list written by people: entries separated by white space
    /// or commas (one per line in the portal).
    ///
    /// # Errors
    ///
    /// As [`AllowedOrigins::parse`].
    pub fn parse_text(text: &str) -> Result<Self, InvalidOrigin> {
        if text.len() > MAX_ORIGINS * MAX_ORIGIN_BYTES {
            return Err(InvalidOrigin::TooMany);
        }
        Self::parse(text.split(|c: char| c.is_whitespace() || c == ',').filter(|entry| !entry.is_empty()))
    }

    /// Whether every origin is allowed (nothing is listed).
    pub fn allows_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request with this `Origin` header may go on.
    pub fn permits(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if self.allows_any() {
            return true;
        }
        // `null` (sandboxed frames, files) and anything else that does not
        // parse cannot match a listed origin.
        OriginPattern::parse(origin, false).is_ok_and(|origin| self.0.iter().any(|pattern| pattern.matches(&origin)))
    }

    /// The entries, normalized.
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// The stored form: entries separated by single spaces; empty for any.
    pub fn to_stored(&self) -> String {
        self.entries().join(" ")
    }
}

/// `scheme://host[:port]`, the host possibly `*.domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    scheme: String,
    host: Host,
    /// `None` for the scheme's default port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Exact(String),
    /// Any host ending in `.` followed by this domain.
    SubdomainsOf(String),
}

impl OriginPattern {
    fn parse(text: &str, wildcards: bool) -> Result<Self, InvalidOrigin> {
        let malformed = || InvalidOrigin::Malformed(text.chars().take(MAX_ORIGIN_BYTES).collect());
        if text.len() > MAX_ORIGIN_BYTES {
            return Err(malformed());
        }
        let lower = text.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or_else(malformed)?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
            && scheme.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if !scheme_ok || authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(malformed());
        }
        let (host, port) = split_port(authority).ok_or_else(malformed)?;
        let host = match host.strip_prefix("*.") {
            Some(domain) if wildcards && valid_host(domain) => Host::SubdomainsOf(domain.to_owned()),
            None if valid_host(host) => Host::Exact(host.to_owned()),
            _ => return Err(malformed()),
        };
        let default_port = match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        let port = port.filter(|port| Some(*port) != default_port);
        Ok(Self { scheme: scheme.to_owned(), host, port })
    }

    /// Whether the concrete `origin` is one this pattern covers.
    fn matches(&self, origin: &Self) -> bool {
        let Host::Exact(host) = &origin.host else { return false };
        let host_matches = match &self.host {
            Host::Exact(listed) => listed == host,
            Host::SubdomainsOf(domain) => {
                host.strip_suffix(domain.as_str()).is_some_and(|label| label.len() > 1 && label.ends_with('.'))
            }
        };
        self.scheme == origin.scheme && self.port == origin.port && host_matches
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Exact(host) => write!(f, "{}://{host}", self.scheme)?,
            Host::SubdomainsOf(domain) => write!(f, "{}://*.{domain}", self.scheme)?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// `host` and the port after it, if any; `[v6]` hosts keep their brackets.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_start = match authority.rfind(']') {
        Some(bracket) => authority[bracket..].find(':').map(|at| bracket + at),
        None => authority.rfind(':'),
    };
    match port_start {
        Some(colon) => Some((&authority[..colon], Some(authority[colon + 1..].parse().ok()?))),
        None => Some((authority, None)),
    }
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedOrigins {
        AllowedOrigins::parse(entries.iter().copied()).unwrap()
    }

    #[test]
    fn an_empty_list_permits_everything() {
        let any = AllowedOrigins::default();
        assert!(any.allows_any());
        assert!(any.permits(Some("https://anywhere.example")));
        assert!(any.permits(Some("null")));
        assert!(any.permits(None));
    }

    #[test]
    fn listed_origins_are_normalized() {
        let origins = list(&["HTTPS://Example.com:443/", "http://localhost:3000", "https://example.com"]);
        assert_eq!(origins.entries(), ["https://example.com", "http://localhost:3000"]);
        assert_eq!(origins.to_stored(), "https://example.com http://localhost:3000");
        assert_eq!(AllowedOrigins::parse_text(&origins.to_stored()), Ok(origins));
    }

    #[test]
    fn only_listed_origins_are_permitted() {
        let origins = list(&["https://example.com", "http://localhost:3000", "http://[::1]:8080"]);
        for allowed in ["https://example.com", "https://EXAMPLE.com:443", "http://localhost:3000", "http://[::1]:8080"]
        {
            assert!(origins.permits(Some(allowed)), "{allowed}");
        }
        for refused in [
            "http://example.com",
            "https://example.com:8443",
            "https://evil.example.com",
            "https://example.com.evil.net",
            "http://localhost:3001",
            "null",
            "",
        ] {
            assert!(!origins.permits(Some(refused)), "{refused}");
        }
        assert!(origins.permits(None), "non-browser clients send no Origin");
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        let origins = list(&["https://*.example.com"]);
        assert!(origins.permits(Some("https://app.example.com")));
        assert!(origins.permits(Some("https://a.b.example.com")));
        assert!(!origins.permits(Some("https://example.com")));
        assert!(!origins.permits(Some("https://badexample.com")));
        assert!(!origins.permits(Some("http://app.example.com")));
        assert!(!origins.permits(Some("https://*.example.com")), "a header is never a pattern");
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "example.com",
            "https://",
            "https://example.com/path",
            "https://user@example.com",
            "https://example.com:99999",
            "https://exa mple.com",
            "https://*.",
            "https://a.*.example.com",
            "*",
            "1http://example.com",
            "http://[nothost]",
        ] {
            assert!(
                matches!(AllowedOrigins::parse([bad]), Err(InvalidOrigin::Malformed(_))),
                "{bad} should be refused"
            );
        }
        let many: Vec<String> = (0..=MAX_ORIGINS).map(|n| format!("https://app{n}.example.com")).collect();
        assert_eq!(AllowedOrigins::parse(many.iter().map(String::as_str)), Err(InvalidOrigin::TooMany));
        assert_eq!(
            AllowedOrigins::parse(many[..MAX_ORIGINS].iter().map(String::as_str)).unwrap().entries().len(),
            MAX_ORIGINS
        );
        let repeated = "https://example.com ".repeat(500);
        assert_eq!(AllowedOrigins::parse_text(&repeated).unwrap().entries(), ["https://example.com"]);
        assert_eq!(AllowedOrigins::parse_text(&"x".repeat(100_000)), Err(InvalidOrigin::TooMany));
    }
}
