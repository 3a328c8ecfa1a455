//! Prometheus metrics of one comms process, served at `/metrics`.
//!
//! A registry per process (not a global one), so tests can run several
//! servers in one binary and each counts only its own traffic.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the HTTP latency histogram. `route` is the matched route
/// pattern, never the raw path, so room names and codes do not explode the
/// number of series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// HTTP method, or `other`.
    pub method: String,
    /// Matched route pattern.
    pub route: String,
    /// Response status.
    pub status: u16,
}

/// Every metric comms exports. Cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections on this node.
    pub connections: Gauge,
    /// Rooms with at least one open connection on this node.
    pub live_rooms: Gauge,
    /// Messages published (WebSocket and REST).
    pub messages_in: Counter,
    /// Message frames handed to connections (one per recipient).
    pub messages_out: Counter,
    /// Connections closed with 1013 because they were a queue behind.
    pub slow_consumers: Counter,
    /// Signal frames not handed to a connection half a queue behind.
    pub signals_skipped: Counter,
    /// Requests this node sent to Redis (a pipeline is one): with the Redis
    /// broker, its cost per published message.
    pub redis_round_trips: Counter,
    /// HTTP request latency by method, route and status.
    pub http_requests: Family<HttpLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("comms");
        let connections = Gauge::default();
        let live_rooms = Gauge::default();
        let messages_in = Counter::default();
        let messages_out = Counter::default();
        let slow_consumers = Counter::default();
        let signals_skipped = Counter::default();
        let redis_round_trips = Counter::default();
        let http_requests = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register("connections", "Open WebSocket connections", connections.clone());
        registry.register("live_rooms", "Rooms with at least one open connection", live_rooms.clone());
        registry.register("messages_in", "Messages published", messages_in.clone());
        registry.register("messages_out", "Message frames delivered to connections", messages_out.clone());
        registry.register("slow_consumers", "Connections closed for not keeping up", slow_consumers.clone());
        registry.register("signals_skipped", "Signal frames skipped for a busy connection", signals_skipped.clone());
        registry.register("redis_round_trips", "Requests sent to Redis by the broker", redis_round_trips.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", http_requests.clone());
        Self {
            registry,
            connections,
            live_rooms,
            messages_in,
            messages_out,
            slow_consumers,
            signals_skipped,
            redis_round_trips,
            http_requests,
        }
    }
}

impl Metrics {
    /// Records one finished HTTP request.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = HttpLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.http_requests.get_or_create(&labels).observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
