//! Scenario: a presence storm. `M` members of one presence room connect,
//! stay about a second, drop, and come back once the leave grace period has
//! passed, over and over: every cycle of every member is a `join` and a
//! `leave`, each sent to every connection of the room (`O(M)` frames per
//! change, `O(M²)` in all). Meanwhile the small-rooms scenario runs with one
//! neighbouring room: its p99 shows whether the server stays responsive.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{small_rooms, source, Ctx};
use crate::client::connect;
use crate::server::BENCH_LEAVE_GRACE;
use crate::stats::{Integrity, Row};

/// How long a member stays connected in each cycle.
const STAY: Duration = Duration::from_secs(1);
/// How long past the grace period a member stays away, so it really leaves.
const AWAY_PAST_GRACE: Duration = Duration::from_millis(300);
/// One member's cycle: connected, then away.
const CYCLE: Duration = STAY.saturating_add(BENCH_LEAVE_GRACE).saturating_add(AWAY_PAST_GRACE);

/// Counts the room's presence frames.
#[derive(Default)]
struct Seen {
    /// Join and leave frames received by all members, while measuring.
    frames: Cell<u64>,
    /// Joins and leaves the observer (a member that never leaves) saw,
    /// while measuring: the room's changes.
    changes: Cell<u64>,
    measuring: Cell<bool>,
}

/// Runs the storm with `members` members.
///
/// # Errors
///
/// Setup fails, or a connection fails.
pub async fn run(ctx: &Ctx, members: usize) -> anyhow::Result<(Vec<Row>, Integrity)> {
    let name = format!("presence storm, {members} members");
    ctx.api.create_presence_room("crowd").await?;
    let observer_url = ctx.api.create_endpoint("crowd", "read").await?;
    let mut urls = Vec::with_capacity(members);
    for _ in 0..members {
        urls.push(ctx.api.create_endpoint("crowd", "read").await?);
    }
    let seen = Rc::new(Seen::default());
    let stop = Rc::new(Cell::new(false));
    let mut observer = connect(&observer_url, ctx.server, source(members)).await?;
    let observing = tokio::task::spawn_local({
        let (seen, stop) = (Rc::clone(&seen), Rc::clone(&stop));
        async move {
            while let Some(Ok(frame)) = observer.next().await {
                if stop.get() {
                    return;
                }
                if let Message::Text(text) = frame {
                    if is_presence(&text) && seen.measuring.get() {
                        seen.changes.set(seen.changes.get() + 1);
                    }
                }
            }
        }
    });
    let churners: Vec<_> = urls
        .into_iter()
        .enumerate()
        .map(|(n, url)| {
            let (seen, stop, server) = (Rc::clone(&seen), Rc::clone(&stop), ctx.server);
            tokio::task::spawn_local(async move {
                // Spread the members' cycles over one whole cycle.
                tokio::time::sleep(CYCLE * n as u32 / members as u32).await;
                while !stop.get() {
                    let mut ws = connect(&url, server, source(n)).await?;
                    let _ = tokio::time::timeout(STAY, async {
                        while let Some(Ok(frame)) = ws.next().await {
                            if let Message::Text(text) = frame {
                                if is_presence(&text) && seen.measuring.get() {
                                    seen.frames.set(seen.frames.get() + 1);
                                }
                            }
                        }
                    })
                    .await;
                    ws.get_ref().set_zero_linger()?;
                    drop(ws);
                    tokio::time::sleep(CYCLE.saturating_sub(STAY)).await;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    // The neighbour's warm-up and measuring time frame the storm's.
    let measuring = async {
        tokio::time::sleep(ctx.size.warm_up()).await;
        seen.measuring.set(true);
        tokio::time::sleep(ctx.size.measure()).await;
        seen.measuring.set(false);
    };
    let (neighbour, ()) = tokio::join!(small_rooms::run(ctx, 1), measuring);
    stop.set(true);
    for churner in churners {
        churner.await??;
    }
    observing.abort();
    let (neighbour_rows, integrity) = neighbour?;
    let seconds = ctx.size.measure().as_secs_f64();
    let mut rows = vec![
        Row::new(&name, "joins and leaves per second", seen.changes.get() as f64 / seconds, "changes/s", None),
        Row::new(&name, "presence frames delivered per second", seen.frames.get() as f64 / seconds, "frames/s", None),
    ];
    // The small-rooms target is for a quiet server, not for one in a storm.
    let neighbour = format!("{name}: neighbouring room");
    rows.extend(neighbour_rows.into_iter().map(|row| Row {
        scenario: neighbour.clone(),
        target: None,
        meets: None,
        ..row
    }));
    Ok((rows, integrity))
}

/// Whether a frame is a `join` or a `leave` (the server writes `type` first).
fn is_presence(frame: &str) -> bool {
    frame.starts_with(r#"{"type":"join""#) || frame.starts_with(r#"{"type":"leave""#)
}
