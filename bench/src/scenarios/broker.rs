//! Scenario: fan-out through the Redis broker (PostgreSQL and Redis on this
//! machine), against a node on the in-process broker in the same run.
//!
//! One room of S subscribers, as in [`fanout`], three times: a node on the
//! in-process broker; a node on the Redis broker; two nodes sharing the
//! database and Redis, with the subscribers split over both and the
//! publisher on the first. Reports each run's deliveries, the Redis node's
//! over the in-process node's (target 0.8), and the Redis round trips per
//! published message while measuring, read from the nodes' `/metrics`.
//!
//! Both nodes of the two-node run share the server's core: the load
//! generator needs the other one of a two-core machine. So that run shows
//! that a split room gets every message and what a node costs, not how
//! far nodes scale. Redis and PostgreSQL are the machine's own services,
//! not pinned; Redis's CPU is reported beside the server's.

use std::path::Path;

use comms_testkit::postgres::TestDatabase;
use comms_testkit::redis::TestRedis;

use super::fanout::{self, Pace};
use super::{Ctx, Size};
use crate::server::{Backing, ServerProcess};
use crate::stats::{Integrity, Row, Target};

/// Where the nodes run and how big the run is.
pub struct Setup<'a> {
    /// The `comms` binary.
    pub binary: &'a Path,
    /// The core every node is pinned to.
    pub core: usize,
    /// Full or smoke.
    pub size: Size,
    /// Subscribers of the room.
    pub subscribers: usize,
}

/// Runs the three fan-outs; `None` when PostgreSQL or Redis is missing
/// outside CI (the test kit prints why; under `CI=true` it fails instead).
///
/// # Errors
///
/// A node does not start, or a connection fails.
pub async fn run(setup: &Setup<'_>) -> anyhow::Result<Option<(Vec<Row>, Vec<Integrity>)>> {
    let name = |nodes: &str| format!("broker S={}, {nodes}", setup.subscribers);
    let local = ServerProcess::start(setup.binary, Some(setup.core)).await?;
    let ctx = Ctx::new(&[&local], local.create_app("bench").await?, setup.size);
    let (in_process, in_process_integrity) =
        fanout::run(&ctx, &name("in-process broker"), setup.subscribers, Pace::Flat).await?;
    local.stop().await;

    let Some(one) = through_redis(setup, &name("Redis broker"), 1).await? else { return Ok(None) };
    let Some(two) = through_redis(setup, &name("Redis broker, two nodes"), 2).await? else { return Ok(None) };
    let ratio = over_in_process(&name("Redis broker"), &one.0, &in_process);
    let mut rows: Vec<Row> = in_process.into_iter().chain(one.0).chain(ratio).chain(two.0).collect();
    // The fan-out's own target is the in-process one's; here the ratio is
    // what counts.
    for row in &mut rows {
        if row.metric == "deliveries per second" {
            row.target = None;
            row.meets = None;
        }
    }
    Ok(Some((rows, vec![in_process_integrity, one.1, two.1])))
}

/// The fan-out on `nodes` nodes sharing a fresh database and Redis prefix.
async fn through_redis(setup: &Setup<'_>, name: &str, nodes: usize) -> anyhow::Result<Option<(Vec<Row>, Integrity)>> {
    let Some(database) = TestDatabase::create().await else { return Ok(None) };
    let Some(redis) = TestRedis::connect().await else { return Ok(None) };
    let backing = Backing::shared(database.url(), redis.url(), redis.prefix());
    let mut cluster = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        cluster.push(ServerProcess::start_on(setup.binary, Some(setup.core), backing.clone()).await?);
    }
    let members: Vec<&ServerProcess> = cluster.iter().collect();
    let mut ctx = Ctx::new(&members, cluster[0].create_app("bench").await?, setup.size);
    ctx.redis_pid = redis_pid(redis.url()).await;
    ctx.counts_redis = true;
    let ran = fanout::run(&ctx, name, setup.subscribers, Pace::Flat).await?;
    for node in cluster {
        node.stop().await;
    }
    Ok(Some(ran))
}

/// The Redis node's deliveries per second over the in-process node's, with
/// the target of 0.8.
fn over_in_process(scenario: &str, redis: &[Row], in_process: &[Row]) -> Option<Row> {
    let rate = |rows: &[Row]| rows.iter().find(|row| row.metric == "deliveries per second").map(|row| row.value);
    let (redis, in_process) = (rate(redis)?, rate(in_process).filter(|rate| *rate > 0.0)?);
    Some(Row::new(
        scenario,
        "deliveries over the in-process node's",
        redis / in_process,
        "×",
        Some(Target::AtLeast(0.8)),
    ))
}

/// The process id Redis reports, when it runs on this machine (for its CPU
/// time); `None` when it cannot tell.
async fn redis_pid(url: &str) -> Option<u32> {
    let client = redis::Client::open(url).ok()?;
    let mut connection = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut connection).await.ok()?;
    let pid = info.lines().find_map(|line| line.strip_prefix("process_id:"))?.trim().parse().ok()?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    name.starts_with("redis").then_some(pid)
}
