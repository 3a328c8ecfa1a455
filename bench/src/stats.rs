//! What a scenario measures: latency histograms, seq checks for lost and
//! duplicated messages, and the rows of the report.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

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
    /// the clock was 7 % of the load generator's work at millions of
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

    /// Rows for the p50, p99 and p99.9 latencies, the p99 checked against
    /// `p99_target`.
    ///
    /// # Errors
    ///
    /// No sample was taken: the frames did not carry what the harness reads,
    /// and an empty histogram must not pass for a fast one.
    pub fn rows(&self, scenario: &str, p99_target: Option<Target>) -> anyhow::Result<Vec<Row>> {
        let histogram = self.histogram.borrow();
        anyhow::ensure!(!histogram.is_empty(), "{scenario}: no latency samples were taken");
        let ms = |percentile| histogram.value_at_percentile(percentile) as f64 / 1000.0;
        Ok(vec![
            Row::new(scenario, "latency p50", ms(50.0), "ms", None),
            Row::new(scenario, "latency p99", ms(99.0), "ms", p99_target),
            Row::new(scenario, "latency p99.9", ms(99.9), "ms", None),
        ])
    }
}

/// Checks one connection's seqs: each must be the previous plus one,
/// starting right after the seq the connection joined at.
pub struct SeqCheck {
    last: Cell<u64>,
    /// Seqs skipped.
    pub lost: Cell<u64>,
    /// Seqs seen again or out of order.
    pub duplicated: Cell<u64>,
    /// Messages received.
    pub received: Cell<u64>,
}

impl SeqCheck {
    /// A check for a connection that must receive every seq after `seq`
    /// (the welcome's `last_seq`, or the `after_seq` it resumed from).
    pub fn after(seq: u64) -> Self {
        Self { last: Cell::new(seq), lost: Cell::default(), duplicated: Cell::default(), received: Cell::default() }
    }

    /// Takes the next seq seen on the connection.
    pub fn observe(&self, seq: u64) {
        self.received.set(self.received.get() + 1);
        let last = self.last.get();
        if seq <= last {
            self.duplicated.set(self.duplicated.get() + 1);
        } else {
            self.lost.set(self.lost.get() + (seq - last - 1));
            self.last.set(seq);
        }
    }

    /// The last seq seen.
    pub fn last(&self) -> u64 {
        self.last.get()
    }

    /// Counts everything after the last seen seq up to `final_seq` as lost.
    pub fn finish(&self, final_seq: u64) {
        self.lost.set(self.lost.get() + final_seq.saturating_sub(self.last()));
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which scenario measured it.
    pub scenario: String,
    /// What was measured.
    pub metric: String,
    /// The figure.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The target, e.g. `>= 2000000` or `<= 2`, when the issue sets one.
    pub target: Option<String>,
    /// Whether the value meets the target.
    pub meets: Option<bool>,
}

/// Messages lost or duplicated in one scenario; both must be zero.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    /// Which scenario counted them.
    pub scenario: String,
    /// Seqs a connection never received.
    pub lost: u64,
    /// Seqs a connection received twice or out of order.
    pub duplicated: u64,
    /// Connections the server closed during the run (e.g. 1013, too slow).
    pub closed_by_server: u64,
}

/// A target: at least or at most a value.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The value must be at least this.
    AtLeast(f64),
    /// The value must be at most this.
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

/// Waits until every check has seen `final_seq`, or `limit` passes, then
/// counts what is missing as lost.
pub async fn drain(checks: &[Rc<SeqCheck>], final_seq: u64, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit && checks.iter().any(|c| c.last() < final_seq) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for check in checks {
        check.finish(final_seq);
    }
}

/// Sums the checks of a scenario.
pub fn integrity(scenario: &str, checks: &[Rc<SeqCheck>], closed: u64) -> Integrity {
    Integrity {
        scenario: scenario.into(),
        lost: checks.iter().map(|c| c.lost.get()).sum(),
        duplicated: checks.iter().map(|c| c.duplicated.get()).sum(),
        closed_by_server: closed,
    }
}
