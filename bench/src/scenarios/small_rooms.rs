//! Scenario 3: many small rooms. Each room has two read-and-write
//! connections, each sending 10 messages a second; both receive both.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{read_messages, source, welcome, Ctx};
use crate::client::{connect, timed_frame};
use crate::stats::{drain, integrity, Integrity, Latency, Row, SeqCheck, Target};

const PER_SECOND: u32 = 10;

/// Runs the scenario with `rooms` rooms.
///
/// # Errors
///
/// Setup or a connection fails.
pub async fn run(ctx: &Ctx, rooms: usize) -> anyhow::Result<(Vec<Row>, Integrity)> {
    let name = format!("{rooms} rooms x 2, 10 msg/s each");
    let latency = Latency::new(ctx.epoch);
    let delivered = Rc::new(Cell::new(0u64));
    let closed = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let mut checks = Vec::new();
    let mut senders = Vec::new();
    let mut sent_per_room = Vec::new();
    for room in 0..rooms {
        let room_name = format!("small-{room}");
        ctx.api.create_room(&room_name).await?;
        let sent_here = Rc::new(Cell::new(0u64));
        sent_per_room.push(Rc::clone(&sent_here));
        for side in 0..2 {
            let url = ctx.api.create_endpoint(&room_name, "read_and_write").await?;
            let mut ws = connect(&url, ctx.server, source(room * 2 + side)).await?;
            let joined_at = welcome(&mut ws).await?;
            let (mut sink, stream) = ws.split();
            let check = Rc::new(SeqCheck::after(joined_at));
            checks.push(Rc::clone(&check));
            tokio::task::spawn_local(read_messages(
                stream,
                check,
                latency.clone(),
                Rc::clone(&delivered),
                Rc::clone(&closed),
            ));
            let (stop, sent_here, epoch) = (Rc::clone(&stop), Rc::clone(&sent_here), ctx.epoch);
            // Spread the senders' ticks over the whole period.
            let phase = Duration::from_secs(1) / PER_SECOND * ((room * 2 + side) % 97) as u32 / 97;
            senders.push(tokio::task::spawn_local(async move {
                tokio::time::sleep(phase).await;
                let mut ticker = tokio::time::interval(Duration::from_secs(1) / PER_SECOND);
                while !stop.get() {
                    ticker.tick().await;
                    sink.send(Message::text(timed_frame(epoch))).await?;
                    sent_here.set(sent_here.get() + 1);
                }
                anyhow::Ok(())
            }));
        }
    }
    ctx.warm_up_then_measure(&latency).await?;
    stop.set(true);
    for sender in senders {
        sender.await??;
    }
    for (room, sent) in sent_per_room.iter().enumerate() {
        drain(&checks[room * 2..room * 2 + 2], sent.get(), Duration::from_secs(10)).await;
    }
    let seconds = ctx.size.measure().as_secs_f64();
    let mut rows = vec![Row::new(&name, "deliveries per second", delivered.get() as f64 / seconds, "msg/s", None)];
    // Issue 19's target for the p99.
    rows.extend(latency.rows(&name, Some(Target::AtMost(0.8)))?);
    Ok((rows, integrity(&name, &checks, closed.get())))
}
