//! Scenario 5: connection storm. Clients open WebSockets as fast as they
//! can (code lookup and welcome included) and drop them at once.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use futures_util::future::join_all;

use super::{source, welcome, Ctx};
use crate::client::connect;
use crate::stats::{Row, Target};

/// Handshakes in flight at once.
const CONCURRENCY: usize = 64;

/// Runs the storm for the measuring time.
///
/// # Errors
///
/// Setup fails, or a handshake fails.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    ctx.api.create_room("storm").await?;
    let url = ctx.api.create_endpoint("storm", "read").await?;
    let done = Rc::new(Cell::new(0u64));
    let counted = Rc::new(Cell::new(false));
    let until = Instant::now() + ctx.size.warm_up() + ctx.size.measure();
    let measure_from = Instant::now() + ctx.size.warm_up();
    let workers = (0..CONCURRENCY).map(|worker| {
        let (url, done, counted) = (url.clone(), Rc::clone(&done), Rc::clone(&counted));
        async move {
            let mut n = worker;
            while Instant::now() < until {
                let mut ws = connect(&url, ctx.server, source(n)).await?;
                welcome(&mut ws).await?;
                // Dropping without a close handshake: the server sees the
                // connection end, and no client port lingers in TIME_WAIT.
                ws.get_ref().set_zero_linger()?;
                drop(ws);
                if Instant::now() >= measure_from {
                    counted.set(true);
                    done.set(done.get() + 1);
                }
                n += CONCURRENCY;
            }
            anyhow::Ok(())
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    let rate = done.get() as f64 / ctx.size.measure().as_secs_f64();
    Ok(vec![Row::new("connection storm", "handshakes per second", rate, "conn/s", Some(Target::AtLeast(10_000.0)))])
}
