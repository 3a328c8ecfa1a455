//! Usage per app (SPEC "Usage", `docs/usage.md`): connections, messages in
//! and out, signals, webhook deliveries and refusals, per minute, hour and
//! UTC day.
//!
//! **Counting.** Each app has one [`AppMeter`] of atomic counters on this
//! node. The paths that count add to it without a lock: a publish adds the
//! messages it published, the hub adds once per message and room the
//! sockets it handed the message to (see `Hub::deliver`), so counting costs
//! the fan-out one atomic add per message, not one per socket. Connection
//! peaks are kept by [`SocketCounts`], under the lock a handshake takes
//! anyway.
//!
//! **Writing.** A task writes what was counted to the store every
//! `usage.flush_ms` and at each minute's turn, so no write straddles two
//! minutes: each goes to the rows of the minute it was counted in, and to
//! that minute's hour and day (rolled up as it is written, not later).
//! Every node writes rows of its own (keyed by a node id made at start), so
//! nodes never contend for a row, and a read adds the nodes up. A failed
//! write keeps the counts for the next one.
//!
//! **Reading.** An answer is the store's rows plus what this node counted
//! and has not written yet, so on one node it is exact the moment it is
//! read; other nodes' counts join within `usage.flush_ms`. A read and a
//! write take one lock, so no count is seen twice or missed.
//! `connections_peak` over several nodes is the sum of each node's peak,
//! an upper bound of the true peak when the nodes' peaks do not coincide.
//!
//! [`standing`] tells where an app stands now against its quotas.

mod meter;
pub mod standing;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use comms_protocol::usage::{Granularity, UsageReport};
use parking_lot::RwLock;
use tokio::sync::Mutex;

use crate::config::UsageConfig;
use crate::error::ServiceError;
use crate::input::parse_time;
use crate::quotas::SocketCounts;
use crate::secrets;
use crate::store::{Store, UsageCounts};
use crate::time::now_ms;
pub use meter::{AppMeter, Refusal};

/// What an answer covers when the request does not say.
const DEFAULT_SPAN_MS: i64 = 24 * 3_600_000;

/// How often rows older than their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The periods a usage request asks for, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageWindow {
    /// The periods' length.
    pub granularity: Granularity,
    /// Start of the first period: `from` rounded down to a period start.
    pub first_ms: i64,
    /// Periods starting before this are included.
    pub to_ms: i64,
}

impl UsageWindow {
    /// The window of a request's `from`, `to` and `granularity` (each
    /// optional: the 24 hours before `to`, up to `now_ms`, by hour).
    ///
    /// # Errors
    ///
    /// `Invalid` for a time that is not RFC 3339, an unknown granularity,
    /// `from` not before `to`, or more than `usage.max_periods` periods.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        granularity: Option<&str>,
        now_ms: i64,
        config: &UsageConfig,
    ) -> Result<Self, ServiceError> {
        let granularity = match granularity {
            None => Granularity::Hour,
            Some(name) => Granularity::parse(name)
                .ok_or_else(|| ServiceError::Invalid("granularity must be minute, hour or day".into()))?,
        };
        let to_ms = to.map(|to| parse_time("to", to)).transpose()?.unwrap_or(now_ms);
        let from_ms = from.map(|from| parse_time("from", from)).transpose()?.unwrap_or(to_ms - DEFAULT_SPAN_MS);
        if from_ms >= to_ms {
            return Err(ServiceError::Invalid("from must be before to".into()));
        }
        let first_ms = granularity.period_start(from_ms);
        let periods = (to_ms - first_ms + granularity.millis() - 1) / granularity.millis();
        let most = i64::from(config.max_periods);
        if periods > most {
            return Err(ServiceError::Invalid(format!(
                "that is {periods} periods of a {}; ask for at most {most} (usage.max_periods): a shorter time \
                 or a longer granularity",
                granularity.as_str()
            )));
        }
        Ok(Self { granularity, first_ms, to_ms })
    }

    /// The last `periods` periods of `granularity`, the current one
    /// included, as of `now_ms`.
    pub fn last(periods: i64, granularity: Granularity, now_ms: i64) -> Self {
        let current = granularity.period_start(now_ms);
        Self { granularity, first_ms: current - (periods - 1) * granularity.millis(), to_ms: now_ms + 1 }
    }

    fn holds(&self, period_start: i64) -> bool {
        (self.first_ms..self.to_ms).contains(&period_start)
    }
}

/// This node's usage counters, their writer and the answers built from
/// them. Share it as `Arc<Usage>`.
pub struct Usage {
    /// This node's id in the rows it writes.
    node: String,
    store: Arc<dyn Store>,
    sockets: Arc<SocketCounts>,
    config: UsageConfig,
    meters: RwLock<HashMap<i64, Arc<AppMeter>>>,
    /// Held by a write from reading the counters to subtracting what it
    /// wrote, and by a read from asking the store to reading the counters.
    unwritten: Mutex<Unwritten>,
}

/// What this node counted and has not written yet, besides the meters.
struct Unwritten {
    /// The minute the meters' counts will be written under.
    minute: i64,
    /// Peaks taken from [`SocketCounts`] whose write failed.
    peaks: HashMap<i64, u64>,
    /// Peaks written for `minute` already: an app that only holds its
    /// connections has nothing new to write until the next minute.
    written_peaks: HashMap<i64, u64>,
}

impl Unwritten {
    /// Whether `counts` of the app add anything to what this minute's rows
    /// hold: a count, or a peak higher than the one written.
    fn has_news(&self, app_id: i64, counts: &UsageCounts) -> bool {
        let written_peak = self.written_peaks.get(&app_id).copied().unwrap_or(0);
        let beside_peak = UsageCounts { connections_peak: 0, ..*counts };
        !beside_peak.is_empty() || counts.connections_peak > written_peak
    }

    /// Counts from now on go to `minute`.
    fn turn_to(&mut self, minute: i64) {
        if minute != self.minute {
            self.written_peaks.clear();
        }
        self.minute = minute;
    }
}

impl Usage {
    /// Counters for this node over `store`, with the connection peaks of
    /// `sockets`.
    pub fn new(store: Arc<dyn Store>, sockets: Arc<SocketCounts>, config: UsageConfig) -> Arc<Self> {
        let unwritten = Unwritten {
            minute: Granularity::Minute.period_start(now_ms()),
            peaks: HashMap::new(),
            written_peaks: HashMap::new(),
        };
        Arc::new(Self {
            node: secrets::node_id(),
            store,
            sockets,
            config,
            meters: RwLock::default(),
            unwritten: Mutex::new(unwritten),
        })
    }

    /// The app's meter on this node.
    pub fn meter(&self, app_id: i64) -> Arc<AppMeter> {
        if let Some(meter) = self.meters.read().get(&app_id) {
            return Arc::clone(meter);
        }
        Arc::clone(self.meters.write().entry(app_id).or_default())
    }

    /// Counts a refusal of one of the app's requests or frames.
    pub fn refused(&self, app_id: i64, why: Refusal) {
        self.meter(app_id).refused(why);
    }

    /// The app's usage in `window`, summed over every node.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    pub async fn report(&self, app_id: i64, window: UsageWindow) -> Result<UsageReport, ServiceError> {
        let periods = self.periods(app_id, window).await?;
        let points = periods.iter().map(|(start, counts)| counts.point(*start)).collect();
        Ok(UsageReport { granularity: window.granularity, points })
    }

    /// Every period of `window` with the app's usage in it, oldest first,
    /// those without activity included (as zeros): a chart's bars.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    pub async fn every_period(
        &self,
        app_id: i64,
        window: UsageWindow,
    ) -> Result<Vec<(i64, UsageCounts)>, ServiceError> {
        let mut periods = self.periods(app_id, window).await?;
        let step = usize::try_from(window.granularity.millis()).unwrap_or(usize::MAX);
        Ok((window.first_ms..window.to_ms)
            .step_by(step)
            .map(|start| (start, periods.remove(&start).unwrap_or_default()))
            .collect())
    }

    /// The app's periods in `window` with any activity, summed over every
    /// node.
    async fn periods(&self, app_id: i64, window: UsageWindow) -> Result<BTreeMap<i64, UsageCounts>, ServiceError> {
        let granularity = window.granularity;
        let unwritten = self.unwritten.lock().await;
        let rows = self.store.usage(app_id, granularity, window.first_ms, window.to_ms).await?;
        let mut periods: BTreeMap<i64, UsageCounts> = BTreeMap::new();
        let mut own: BTreeMap<i64, UsageCounts> = BTreeMap::new();
        for row in rows {
            let sums = if row.node == self.node { &mut own } else { &mut periods };
            sums.entry(row.period_start).or_default().add(&row.counts);
        }
        let pending = self.pending(app_id, &unwritten);
        drop(unwritten);
        let open_period = granularity.period_start(pending.1);
        if !pending.0.is_empty() && window.holds(open_period) {
            let written = own.entry(open_period).or_default();
            let peak = written.connections_peak.max(pending.0.connections_peak);
            written.add(&pending.0);
            written.connections_peak = peak;
        }
        for (start, counts) in own {
            periods.entry(start).or_default().add(&counts);
        }
        Ok(periods)
    }

    /// What this node counted for the app and has not written, with the
    /// minute it will be written under.
    fn pending(&self, app_id: i64, unwritten: &Unwritten) -> (UsageCounts, i64) {
        let mut counts = self.meters.read().get(&app_id).map(|meter| meter.read()).unwrap_or_default();
        let open_peak = self.sockets.peaks().get(&app_id).copied().unwrap_or(0);
        counts.connections_peak = open_peak.max(unwritten.peaks.get(&app_id).copied().unwrap_or(0));
        (counts, unwritten.minute)
    }

    /// Writes what was counted to the store, under the minute its counts
    /// belong to; `next_minute` is the minute counted from now on.
    async fn write(&self, next_minute: i64) {
        let mut unwritten = self.unwritten.lock().await;
        for (app_id, peak) in self.sockets.take_peaks() {
            let kept = unwritten.peaks.entry(app_id).or_default();
            *kept = (*kept).max(peak);
        }
        let meters: Vec<(i64, Arc<AppMeter>)> =
            self.meters.read().iter().map(|(app_id, meter)| (*app_id, Arc::clone(meter))).collect();
        let mut rows = Vec::new();
        for (app_id, meter) in &meters {
            let mut counts = meter.read();
            counts.connections_peak = unwritten.peaks.get(app_id).copied().unwrap_or(0);
            if unwritten.has_news(*app_id, &counts) {
                rows.push((*app_id, counts));
            }
        }
        for (app_id, peak) in &unwritten.peaks {
            let counts = UsageCounts { connections_peak: *peak, ..UsageCounts::default() };
            if !self.meters.read().contains_key(app_id) && unwritten.has_news(*app_id, &counts) {
                rows.push((*app_id, counts));
            }
        }
        if !rows.is_empty() {
            if let Err(err) = self.store.add_usage(&self.node, unwritten.minute, &rows).await {
                tracing::warn!(error = %err, "could not write usage counts; keeping them for the next try");
                unwritten.turn_to(next_minute);
                return;
            }
            for (app_id, counts) in &rows {
                if let Some(meter) = self.meters.read().get(app_id) {
                    meter.subtract(counts);
                }
                let written = unwritten.written_peaks.entry(*app_id).or_default();
                *written = (*written).max(counts.connections_peak);
            }
        }
        unwritten.peaks.clear();
        unwritten.turn_to(next_minute);
    }

    /// Writes what is counted now: on shutdown, so a clean stop loses
    /// nothing.
    pub async fn flush(&self) {
        let minute = self.unwritten.lock().await.minute;
        self.write(minute).await;
    }

    /// Deletes rows older than their granularity's retention.
    async fn prune(&self) {
        for granularity in Granularity::ALL {
            let keep = i64::try_from(self.config.keep(granularity).as_millis()).unwrap_or(i64::MAX);
            if let Err(err) = self.store.prune_usage(granularity, now_ms().saturating_sub(keep)).await {
                tracing::warn!(error = %err, granularity = granularity.as_str(), "could not prune usage rows");
            }
        }
    }

    /// Writes every `usage.flush_ms` and at each minute's turn, and prunes
    /// now and then, until the runtime stops.
    pub fn spawn_writer(self: &Arc<Self>) {
        let usage = Arc::clone(self);
        tokio::spawn(async move {
            let flush = i64::try_from(usage.config.flush.as_millis()).unwrap_or(60_000).max(1);
            let mut pruned = tokio::time::Instant::now();
            usage.prune().await;
            loop {
                let now = now_ms();
                let next = next_write(now, flush);
                tokio::time::sleep(Duration::from_millis(u64::try_from(next - now).unwrap_or(0))).await;
                usage.write(Granularity::Minute.period_start(next)).await;
                if pruned.elapsed() >= PRUNE_EVERY {
                    pruned = tokio::time::Instant::now();
                    usage.prune().await;
                }
            }
        });
    }
}

/// When to write next after `now_ms`: the next multiple of `flush_ms`, or
/// the next minute's turn if that comes first.
fn next_write(now_ms: i64, flush_ms: i64) -> i64 {
    let next_multiple = |of: i64| (now_ms.div_euclid(of) + 1) * of;
    next_multiple(flush_ms).min(next_multiple(Granularity::Minute.millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_025_600_000; // 2026-11-30T08:00:00Z

    #[test]
    fn writes_never_straddle_a_minute() {
        assert_eq!(next_write(NOW + 55_000, 10_000), NOW + 60_000);
        assert_eq!(next_write(NOW + 35_000, 20_000), NOW + 40_000);
        assert_eq!(next_write(NOW + 50_000, 40_000), NOW + 60_000, "the minute's turn comes first");
        assert_eq!(next_write(NOW, 10_000), NOW + 10_000, "a write at the turn waits a whole interval");
    }

    #[test]
    fn an_app_that_only_holds_its_connections_is_written_once_a_minute() {
        let peaks = HashMap::from([(1, 3)]);
        let mut unwritten = Unwritten { minute: NOW, peaks: HashMap::new(), written_peaks: peaks };
        let peak = |n| UsageCounts { connections_peak: n, ..UsageCounts::default() };
        assert!(!unwritten.has_news(1, &peak(3)));
        assert!(unwritten.has_news(1, &peak(4)));
        assert!(unwritten.has_news(1, &UsageCounts { messages_in: 1, ..peak(3) }));
        assert!(unwritten.has_news(2, &peak(1)), "another app");
        unwritten.turn_to(NOW + 60_000);
        assert!(unwritten.has_news(1, &peak(3)), "a new minute gets its own row");
    }

    #[test]
    fn a_window_defaults_to_the_last_day_by_hour() {
        let window = UsageWindow::parse(None, None, None, NOW + 1_234, &UsageConfig::default()).unwrap();
        assert_eq!(window.granularity, Granularity::Hour);
        assert_eq!(window.first_ms, NOW - DEFAULT_SPAN_MS);
        assert_eq!(window.to_ms, NOW + 1_234);
        assert!(window.holds(NOW), "the current hour is included");
    }

    #[test]
    fn the_last_periods_end_with_the_current_one() {
        let window = UsageWindow::last(24, Granularity::Hour, NOW + 90_000);
        assert_eq!((window.first_ms, window.to_ms), (NOW - 23 * 3_600_000, NOW + 90_001));
        let starts: Vec<i64> =
            (window.first_ms..window.to_ms).step_by(3_600_000).map(|start| (start - NOW) / 3_600_000).collect();
        assert_eq!(starts, (-23..=0).collect::<Vec<_>>(), "24 hours, the current one last");
    }

    #[test]
    fn a_window_refuses_what_it_cannot_answer() {
        let config = UsageConfig::default();
        let refused =
            |from, to, granularity| UsageWindow::parse(from, to, granularity, NOW, &config).unwrap_err().to_string();
        assert!(refused(None, None, Some("week")).contains("granularity"));
        assert!(refused(Some("yesterday"), None, None).contains("from"));
        assert!(refused(Some("2026-11-30T08:00:00Z"), Some("2026-11-30T08:00:00Z"), None).contains("before"));
        assert!(refused(Some("2026-01-01T00:00:00Z"), None, Some("minute")).contains("at most"));
        assert!(UsageWindow::parse(Some("2026-01-01T00:00:00Z"), None, Some("day"), NOW, &config).is_ok());
    }
}
