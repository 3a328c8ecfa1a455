//! Rate limits (token buckets from `governor`): per app on the REST API and
//! per connection on the WebSocket. A rate of 0 in the config disables one.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

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
        Self { limiter: quota(per_second, burst).map(RateLimiter::direct) }
    }

    /// Whether one more message may be sent now.
    pub fn allow(&self) -> bool {
        self.limiter.as_ref().is_none_or(|limiter| limiter.check().is_ok())
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
    fn zero_disables_a_limit() {
        let limiter = ConnectionRateLimiter::new(0, 0);
        assert!((0..10_000).all(|_| limiter.allow()));
    }
}
