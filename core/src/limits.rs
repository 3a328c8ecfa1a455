//! Rate limits (token buckets from `governor`): per app on the REST API, per
//! connection on the WebSocket, and failed credentials per client address.
//! A rate of 0 in the config disables one. Limits keyed by something a
//! client chooses (its address, an email) go through [`KeyedBuckets`], whose
//! memory is bounded whatever the number of keys.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::RwLock;

use crate::error::ServiceError;

/// The clock every connection's limiters share. Making a clock asks the CPU
/// which counters it has (`cpuid`), which a virtual machine traps: two
/// clocks per connection took 6 % of the server in a connection storm.
static CONNECTION_CLOCK: LazyLock<DefaultClock> = LazyLock::new(DefaultClock::default);

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// REST requests per app.
pub struct ApiRateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<i64>>,
}

impl ApiRateLimiter {
    /// A limiter allowing `per_second` sustained and `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self { limiter: quota(per_second, burst).map(RateLimiter::keyed) }
    }

    /// Takes one request from the app's bucket.
    ///
    /// # Errors
    ///
    /// How long to wait before the next request would be allowed.
    pub fn check(&self, app_id: i64) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(&app_id).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Messages sent by one WebSocket connection.
pub struct ConnectionRateLimiter {
    limiter: Option<DefaultDirectRateLimiter>,
}

impl ConnectionRateLimiter {
    /// A limiter allowing `per_second` sustained and `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter =
            quota(per_second, burst).map(|quota| RateLimiter::direct_with_clock(quota, CONNECTION_CLOCK.clone()));
        Self { limiter }
    }

    /// Whether one more message may be sent now.
    pub fn allow(&self) -> bool {
        self.limiter.as_ref().is_none_or(|limiter| limiter.check().is_ok())
    }
}

/// Keys a [`KeyedBuckets`] (or the blocked list of a [`FailedAuthLimiter`])
/// tracks at most; past it, it forgets them all and starts over, so an
/// attacker with many addresses or emails costs bounded memory (and at
/// worst a fresh allowance).
const MAX_TRACKED_KEYS: usize = 100_000;
/// Checks between two sweeps of the keys no longer worth tracking.
const SWEEP_EVERY: u64 = 4096;

/// A token bucket per key, for keys a client chooses: full buckets are
/// swept every [`SWEEP_EVERY`] checks, and past [`MAX_TRACKED_KEYS`] the
/// buckets start over.
pub struct KeyedBuckets<K: Clone + std::hash::Hash + Eq> {
    quota: Quota,
    buckets: RwLock<DefaultKeyedRateLimiter<K>>,
    checks: AtomicU64,
}

impl<K: Clone + std::hash::Hash + Eq> KeyedBuckets<K> {
    /// Buckets of `quota` each.
    pub fn new(quota: Quota) -> Self {
        Self { quota, buckets: RwLock::new(RateLimiter::keyed(quota)), checks: AtomicU64::new(0) }
    }

    /// Takes one from `key`'s bucket.
    ///
    /// # Errors
    ///
    /// How long until the bucket has one again.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let mut buckets = self.buckets.write();
            buckets.retain_recent();
            if buckets.len() > MAX_TRACKED_KEYS {
                *buckets = RateLimiter::keyed(self.quota);
            }
        }
        self.buckets.read().check_key(key).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Failed credentials (unknown or revoked API keys, unknown endpoint codes)
/// per client address. Past `limits.failed_auth_per_minute`, the address
/// is blocked until its allowance refills: its requests are answered `429`
/// before any credential is looked up, so a guessing flood costs no
/// database query and never slows other clients. IPv6 clients count per
/// `/64`, the block one subscriber usually holds.
pub struct FailedAuthLimiter {
    /// Failures per address; `None` when the limit is off.
    failures: Option<KeyedBuckets<IpAddr>>,
    /// Addresses over their allowance, until when. Read on every request
    /// that presents a credential, written only on failures; entries that
    /// ran out stay until the next failure of their address or until the
    /// map is full.
    blocked: RwLock<HashMap<IpAddr, Instant>>,
}

impl FailedAuthLimiter {
    /// A limiter allowing `per_minute` failures per address (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        let failures = NonZeroU32::new(per_minute).map(|per_minute| KeyedBuckets::new(Quota::per_minute(per_minute)));
        Self { failures, blocked: RwLock::new(HashMap::new()) }
    }

    /// Lets `ip` present a credential, unless it is blocked.
    ///
    /// # Errors
    ///
    /// `RateLimited` with the time until it may.
    pub fn admit(&self, ip: IpAddr) -> Result<(), ServiceError> {
        if self.failures.is_none() {
            return Ok(());
        }
        let blocked = self.blocked.read();
        if blocked.is_empty() {
            return Ok(());
        }
        match blocked.get(&address_key(ip)).map(|until| until.saturating_duration_since(Instant::now())) {
            Some(retry_after) if !retry_after.is_zero() => Err(ServiceError::RateLimited { retry_after }),
            _ => Ok(()),
        }
    }

    /// Counts a credential of `ip` that was refused with `refusal`: the
    /// answer is `refusal`, or `RateLimited` when this failure takes the
    /// address past its allowance (and blocks it).
    pub fn failed(&self, ip: IpAddr, refusal: ServiceError) -> ServiceError {
        match self.record_failure(ip) {
            Some(retry_after) => ServiceError::RateLimited { retry_after },
            None => refusal,
        }
    }

    fn record_failure(&self, ip: IpAddr) -> Option<Duration> {
        let key = address_key(ip);
        let wait = self.failures.as_ref()?.check(&key).err()?;
        let mut blocked = self.blocked.write();
        if blocked.len() >= MAX_TRACKED_KEYS {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= MAX_TRACKED_KEYS {
                blocked.clear();
            }
        }
        blocked.insert(key, Instant::now() + wait);
        Some(wait)
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its `/64`.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_limit_refuses_past_the_burst_per_app() {
        let limiter = ApiRateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.check(1).is_ok());
        }
        let wait = limiter.check(1).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limiter.check(2).is_ok(), "another app has its own bucket");
    }

    #[test]
    fn failed_credentials_block_their_address_only() {
        let limiter = FailedAuthLimiter::new(3);
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.admit(attacker).is_ok());
            assert_eq!(limiter.record_failure(attacker), None);
        }
        let wait = limiter.record_failure(attacker).expect("the fourth failure blocks");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        assert!(limiter.admit(attacker).is_err(), "blocked before any lookup");
        assert!(limiter.admit("203.0.113.8".parse().unwrap()).is_ok(), "others are not");
        let answer = limiter.failed(attacker, ServiceError::Forbidden);
        assert!(matches!(answer, ServiceError::RateLimited { .. }), "{answer:?}");
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let limiter = FailedAuthLimiter::new(1);
        limiter.record_failure("2001:db8::1".parse().unwrap());
        assert!(limiter.record_failure("2001:db8::2".parse().unwrap()).is_some(), "same /64");
        assert!(limiter.admit("2001:db8:0:0:ffff::9".parse().unwrap()).is_err());
        assert!(limiter.admit("2001:db8:0:1::1".parse().unwrap()).is_ok(), "another /64");
        assert!(FailedAuthLimiter::new(0).record_failure("2001:db8::1".parse().unwrap()).is_none(), "0 is off");
    }

    #[test]
    fn zero_disables_a_limit() {
        let limiter = ConnectionRateLimiter::new(0, 0);
        assert!((0..10_000).all(|_| limiter.allow()));
    }
}
