//! Scenario 7: resume. A room holds 1000 messages; a client reconnects with
//! `after_seq` 1000 messages back and is timed until it has caught up.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{source, welcome, Ctx};
use crate::client::{connect, seq_of, timed_frame};
use crate::stats::{Integrity, Row, SeqCheck};

/// Runs the scenario with `backlog` retained messages, `rounds` times.
///
/// # Errors
///
/// Setup or a connection fails.
pub async fn run(ctx: &Ctx, backlog: u64, rounds: usize) -> anyhow::Result<(Vec<Row>, Integrity)> {
    let name = format!("resume {backlog} messages back");
    ctx.api.create_room("resume").await?;
    let writer = ctx.api.create_endpoint("resume", "read_and_write").await?;
    let reader = ctx.api.create_endpoint("resume", "read").await?;
    let mut ws = connect(&writer, ctx.server, source(0)).await?;
    welcome(&mut ws).await?;
    for _ in 0..backlog {
        ws.feed(Message::text(timed_frame(ctx.epoch))).await?;
    }
    ws.flush().await?;
    let mut echoed = 0;
    while echoed < backlog {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if seq_of(&text).is_some() => echoed += 1,
            Some(Ok(_)) => {}
            _ => anyhow::bail!("the writer was closed while publishing"),
        }
    }

    let mut times = Vec::with_capacity(rounds);
    let mut checks = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let started = Instant::now();
        let url = format!("{reader}?after_seq=0");
        let mut client = connect(&url, ctx.server, source(round + 1)).await?;
        let check = Rc::new(SeqCheck::after(0));
        while check.last() < backlog {
            match tokio::time::timeout(Duration::from_secs(10), client.next()).await? {
                Some(Ok(Message::Text(text))) => {
                    if let Some(seq) = seq_of(&text) {
                        check.observe(seq);
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        check.finish(backlog);
        checks.push(check);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let rows = vec![Row::new(&name, "time to catch up (median)", median, "ms", None)];
    Ok((rows, crate::stats::integrity(&name, &checks, 0)))
}
