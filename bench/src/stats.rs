//! What a scenario measures: latency histograms, seq checks for lost and
//! duplicated messages, and the rows of the report.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Publish-to-receive latency in microseconds, shared by the tasks of one
/// scenario (the load generator runs on one thread).
#[derive(Clone)]
pub struct Latency {
    histogram: Rc<RefCell<Histogram<u64>>>,
    /// Only samples taken while this is set count (after the warm-up).
    pub measuring: Rc<Cell<bool>>,
    epoch: Instant,
    /// Every how many deliveries a connection samples its latency. Reading
    /// the clock is a tenth of the load generator's work at millions of
    /// deliveries a second; a sample of them gives the same percentiles.
    pub sample_every: u64,
}

impl Latency {
    /// An empty histogram for frames stamped relative to `epoch`.
    pub fn new(epoch: Instant) -> Self {
        let histogram = Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        Self { histogram: Rc::new(RefCell::new(histogram)), measuring: Rc::default(), epoch, sample_every: 1 }
    }

    /// The same, sampling every `n`th delivery of each connection.
    pub fn sampling(mut self, n: u64) -> Self {
        self.sample_every = n.max(1);
        self
    }

    /// Records the latency of a frame sent at `sent_micros`.
    pub fn record(&self, sent_micros: u64) {
        if self.measuring.get() {
            let now = self.epoch.elapsed().as_micros() as u64;
            let _ = self.histogram.borrow_mut().record(now.saturating_sub(sent_micros).max(1));
        }
    }

    /// The latency at a percentile, in milliseconds.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.histogram.borrow().value_at_percentile(percentile) as f64 / 1000.0
    }
}

/// Checks one connection's seqs: each must be the previous plus one.
#[derive(Default)]
pub struct SeqCheck {
    last: Cell<Option<u64>>,
    /// Seqs skipped.
    pub lost: Cell<u64>,
    /// Seqs seen again or out of order.
    pub duplicated: Cell<u64>,
    /// Messages received.
    pub received: Cell<u64>,
}

impl SeqCheck {
    /// Takes the next seq seen on the connection.
    pub fn observe(&self, seq: u64) {
        self.received.set(self.received.get() + 1);
        match self.last.get() {
            Some(last) if seq <= last => self.duplicated.set(self.duplicated.get() + 1),
            Some(last) => {
                self.lost.set(self.lost.get() + (seq - last - 1));
                self.last.set(Some(seq));
            }
            None => self.last.set(Some(seq)),
        }
    }

    /// The last seq seen.
    pub fn last(&self) -> u64 {
        self.last.get().unwrap_or(0)
    }

    /// Counts everything after the last seen seq up to `final_seq` as lost.
    pub fn finish(&self, final_seq: u64) {
        if let Some(last) = self.last.get() {
            self.lost.set(self.lost.get() + final_seq.saturating_sub(last));
        } else if final_seq > 0 {
            self.lost.set(self.lost.get() + final_seq);
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// The target, e.g. `>= 2000000` or `<= 2`, when the issue sets one.
    pub target: Option<String>,
    pub meets: Option<bool>,
}

/// Messages lost or duplicated in one scenario; both must be zero.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    pub scenario: String,
    pub lost: u64,
    pub duplicated: u64,
    /// Connections the server closed during the run (e.g. 1013, too slow).
    pub closed_by_server: u64,
}

/// A target: at least or at most a value.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Row {
    /// A row, checked against a target when there is one.
    pub fn new(scenario: &str, metric: &str, value: f64, unit: &str, target: Option<Target>) -> Self {
        let (target, meets) = match target {
            Some(Target::AtLeast(min)) => (Some(format!(">= {min}")), Some(value >= min)),
            Some(Target::AtMost(max)) => (Some(format!("<= {max}")), Some(value <= max)),
            None => (None, None),
        };
        Self { scenario: scenario.into(), metric: metric.into(), value, unit: unit.into(), target, meets }
    }
}
