//! Counters read from comms' `/metrics`: what the nodes of a server did
//! while a scenario measured, summed over the nodes.

use std::net::SocketAddr;

use anyhow::Context;

/// The counters a report needs, summed over nodes.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// `comms_messages_in_total`: messages published.
    pub messages_in: f64,
    /// `comms_redis_round_trips_total`: requests sent to Redis.
    pub redis_round_trips: f64,
}

impl Counters {
    /// Reads the counters of every node at `nodes`.
    ///
    /// # Errors
    ///
    /// A node does not answer, or lacks one of the counters.
    pub async fn read(nodes: &[SocketAddr]) -> anyhow::Result<Self> {
        let mut sum = Self { messages_in: 0.0, redis_round_trips: 0.0 };
        for node in nodes {
            let text = reqwest::get(format!("http://{node}/metrics")).await?.error_for_status()?.text().await?;
            let find = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
                    .with_context(|| format!("no {name} in {node}'s metrics"))
            };
            sum.messages_in += find("comms_messages_in_total")?;
            sum.redis_round_trips += find("comms_redis_round_trips_total")?;
        }
        Ok(sum)
    }

    /// Redis round trips per message published since `before`; `None`
    /// when none was published.
    pub fn round_trips_per_message(&self, before: &Self) -> Option<f64> {
        let published = self.messages_in - before.messages_in;
        (published > 0.0).then(|| (self.redis_round_trips - before.redis_round_trips) / published)
    }
}
