//! The delivery worker: leases due rows of the outbox, posts them, records
//! what came of it.
//!
//! One [`Dispatcher`] task runs per node. It wakes when this node writes an
//! event ([`Wake`]), when an attempt ends, and at least every
//! [`POLL_EVERY`] (for retries that came due and events written by other
//! nodes). Leasing is how nodes share the outbox: a leased row is this
//! node's until its lease runs out, so one node at a time attempts a
//! delivery, and a node that dies leaves its rows to the others when their
//! leases run out.
//!
//! A node looks up which apps have due rows (one index probe per app with
//! webhooks), then leases each app's oldest due rows, a few attempts' worth
//! ahead ([`LEASE_AHEAD`]), into a queue per app, so one statement feeds
//! many attempts. It runs at most `webhooks.concurrency_per_app` attempts
//! of one app at once (and `webhooks.concurrency` in all): an app whose
//! receiver is slow or dead fills its own queue and is skipped until it
//! drains, so it never holds back other apps' webhooks, and message
//! delivery never waits for any of this. A lease lasts as long as the queued rows may wait plus one attempt,
//! and a row whose lease would run out before its attempt could end is
//! dropped from the queue rather than attempted (another lease takes it).
//!
//! An attempt is a POST with the Standard Webhooks headers, no redirects
//! followed, at most `webhooks.timeout` long, of which at most
//! [`KEPT_RESPONSE_BYTES`] of the answer are read. A 2xx is delivered;
//! anything else is retried after [`retry_delay`] until the retry period
//! (`webhooks.retry_for`) after the event is over, then the delivery is
//! failed. Outcomes are written in batches by the same task.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use comms_protocol::webhook::DeliveryState;
use rand::Rng;
use tokio::sync::{mpsc, Notify};

use super::destination::{Destinations, GuardedResolver};
use super::signature::WebhookSecret;
use crate::config::WebhooksConfig;
use crate::store::{AttemptOutcome, DueDelivery, Lease, Store};
use crate::time::now_ms;
use crate::usage::Usage;

/// Longest wait between two looks at the outbox.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How many rounds of attempts (of `concurrency_per_app` each) a node
/// leases of one app ahead of its attempts.
pub const LEASE_AHEAD: usize = 16;
/// A lease outlasts its rows' wait and attempt by this much, so the
/// outcome is written before another node may take the row.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Bytes of a receiver's answer read (for the delivery's `last_error`).
pub const KEPT_RESPONSE_BYTES: usize = 4096;
/// Longest pause between two retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// How long the outcome writer gathers attempts' outcomes before writing
/// them: at most one transaction this often, whatever the attempt rate
/// (each statement is a trip to SQLite's writer thread; writing as soon as
/// the writer was free made a transaction of a few outcomes each time).
const GATHER_OUTCOMES: Duration = Duration::from_millis(50);
/// How often finished deliveries past `webhooks.keep_finished` are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Finished deliveries deleted by one statement: a few milliseconds of the
/// writer's time.
const PRUNE_SLICE: u64 = 1000;

/// Wakes the dispatcher when this node wrote events. Cheap to clone.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Makes the dispatcher look at the outbox now.
    pub fn now(&self) {
        self.0.notify_one();
    }
}

/// The delivery worker of this node.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// Counts each app's deliveries that succeeded.
    usage: Arc<Usage>,
    client: reqwest::Client,
    settings: WebhooksConfig,
    wake: Wake,
}

/// One app's deliveries on this node: leased and waiting, and attempts in
/// flight.
#[derive(Default)]
struct AppQueue {
    waiting: VecDeque<(DueDelivery, i64)>,
    in_flight: usize,
}

/// What the task keeps between rounds.
#[derive(Default)]
struct Queues {
    apps: HashMap<i64, AppQueue>,
    in_flight: usize,
    waiting: usize,
}

/// An ended attempt, as the attempt's task reports it.
struct Ended {
    app_id: i64,
    outcome: AttemptOutcome,
}

/// Rows a lease took, and until when they are this node's.
struct Leased {
    rows: Vec<DueDelivery>,
    until: i64,
}

/// Starts the task that writes attempts' outcomes in batches (those of
/// [`GATHER_OUTCOMES`] each), retrying until the store takes them (a lost
/// outcome would only mean one more attempt once the lease runs out); it
/// ends with the sender.
fn spawn_outcome_writer(store: Arc<dyn Store>) -> mpsc::UnboundedSender<AttemptOutcome> {
    let (outcomes, mut pending) = mpsc::unbounded_channel::<AttemptOutcome>();
    tokio::spawn(async move {
        while let Some(first) = pending.recv().await {
            tokio::time::sleep(GATHER_OUTCOMES).await;
            let mut batch = vec![first];
            while let Ok(next) = pending.try_recv() {
                batch.push(next);
            }
            let mut pause = Duration::from_millis(100);
            while let Err(err) = store.finish_attempts(&batch).await {
                tracing::warn!(error = %err, "could not record webhook attempts; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    });
    outcomes
}

impl Dispatcher {
    /// A worker posting through its own HTTP client, which refuses the
    /// destinations `destinations` refuses.
    ///
    /// # Errors
    ///
    /// The HTTP client cannot be built (no TLS roots).
    pub fn new(
        store: Arc<dyn Store>,
        usage: Arc<Usage>,
        settings: WebhooksConfig,
        destinations: Arc<Destinations>,
        wake: Wake,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .dns_resolver(Arc::new(GuardedResolver(destinations)))
            .user_agent(concat!("comms-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { store, usage, client, settings, wake })
    }

    /// Runs the worker until the process ends.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// The task's loop. It never waits for the database itself: outcomes
    /// go to a writer task, and a lease runs beside the loop and hands its
    /// rows back, so attempts start the moment a slot frees.
    async fn run(self) {
        let (ended_tx, mut ended) = mpsc::unbounded_channel::<Ended>();
        let (leased_tx, mut leased) = mpsc::unbounded_channel::<Leased>();
        let outcomes = spawn_outcome_writer(Arc::clone(&self.store));
        let mut queues = Queues::default();
        let mut leasing = false;
        // Whether the last lease found rows (so more may be due at once).
        let mut found = false;
        let mut last_prune = tokio::time::Instant::now();
        loop {
            let polled = tokio::select! {
                () = self.wake.0.notified() => true,
                () = tokio::time::sleep(POLL_EVERY) => true,
                Some(done) = ended.recv() => {
                    queues.ended(done.app_id);
                    if done.outcome.state == DeliveryState::Delivered {
                        self.usage.meter(done.app_id).webhook_delivered();
                    }
                    let _ = outcomes.send(done.outcome);
                    false
                }
                Some(rows) = leased.recv() => {
                    leasing = false;
                    found = !rows.rows.is_empty();
                    queues.add(rows);
                    false
                }
            };
            self.start_attempts(&mut queues, &ended_tx);
            // A lease costs statements: on a wake or a poll, or when less
            // than a round of attempts is waiting and the last lease found
            // rows; one at a time.
            if !leasing && (polled || (found && queues.waiting < self.settings.concurrency)) {
                leasing = true;
                self.spawn_lease(&queues, leased_tx.clone());
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                let before = now_ms() - self.settings.keep_finished.as_millis() as i64;
                tokio::spawn(prune(Arc::clone(&self.store), before));
            }
        }
    }

    /// Leases due rows for the apps' queues, app by app, as many as each
    /// queue (as `queues` holds them now) and the node's room take, beside
    /// the loop; the rows come back on `leased` (an empty batch too, so the
    /// loop knows the lease is over).
    fn spawn_lease(&self, queues: &Queues, leased: mpsc::UnboundedSender<Leased>) {
        let per_app = self.settings.concurrency_per_app * LEASE_AHEAD;
        let mut room = (self.settings.concurrency * LEASE_AHEAD).saturating_sub(queues.in_flight + queues.waiting);
        let held: HashMap<i64, usize> = queues.apps.keys().map(|app_id| (*app_id, queues.held(*app_id))).collect();
        let store = Arc::clone(&self.store);
        let wait_and_attempt = self.settings.timeout * (LEASE_AHEAD as u32 + 1) + LEASE_MARGIN;
        tokio::spawn(async move {
            let now = now_ms();
            let until = now + wait_and_attempt.as_millis() as i64;
            let mut rows = Vec::new();
            match store.apps_with_due_deliveries(now).await {
                Ok(apps) => {
                    for app_id in apps {
                        let limit = per_app.saturating_sub(held.get(&app_id).copied().unwrap_or(0)).min(room);
                        if limit == 0 {
                            continue;
                        }
                        let lease = Lease { app_id, now, until, limit: limit as u64 };
                        match store.lease_deliveries(lease).await {
                            Ok(due) => {
                                room -= due.len().min(room);
                                rows.extend(due);
                            }
                            Err(err) => tracing::warn!(error = %err, app_id, "could not lease webhook deliveries"),
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not look for due webhook deliveries"),
            }
            let _ = leased.send(Leased { rows, until });
        });
    }

    /// Starts what the slots allow: each app's oldest waiting rows, at most
    /// `concurrency_per_app` of an app and `concurrency` in all.
    fn start_attempts(&self, queues: &mut Queues, ended: &mpsc::UnboundedSender<Ended>) {
        let now = now_ms();
        let attempt_takes = (self.settings.timeout + LEASE_MARGIN).as_millis() as i64;
        for (app_id, app) in &mut queues.apps {
            while app.in_flight < self.settings.concurrency_per_app && queues.in_flight < self.settings.concurrency {
                let Some((delivery, until)) = app.waiting.pop_front() else { break };
                queues.waiting -= 1;
                if now + attempt_takes > until {
                    // Its lease could run out mid-attempt: leave it to the
                    // next lease, of this node or another.
                    continue;
                }
                app.in_flight += 1;
                queues.in_flight += 1;
                let (client, settings, ended, app_id) =
                    (self.client.clone(), self.settings.clone(), ended.clone(), *app_id);
                tokio::spawn(async move {
                    let outcome = attempt(&client, &settings, &delivery).await;
                    let _ = ended.send(Ended { app_id, outcome });
                });
            }
        }
        queues.apps.retain(|_, app| app.in_flight > 0 || !app.waiting.is_empty());
    }
}

impl Queues {
    /// Queues what a lease took.
    fn add(&mut self, Leased { rows, until }: Leased) {
        self.waiting += rows.len();
        for delivery in rows {
            self.apps.entry(delivery.app_id).or_default().waiting.push_back((delivery, until));
        }
    }

    /// An attempt of `app_id` ended.
    fn ended(&mut self, app_id: i64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(app) = self.apps.get_mut(&app_id) {
            app.in_flight = app.in_flight.saturating_sub(1);
        }
    }

    /// Rows of `app_id` held here, waiting or in flight.
    fn held(&self, app_id: i64) -> usize {
        self.apps.get(&app_id).map_or(0, |app| app.in_flight + app.waiting.len())
    }
}

/// Deletes the deliveries that ended before `before`, a slice of
/// [`PRUNE_SLICE`] at a time, so the history's writes get the writer
/// between two slices.
async fn prune(store: Arc<dyn Store>, before: i64) {
    loop {
        match store.prune_deliveries(before, PRUNE_SLICE).await {
            Ok(pruned) if pruned == PRUNE_SLICE => continue,
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not prune finished webhook deliveries");
                return;
            }
        }
    }
}

/// Posts `delivery` once and says what comes next.
async fn attempt(client: &reqwest::Client, settings: &WebhooksConfig, delivery: &DueDelivery) -> AttemptOutcome {
    let result = post(client, delivery).await;
    let at = now_ms();
    let (status, error) = match result {
        Ok(status) if (200..300).contains(&status) => {
            return AttemptOutcome {
                id: delivery.id,
                state: DeliveryState::Delivered,
                next_attempt_at: at,
                status: Some(status),
                error: None,
                at,
            };
        }
        Ok(status) => (Some(status), format!("the receiver answered {status}")),
        Err(failure) => (failure.status, failure.error),
    };
    let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX).saturating_add(1);
    let next = at + jittered(retry_delay(settings.first_retry, attempts)).as_millis() as i64;
    let retry_until = delivery.series_started_at + settings.retry_for.as_millis() as i64;
    let state = if next <= retry_until { DeliveryState::Pending } else { DeliveryState::Failed };
    AttemptOutcome { id: delivery.id, state, next_attempt_at: next, status, error: Some(error), at }
}

/// An attempt that got no 2xx: the answer's status if one came, and why.
struct Failure {
    status: Option<u16>,
    error: String,
}

/// The POST itself: the receiver's HTTP status, or why none came.
async fn post(client: &reqwest::Client, delivery: &DueDelivery) -> Result<u16, Failure> {
    let failed = |error: String| Failure { status: None, error };
    let secret = WebhookSecret::parse(&delivery.secret).map_err(|err| failed(err.to_string()))?;
    let timestamp = now_ms() / 1000;
    let signature = secret.sign(&delivery.event_id, timestamp, &delivery.body);
    let mut response = client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|err| failed(describe(&err)))?;
    let status = response.status().as_u16();
    // Read (a bounded part of) the answer either way: a connection whose
    // answer was read to its end goes back to the pool for the next attempt.
    let mut answer = Vec::new();
    while answer.len() < KEPT_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            _ => break,
        }
    }
    if response.status().is_success() {
        return Ok(status);
    }
    answer.truncate(KEPT_RESPONSE_BYTES);
    let text = printable(&answer);
    let error = if text.is_empty() {
        format!("the receiver answered {status}")
    } else {
        format!("the receiver answered {status}: {text}")
    };
    Err(Failure { status: Some(status), error })
}

/// A receiver's answer as text every store keeps and every page shows:
/// invalid UTF-8 replaced, control characters (a NUL, which PostgreSQL
/// refuses in text, would fail the outcome's write forever) turned into
/// spaces, trimmed.
fn printable(answer: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(answer).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    text.trim().to_owned()
}

/// A failed request's cause, without the URL (the app knows it).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "no answer within the timeout".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The pause before retry number `attempts` (1 for the first retry):
/// `first_retry`, doubling each time, at most an hour.
pub fn retry_delay(first_retry: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    first_retry.saturating_mul(1 << doublings).min(MAX_RETRY_DELAY)
}

/// `delay` plus or minus up to a fifth, so receivers that came back are not
/// hit by every retry at once.
fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(rand::rng().random_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receivers_answer_is_kept_as_printable_text() {
        assert_eq!(printable(b"  bad\0request\n\xff "), "bad request \u{fffd}");
        assert_eq!(printable(b"\0\r\n"), "");
    }

    #[test]
    fn retries_double_from_the_first_and_stop_growing_at_an_hour() {
        let first = Duration::from_secs(10);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(10));
        assert_eq!(retry_delay(first, 2), Duration::from_secs(20));
        assert_eq!(retry_delay(first, 5), Duration::from_secs(160));
        assert_eq!(retry_delay(first, 40), MAX_RETRY_DELAY);
        let jitter = jittered(Duration::from_secs(10));
        assert!(jitter >= Duration::from_secs(8) && jitter <= Duration::from_secs(12));
    }
}
