//! The benchmark scenarios. Each starts from a fresh server, sets up what it
//! needs through the REST API and returns report rows plus an integrity
//! count (messages lost or duplicated, which must be zero).
//!
//! Everything runs on one thread (a current-thread runtime on its own
//! core), so shared counters are plain `Cell`s.

pub mod broker;
pub mod fanout;
pub mod idle;
pub mod presence_storm;
pub mod rest;
pub mod resume;
pub mod small_rooms;
pub mod storm;
pub mod webhooks;

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{Stream, StreamExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::api::Api;
use crate::client::{last_seq_of, sent_micros, seq_of, Ws};
use crate::counters::Counters;
use crate::cpu::{CpuMeter, CpuShares};
use crate::server::ServerProcess;
use crate::stats::{Latency, SeqCheck};

/// How big a run is: the full benchmark, or the smoke run CI does so the
/// harness never rots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The real benchmark: thousands of connections, 10 s per measurement.
    Full,
    /// A hundredth of the connections, 1 s per measurement.
    Smoke,
}

impl Size {
    /// Warm-up before measuring.
    pub fn warm_up(self) -> Duration {
        match self {
            Self::Full => Duration::from_secs(2),
            Self::Smoke => Duration::from_millis(200),
        }
    }

    /// How long a throughput or latency measurement runs.
    pub fn measure(self) -> Duration {
        match self {
            Self::Full => Duration::from_secs(10),
            Self::Smoke => Duration::from_secs(1),
        }
    }

    /// Scales a connection count down for the smoke run.
    pub fn scale(self, full: usize) -> usize {
        match self {
            Self::Full => full,
            Self::Smoke => (full / 100).max(2),
        }
    }
}

/// What every scenario gets.
pub struct Ctx {
    /// REST client with the bench app's key.
    pub api: Api,
    /// Where the server listens; with several nodes, the first one, which
    /// setup calls and publishers use.
    pub server: SocketAddr,
    /// Every node's address, `server` first: the fan-out spreads its
    /// subscribers over them.
    pub nodes: Vec<SocketAddr>,
    /// Time zero of the send stamps in payloads.
    pub epoch: Instant,
    /// Full run or smoke run.
    pub size: Size,
    /// The server's process ids, one per node, for their CPU time.
    pub server_pids: Vec<u32>,
    /// The process id of the Redis the server uses, when it runs here.
    pub redis_pid: Option<u32>,
    /// Whether the server is on the Redis broker, whose round trips per
    /// message the fan-out reports.
    pub counts_redis: bool,
}

/// What the server's side did while a scenario measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Each side's CPU (`None` without Linux's `/proc`).
    pub cpu: Option<CpuShares>,
    /// Redis round trips per published message, on the Redis broker.
    pub redis_round_trips_per_message: Option<f64>,
}

impl Ctx {
    /// A context for the server made of `nodes` (the first one gets the
    /// setup calls), with the app of `key`.
    pub fn new(nodes: &[&ServerProcess], key: String, size: Size) -> Self {
        let server = nodes[0].addr;
        Self {
            api: Api::new(format!("http://{server}"), key),
            server,
            nodes: nodes.iter().map(|node| node.addr).collect(),
            epoch: Instant::now(),
            size,
            server_pids: nodes.iter().map(|node| node.pid()).collect(),
            redis_pid: None,
            counts_redis: false,
        }
    }

    /// The node the `n`th subscriber connects to.
    pub fn node(&self, n: usize) -> SocketAddr {
        self.nodes[n % self.nodes.len()]
    }

    /// Lets the load run through the warm-up, then counts deliveries and
    /// latencies for the measuring time; what the server's side did
    /// meanwhile.
    ///
    /// # Errors
    ///
    /// On the Redis broker, a node's `/metrics` cannot be read.
    pub async fn warm_up_then_measure(&self, latency: &Latency) -> anyhow::Result<Measured> {
        tokio::time::sleep(self.size.warm_up()).await;
        let counters = if self.counts_redis { Some(Counters::read(&self.nodes).await?) } else { None };
        let meter = CpuMeter::start(&self.server_pids, self.redis_pid);
        latency.measuring.set(true);
        tokio::time::sleep(self.size.measure()).await;
        latency.measuring.set(false);
        let cpu = meter.and_then(|meter| meter.shares());
        let redis_round_trips_per_message = match counters {
            Some(before) => Counters::read(&self.nodes).await?.round_trips_per_message(&before),
            None => None,
        };
        Ok(Measured { cpu, redis_round_trips_per_message })
    }
}

/// Source addresses for client sockets: 127.0.0.2 … so that tens of
/// thousands of connections do not run out of ephemeral ports.
pub fn source(n: usize) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % 16) as u8)))
}

/// Reads a connection until it closes: checks seqs, records latency, counts
/// deliveries while measuring, and counts closes by the server.
pub async fn read_messages<S>(
    mut ws: S,
    check: Rc<SeqCheck>,
    latency: Latency,
    delivered: Rc<Cell<u64>>,
    closed: Rc<Cell<u64>>,
) where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                let Some(seq) = seq_of(&text) else { continue };
                check.observe(seq);
                if latency.measuring.get() {
                    delivered.set(delivered.get() + 1);
                    if check.received.get().is_multiple_of(latency.sample_every) {
                        if let Some(sent) = sent_micros(&text) {
                            latency.record(sent);
                        }
                    }
                }
            }
            Ok(Message::Close(_)) => {
                closed.set(closed.get() + 1);
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Reads frames until the welcome arrives; returns its `last_seq`, after
/// which every message of the room must reach this connection.
///
/// # Errors
///
/// The connection ends first, or the welcome has no `last_seq`.
pub async fn welcome(ws: &mut Ws) -> anyhow::Result<u64> {
    while let Some(frame) = ws.next().await {
        if let Message::Text(text) = frame? {
            if text.contains("\"welcome\"") {
                return last_seq_of(&text).context("a welcome without last_seq");
            }
        }
    }
    anyhow::bail!("closed before the welcome")
}
