//! A real HTTP receiver of webhook deliveries on a loopback port: it keeps
//! every request it gets (failed attempts included) and answers with the
//! status a test chose, so tests see retries, ids and signatures exactly as
//! an app's backend would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long [`WebhookReceiver::wait_for`] waits.
const WAIT: Duration = Duration::from_secs(20);

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The body as sent.
    pub body: String,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Received {
    /// The body parsed.
    ///
    /// # Panics
    ///
    /// The body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a webhook body is JSON")
    }

    /// The event's `type`.
    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    arrived: Notify,
    /// Requests still to be answered with `failure_status`.
    failures_left: AtomicUsize,
    failure_status: AtomicU16,
}

/// The receiver; it stops when dropped.
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts a receiver on a free loopback port, answering 200.
    ///
    /// # Panics
    ///
    /// No loopback port can be bound.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("an address")).await
    }

    /// Starts a receiver on `addr` (a port a test freed, say).
    ///
    /// # Panics
    ///
    /// `addr` cannot be bound.
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the webhook receiver");
        let addr = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared::default());
        let app = Router::new().route("/hook", post(receive)).with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, server }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next `count` requests with `status` (then 200 again).
    pub fn fail_next(&self, count: usize, status: u16) {
        self.shared.failure_status.store(status, Ordering::SeqCst);
        self.shared.failures_left.store(count, Ordering::SeqCst);
    }

    /// Every request so far, in the order they came.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("not poisoned").clone()
    }

    /// Waits until `done` holds for the requests received, and returns them.
    ///
    /// # Panics
    ///
    /// It does not hold within 20 s.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        self.wait_for_within(what, WAIT, done).await
    }

    /// [`WebhookReceiver::wait_for`], waiting at most `limit`.
    ///
    /// # Panics
    ///
    /// `done` does not hold within `limit`.
    pub async fn wait_for_within(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.shared.arrived.notified();
            let received = self.received();
            if done(&received) {
                return received;
            }
            let types: Vec<String> = received.iter().map(Received::event_type).collect();
            assert!(tokio::time::Instant::now() < deadline, "waited {limit:?} for {what}; received {types:?}");
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let failing = shared.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1));
    let answered = if failing.is_ok() { shared.failure_status.load(Ordering::SeqCst) } else { 200 };
    shared.received.lock().expect("not poisoned").push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        answered,
    });
    shared.arrived.notify_waiters();
    StatusCode::from_u16(answered).unwrap_or(StatusCode::OK)
}
