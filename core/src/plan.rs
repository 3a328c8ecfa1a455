//! What a configuration would make a node do, told without starting it
//! (`comms check-config`): where it listens and stores, which broker it
//! uses, the URLs clients get, who approves apps, and the settings that
//! look like mistakes for the profile.

use std::net::IpAddr;

use serde::Serialize;

use crate::config::{Config, DatabaseKind, Profile};
use crate::forwarded::ClientAddr;
use crate::store::redact_url;

/// A node's plan, as `comms check-config` prints it. Passwords in URLs are
/// shown as `***`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// `dev` or `prod`.
    pub profile: Profile,
    /// The address `comms serve` listens on.
    pub listen: String,
    /// What clients are told the server's address is, or how it is found.
    pub public_url: String,
    /// The form of endpoints' `ws_url`s.
    pub ws_url: String,
    /// Whether this process speaks TLS itself or leaves it to a proxy.
    pub tls: String,
    /// `sqlite` or `postgresql`, and where.
    pub database: Target,
    /// `in-process` (one node) or `redis` (several nodes), and where.
    pub broker: Target,
    /// Whether the public demo runs.
    pub demo: bool,
    /// `automatic` or `by an admin`.
    pub app_approval: String,
    /// Whether the portal's session cookie is HTTPS-only.
    pub secure_cookies: bool,
    /// Where the portal's emails (confirmation and reset links) go.
    pub email: String,
    /// Settings that are valid but probably not meant; empty when none.
    pub warnings: Vec<String>,
}

/// A backing service: its kind and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// What it is.
    pub kind: String,
    /// Where, with any password hidden; empty when in-process.
    pub url: String,
}

impl Plan {
    /// The plan of a valid config.
    pub fn of(config: &Config) -> Self {
        let database_url = config.database_url();
        let broker = if config.broker.redis_url.is_empty() {
            Target { kind: "in-process".into(), url: String::new() }
        } else {
            Target { kind: "redis".into(), url: redact_url(&config.broker.redis_url) }
        };
        let public_url = if config.server.public_url.is_empty() {
            "(from each request's Host header)".to_owned()
        } else {
            config.server.public_url.clone()
        };
        let tls_config = &config.server.tls;
        let tls = if tls_config.enabled() {
            let redirect = match tls_config.redirect_from {
                Some(addr) => format!("; plain HTTP on {addr} redirects to https"),
                None => String::new(),
            };
            format!("built in: HTTPS on {} with the certificate in {}{redirect}", config.server.addr, tls_config.cert)
        } else if config.server.public_url.starts_with("https://") {
            "terminated by a proxy in front (public_url is https)".to_owned()
        } else {
            "none: plain HTTP".to_owned()
        };
        Self {
            profile: config.profile,
            listen: config.server.addr.to_string(),
            public_url,
            ws_url: config.server.ws_base(Some(&example_client(config))).endpoint_url("{code}"),
            tls,
            database: Target {
                kind: config.database_kind().map_or("unknown", DatabaseKind::as_str).into(),
                url: redact_url(&database_url),
            },
            broker,
            demo: config.demo.enabled,
            app_approval: if config.portal.auto_approve { "automatic" } else { "by an admin" }.into(),
            secure_cookies: config.portal.secure_cookies,
            email: if config.email.smtp_url.is_empty() {
                "none: emails, links included, are written to the log".to_owned()
            } else {
                format!("{} as {}", redact_url(&config.email.smtp_url), config.email.from)
            },
            warnings: warnings(config),
        }
    }
}

/// A request for `HOST` straight to this node (over HTTPS if it speaks
/// TLS), to show the form of `ws_url`s.
fn example_client(config: &Config) -> ClientAddr {
    ClientAddr { ip: IpAddr::from([0, 0, 0, 0]), https: config.server.tls.enabled(), host: Some("HOST".into()) }
}

fn warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut warn = |applies: bool, text: &str| {
        if applies {
            warnings.push(text.to_owned());
        }
    };
    let prod = config.profile == Profile::Prod;
    warn(
        prod && config.server.public_url.is_empty(),
        "profile is prod but server.public_url is empty: ws_urls will use ws:// and whatever Host clients send",
    );
    warn(prod && config.demo.enabled, "profile is prod but demo.enabled is on: anyone can chat in the demo rooms");
    warn(
        prod && config.portal.auto_approve,
        "profile is prod but portal.auto_approve is on: every registered app gets keys",
    );
    warn(
        prod && config.email.smtp_url.is_empty(),
        "profile is prod but email.smtp_url is empty: confirmation and password reset links only reach the log",
    );
    warn(
        config.server.public_url.starts_with("https://") && !config.portal.secure_cookies,
        "server.public_url is https but portal.secure_cookies is off: the session cookie may travel over plain HTTP",
    );
    warn(
        !config.broker.redis_url.is_empty() && config.demo.enabled,
        "several nodes with demo.enabled each run the demo bot: turn the demo off on all nodes but one",
    );
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plan_is_one_node_on_sqlite_without_warnings() {
        let plan = Plan::of(&Config::default());
        assert_eq!((plan.database.kind.as_str(), plan.broker.kind.as_str()), ("sqlite", "in-process"));
        assert_eq!(plan.ws_url, "ws://HOST/ws/endpoint/{code}/");
        assert_eq!(plan.app_approval, "automatic");
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn a_production_cluster_plan_hides_passwords_and_flags_doubtful_settings() {
        let mut config = Config { profile: Profile::Prod, ..Config::default() };
        config.server.public_url = "https://comms.example.com".into();
        config.database.url = "postgres://comms:secret@db:5432/comms".into();
        config.broker.redis_url = "redis://:hunter2@redis:6379".into();
        let plan = Plan::of(&config);
        assert!(plan.email.starts_with("none"), "{}", plan.email);
        assert_eq!(plan.ws_url, "wss://comms.example.com/ws/endpoint/{code}/");
        assert_eq!(plan.database.url, "postgres://comms:***@db:5432/comms");
        assert_eq!(plan.broker.url, "redis://:***@redis:6379");
        assert!(plan.tls.contains("proxy"));
        let text = plan.warnings.join("\n");
        for flagged in ["demo.enabled", "auto_approve", "secure_cookies", "demo bot", "email.smtp_url"] {
            assert!(text.contains(flagged), "{flagged} in {text}");
        }
    }

    #[test]
    fn built_in_tls_gives_wss_urls_and_says_where_the_certificate_is() {
        let mut config = Config::default();
        config.server.tls.cert = "/etc/comms/fullchain.pem".into();
        config.server.tls.key = "/etc/comms/privkey.pem".into();
        config.server.tls.redirect_from = Some("0.0.0.0:80".parse().unwrap());
        let plan = Plan::of(&config);
        assert_eq!(plan.ws_url, "wss://HOST/ws/endpoint/{code}/");
        assert!(plan.tls.starts_with("built in") && plan.tls.contains("/etc/comms/fullchain.pem"), "{}", plan.tls);
        assert!(plan.tls.contains("0.0.0.0:80 redirects"), "{}", plan.tls);
    }

    #[test]
    fn the_smtp_server_is_shown_without_its_password() {
        let mut config = Config::default();
        config.email.smtp_url = "smtps://comms:s3cret@smtp.example.com:465".into();
        config.email.from = "comms <noreply@example.com>".into();
        let plan = Plan::of(&config);
        assert_eq!(plan.email, "smtps://comms:***@smtp.example.com:465 as comms <noreply@example.com>");
    }
}
