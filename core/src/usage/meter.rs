//! One app's counters on this node, added to lock-free on the paths that
//! count (a delivery adds once per room and message, not per socket).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::UsageCounts;

/// Why a request or frame was refused, as usage counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A count quota was full (`quota_exceeded`, close code 4029).
    Quota,
    /// Over a rate (`rate_limited`).
    Rate,
    /// JSON nested deeper than `limits.max_json_depth`.
    Depth,
    /// A key or code of the app that does not work.
    Credentials,
}

/// What one app did on this node since its counts were last written to
/// the store. Shared as `Arc<AppMeter>` by the hub's rooms of the app and
/// by [`super::Usage`], which writes and subtracts it.
#[derive(Debug, Default)]
pub struct AppMeter {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    signals: AtomicU64,
    webhook_deliveries: AtomicU64,
    refused_quota: AtomicU64,
    refused_rate: AtomicU64,
    refused_depth: AtomicU64,
    refused_credentials: AtomicU64,
}

// Relaxed throughout: each counter is a sum read on its own, and the
// flush's lock orders a read against the subtraction that follows it.
impl AppMeter {
    /// Counts a message of `bytes` payload bytes published into one of the
    /// app's rooms.
    pub fn published(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a message frame of `bytes` bytes handed to `sockets` sockets.
    pub fn delivered(&self, sockets: u64, bytes: usize) {
        if sockets > 0 {
            self.messages_out.fetch_add(sockets, Ordering::Relaxed);
            self.bytes_out.fetch_add(sockets * bytes as u64, Ordering::Relaxed);
        }
    }

    /// Counts a signal sent.
    pub fn signalled(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a webhook delivery answered with a 2xx.
    pub fn webhook_delivered(&self) {
        self.webhook_deliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refusal.
    pub fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::Quota => &self.refused_quota,
            Refusal::Rate => &self.refused_rate,
            Refusal::Depth => &self.refused_depth,
            Refusal::Credentials => &self.refused_credentials,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far (`connections_peak` is not the meter's: 0).
    pub fn read(&self) -> UsageCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        UsageCounts {
            connections_peak: 0,
            messages_in: load(&self.messages_in),
            messages_out: load(&self.messages_out),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            signals: load(&self.signals),
            webhook_deliveries: load(&self.webhook_deliveries),
            refused_quota: load(&self.refused_quota),
            refused_rate: load(&self.refused_rate),
            refused_depth: load(&self.refused_depth),
            refused_credentials: load(&self.refused_credentials),
        }
    }

    /// Takes away counts read earlier and now written to the store; what
    /// was counted since stays.
    pub fn subtract(&self, written: &UsageCounts) {
        let sub = |counter: &AtomicU64, n: u64| counter.fetch_sub(n, Ordering::Relaxed);
        sub(&self.messages_in, written.messages_in);
        sub(&self.messages_out, written.messages_out);
        sub(&self.bytes_in, written.bytes_in);
        sub(&self.bytes_out, written.bytes_out);
        sub(&self.signals, written.signals);
        sub(&self.webhook_deliveries, written.webhook_deliveries);
        sub(&self.refused_quota, written.refused_quota);
        sub(&self.refused_rate, written.refused_rate);
        sub(&self.refused_depth, written.refused_depth);
        sub(&self.refused_credentials, written.refused_credentials);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_counted_during_a_write_stays_for_the_next() {
        let meter = AppMeter::default();
        meter.published(3);
        meter.refused(Refusal::Depth);
        meter.delivered(2, 10);
        let written = meter.read();
        assert_eq!((written.messages_out, written.bytes_out), (2, 20), "a frame's bytes once per socket");
        meter.published(5);
        meter.delivered(0, 10);
        meter.subtract(&written);
        let left = meter.read();
        assert_eq!((left.messages_in, left.bytes_in, left.refused_depth, left.messages_out), (1, 5, 0, 0));
    }
}
