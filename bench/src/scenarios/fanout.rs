//! Scenarios 1 and 2: one room, one publisher, S subscribers.
//!
//! Fan-out publishes as fast as the server accepts, keeping at most
//! `WINDOW` messages in flight ahead of the slowest subscriber (so the run
//! measures the server, not a growing backlog). Fixed load publishes 100
//! messages a second and measures latency.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{read_messages, source, welcome, Ctx};
use crate::client::{connect, seq_of, timed_frame};
use crate::stats::{drain, integrity, Integrity, Latency, Row, SeqCheck, Target};

/// Messages the publisher may be ahead of the slowest subscriber.
const WINDOW: u64 = 256;

/// How the publisher paces itself.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as the window allows.
    Flat,
    /// A fixed number of messages per second.
    PerSecond(u32),
}

/// Runs one fan-out scenario.
///
/// # Errors
///
/// Setup or a connection fails.
pub async fn run(ctx: &Ctx, name: &str, subscribers: usize, pace: Pace) -> anyhow::Result<(Vec<Row>, Integrity)> {
    let room = "fanout";
    ctx.api.create_room(room).await?;
    let writer_url = ctx.api.create_endpoint(room, "read_and_write").await?;
    let reader_url = ctx.api.create_endpoint(room, "read").await?;

    // Flat out, latency is sampled (see `Latency::sample_every`); at a fixed
    // rate every delivery counts.
    let latency = Latency::new(ctx.epoch).sampling(if matches!(pace, Pace::Flat) { 8 } else { 1 });
    let delivered = Rc::new(Cell::new(0u64));
    let closed = Rc::new(Cell::new(0u64));
    let mut checks = Vec::with_capacity(subscribers);
    for n in 0..subscribers {
        let mut ws = connect(&reader_url, ctx.node(n), source(n)).await?;
        let joined_at = welcome(&mut ws).await?;
        let check = Rc::new(SeqCheck::after(joined_at));
        checks.push(Rc::clone(&check));
        tokio::task::spawn_local(read_messages(ws, check, latency.clone(), Rc::clone(&delivered), Rc::clone(&closed)));
    }

    let mut publisher = connect(&writer_url, ctx.server, source(subscribers)).await?;
    let publisher_joined_at = welcome(&mut publisher).await?;
    let (mut sink, mut echoes) = publisher.split();
    let echo_check = Rc::new(SeqCheck::after(publisher_joined_at));
    let echo = Rc::clone(&echo_check);
    tokio::task::spawn_local(async move {
        while let Some(Ok(frame)) = echoes.next().await {
            if let Message::Text(text) = frame {
                if let Some(seq) = seq_of(&text) {
                    echo.observe(seq);
                }
            }
        }
    });

    let stop = Rc::new(Cell::new(false));
    let sent = Rc::new(Cell::new(0u64));
    let publishing = {
        let (stop, sent, checks, epoch) = (Rc::clone(&stop), Rc::clone(&sent), checks.clone(), ctx.epoch);
        tokio::task::spawn_local(async move {
            let mut ticker = match pace {
                Pace::PerSecond(rate) => Some(tokio::time::interval(Duration::from_secs(1) / rate)),
                Pace::Flat => None,
            };
            while !stop.get() {
                if let Some(ticker) = ticker.as_mut() {
                    ticker.tick().await;
                    sink.send(Message::text(timed_frame(epoch))).await?;
                    sent.set(sent.get() + 1);
                    continue;
                }
                let slowest = checks.iter().map(|c| c.last()).min().unwrap_or(0);
                let room_for = (slowest + WINDOW).saturating_sub(sent.get());
                if room_for == 0 {
                    // The window holds far more than a millisecond of the
                    // server's work, so a timer tick never leaves it idle.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                for _ in 0..room_for {
                    sink.feed(Message::text(timed_frame(epoch))).await?;
                }
                sink.flush().await?;
                sent.set(sent.get() + room_for);
            }
            anyhow::Ok(())
        })
    };

    let measured = ctx.warm_up_then_measure(&latency).await?;
    stop.set(true);
    publishing.await??;
    let final_seq = sent.get();
    checks.push(echo_check);
    drain(&checks, final_seq, Duration::from_secs(15)).await;

    let seconds = ctx.size.measure().as_secs_f64();
    let mut rows = Vec::new();
    if let Pace::Flat = pace {
        let target = (subscribers >= 1000).then_some(Target::AtLeast(2_000_000.0));
        rows.push(Row::new(name, "deliveries per second", delivered.get() as f64 / seconds, "msg/s", target));
    } else {
        rows.push(Row::new(name, "deliveries per second", delivered.get() as f64 / seconds, "msg/s", None));
    }
    let p99_target = matches!(pace, Pace::PerSecond(_)).then_some(Target::AtMost(10.0));
    rows.extend(latency.rows(name, p99_target)?);
    if let Some(cpu) = measured.cpu {
        rows.push(Row::new(name, "server CPU", cpu.server * 100.0, "%", None));
        rows.push(Row::new(name, "load generator CPU", cpu.generator * 100.0, "%", None));
        if let Some(redis) = cpu.redis {
            rows.push(Row::new(name, "Redis CPU", redis * 100.0, "%", None));
        }
    }
    if let Some(round_trips) = measured.redis_round_trips_per_message {
        rows.push(Row::new(name, "Redis round trips per published message", round_trips, "", None));
    }
    Ok((rows, integrity(name, &checks, closed.get())))
}

/// comms' deliveries per second (`comms`, rows of `scenario`) over the
/// bare server's (`reference`) in the same run, with the target of 0.8.
pub fn over_reference(scenario: &str, comms: &[Row], reference: &[Row]) -> Option<Row> {
    let rate = |rows: &[Row]| rows.iter().find(|row| row.metric == "deliveries per second").map(|row| row.value);
    let (comms, reference) = (rate(comms)?, rate(reference).filter(|rate| *rate > 0.0)?);
    Some(Row::new(scenario, "deliveries over the bare server's", comms / reference, "×", Some(Target::AtLeast(0.8))))
}
