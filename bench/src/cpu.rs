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

/// The server's and this process's CPU time from a start.
pub struct CpuMeter {
    server: u32,
    started: Instant,
    server_then: Duration,
    generator_then: Duration,
}

/// Each side's CPU time over the meter's wall time: 1.0 is one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuShares {
    /// The server under test.
    pub server: f64,
    /// This load generator.
    pub generator: f64,
}

impl CpuMeter {
    /// Starts measuring the server `server` and this process.
    pub fn start(server: u32) -> Option<Self> {
        Some(Self {
            server,
            started: Instant::now(),
            server_then: cpu_time(server)?,
            generator_then: cpu_time(std::process::id())?,
        })
    }

    /// The shares since the start.
    pub fn shares(&self) -> Option<CpuShares> {
        let wall = self.started.elapsed().as_secs_f64();
        let share = |now: Duration, then: Duration| now.saturating_sub(then).as_secs_f64() / wall;
        Some(CpuShares {
            server: share(cpu_time(self.server)?, self.server_then),
            generator: share(cpu_time(std::process::id())?, self.generator_then),
        })
    }
}
