//! CPU time of processes, from Linux's `/proc`: what the server and the load
//! generator used while a scenario measured, so a report shows which side
//! was the limit (the one near 100 % of its core).

use std::time::{Duration, Instant};

/// Time `pid` has spent on a CPU, summed over its threads (the first field
/// of each thread's `schedstat`, in nanoseconds); `None` where `/proc`
/// cannot tell. A thread that ends meanwhile is left out.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        nanos += stat.split_whitespace().next().and_then(|field| field.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(Duration::from_nanos(nanos))
}

/// The CPU time of the server's processes (one per node), of Redis (when
/// the server uses one here) and of this process, from a start.
pub struct CpuMeter {
    servers: Vec<u32>,
    redis: Option<u32>,
    started: Instant,
    servers_then: Duration,
    redis_then: Option<Duration>,
    generator_then: Duration,
}

/// Each side's CPU time over the meter's wall time: 1.0 is one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuShares {
    /// The server under test, every node summed.
    pub server: f64,
    /// This load generator.
    pub generator: f64,
    /// The Redis the server uses, if any.
    pub redis: Option<f64>,
}

/// The CPU time of several processes, summed.
fn total_cpu_time(pids: &[u32]) -> Option<Duration> {
    pids.iter().map(|pid| cpu_time(*pid)).sum()
}

impl CpuMeter {
    /// Starts measuring the server's processes `servers`, Redis's `redis`
    /// and this process.
    pub fn start(servers: &[u32], redis: Option<u32>) -> Option<Self> {
        Some(Self {
            servers: servers.to_vec(),
            redis,
            started: Instant::now(),
            servers_then: total_cpu_time(servers)?,
            redis_then: redis.and_then(cpu_time),
            generator_then: cpu_time(std::process::id())?,
        })
    }

    /// The shares since the start.
    pub fn shares(&self) -> Option<CpuShares> {
        let wall = self.started.elapsed().as_secs_f64();
        let share = |now: Duration, then: Duration| now.saturating_sub(then).as_secs_f64() / wall;
        let redis = match (self.redis.and_then(cpu_time), self.redis_then) {
            (Some(now), Some(then)) => Some(share(now, then)),
            _ => None,
        };
        Some(CpuShares {
            server: share(total_cpu_time(&self.servers)?, self.servers_then),
            generator: share(cpu_time(std::process::id())?, self.generator_then),
            redis,
        })
    }
}
