//! Test infrastructure shared by the crates' tests: real services, never
//! mocks. A dev-dependency of the crates, and used by the benchmark's broker
//! scenario for its database and Redis prefix; nothing here ships in the
//! `comms` binary.
//!
//! # Layout
//!
//! - [`postgres`]: a fresh PostgreSQL database per test ([`postgres::TestDatabase`]).
//! - [`redis`]: the shared Redis under a key prefix of the test's own, or a
//!   private `redis-server` a test may stop and start ([`redis::TestRedis`],
//!   [`redis::PrivateRedis`]).
//! - [`smtp`]: an SMTP receiver on a loopback port that keeps what it gets
//!   ([`smtp::SmtpSink`]), for tests of the emails comms sends.
//! - [`webhook`]: an HTTP receiver of webhook deliveries that keeps them
//!   and fails on request ([`webhook::WebhookReceiver`]).
//! - this module: [`missing_service`], the one rule for a service that is
//!   not there: skip outside CI, fail under `CI=true`.

use comms_core::store::redact_url;

pub mod postgres;
pub mod redis;
pub mod smtp;
pub mod webhook;

/// What a test does when a service it needs is missing: under `CI=true`
/// it fails, so a run without the service never passes silently; anywhere
/// else it prints a `skipping:` line to stderr and returns `None` for the
/// test to return early. `at` is where the service was looked for (a URL
/// is shown without its password).
///
/// # Panics
///
/// `CI` is `true`.
pub fn missing_service<T>(service: &str, at: &str, reason: &str) -> Option<T> {
    let shown = redact_url(at);
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{service} not reachable at {shown} ({reason}) and CI=true: start it, or point the test at one");
    }
    eprintln!("skipping: {service} not reachable at {shown} ({reason})");
    None
}
