//! Webhooks under load: fan-out in one room (as scenario 1, S subscribers)
//! while another app publishes 10 000 messages a second into a room of its
//! own, with or without a `message.created` webhook posting each to a
//! receiver in this process. Run each way in one bench run, the fan-out
//! figures tell what delivering webhooks costs the fan-out; the receiver's
//! count tells whether the deliveries keep up. A third way runs the bare
//! poster (`bare_poster`) on the server's core instead of the webhook: what
//! as many deliveries cost at the least, the reference for the second.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use super::fanout::{self, Pace};
use super::{source, welcome, Ctx};
use crate::api::Api;
use crate::client::{connect, timed_frame};
use crate::server::pinned;
use crate::stats::{Integrity, Row, Target};

/// Messages per second the second app publishes.
const SIDE_RATE: u32 = 10_000;

/// What runs beside the fan-out and the second app's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beside {
    /// Nothing more.
    Nothing,
    /// A `message.created` webhook of the second app.
    Webhook,
    /// No webhook; the bare poster posting as many deliveries from the
    /// server's core.
    BarePoster,
}

impl Beside {
    /// Every way, in the order a run measures them.
    pub const ALL: [Self; 3] = [Self::Nothing, Self::Webhook, Self::BarePoster];

    fn scenario(self) -> &'static str {
        match self {
            Self::Nothing => "fanout S=100 beside 10k msg/s",
            Self::Webhook => "fanout S=100 beside 10k msg/s to a webhook",
            Self::BarePoster => "fanout S=100 beside 10k msg/s and a bare poster of 10k req/s",
        }
    }
}

/// Runs the fan-out of `subscribers` beside the second app's load
/// (`side`) and `beside`; the bare poster runs on `core`, the server's.
///
/// # Errors
///
/// Setup or a connection fails, or the bare poster cannot be started.
pub async fn run(
    ctx: &Ctx,
    side: &Api,
    subscribers: usize,
    beside: Beside,
    core: Option<usize>,
) -> anyhow::Result<(Vec<Row>, Integrity)> {
    let received = Arc::new(AtomicU64::new(0));
    let url = spawn_receiver(Arc::clone(&received))?;
    let _poster = match beside {
        Beside::Nothing => None,
        Beside::Webhook => {
            side.create_webhook(&url, &["message.created"]).await?;
            None
        }
        Beside::BarePoster => {
            Some(pinned(&std::env::current_exe()?, core).args(["--bare-poster", &url]).kill_on_drop(true).spawn()?)
        }
    };
    side.create_room("side").await?;
    let writer = side.create_endpoint("side", "read_and_write").await?;
    let mut publisher = connect(&writer, ctx.server, source(0)).await?;
    welcome(&mut publisher).await?;
    let (mut sink, mut echoes) = publisher.split();
    tokio::task::spawn_local(async move { while let Some(Ok(_)) = echoes.next().await {} });
    let stop = Rc::new(Cell::new(false));
    let published = Rc::new(Cell::new(0u64));
    let side_load = {
        let (stop, published, epoch) = (Rc::clone(&stop), Rc::clone(&published), ctx.epoch);
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.get() {
                tick.tick().await;
                for _ in 0..SIDE_RATE / 100 {
                    sink.feed(Message::text(timed_frame(epoch))).await?;
                }
                sink.flush().await?;
                published.set(published.get() + u64::from(SIDE_RATE / 100));
            }
            anyhow::Ok(())
        })
    };

    let name = beside.scenario();
    let started = Instant::now();
    let received_before = received.load(Ordering::Relaxed);
    let (mut rows, integrity) = fanout::run(ctx, name, subscribers, Pace::Flat).await?;
    let seconds = started.elapsed().as_secs_f64();
    stop.set(true);
    side_load.await??;
    let received = received.load(Ordering::Relaxed);
    match beside {
        Beside::Nothing => {}
        Beside::Webhook => {
            rows.push(Row::new(name, "webhook deliveries per second", received as f64 / seconds, "req/s", None));
            let behind = published.get().saturating_sub(received) as f64;
            rows.push(Row::new(name, "webhook deliveries behind at the end", behind, "events", None));
        }
        Beside::BarePoster => {
            let rate = (received - received_before) as f64 / seconds;
            rows.push(Row::new(name, "bare posts per second", rate, "req/s", None));
        }
    }
    Ok((rows, integrity))
}

/// Starts the receiver on a thread of its own (the load generator's
/// runtime is kept busy by the fan-out's readers and would starve it); its
/// URL.
fn spawn_receiver(received: Arc<AtomicU64>) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        runtime.block_on(async move {
            if let Ok(listener) = TcpListener::from_std(listener) {
                receive(listener, received).await;
            }
        });
    });
    Ok(url)
}

/// A minimal HTTP/1.1 receiver: reads each request's head and body and
/// answers `204`, keeping connections open; counts the requests.
async fn receive(listener: TcpListener, received: Arc<AtomicU64>) {
    while let Ok((stream, _)) = listener.accept().await {
        // Answers are small writes: without this, Nagle's algorithm holds
        // one back until the previous is acknowledged.
        let _ = stream.set_nodelay(true);
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            let (reader, mut writer) = stream.into_split();
            let mut reader = BufReader::new(reader);
            let mut line = String::new();
            loop {
                let mut length = 0usize;
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let header = line.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                received.fetch_add(1, Ordering::Relaxed);
                if writer.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The fan-out figures of `rows` beside the webhook and beside the bare
/// poster, each over the figure beside nothing (all of one run; the first
/// carries the target of 0.9), and the first over the second: what
/// comms keeps of the least any server could keep. The last is the steady
/// one on a shared machine, whose noise moves both runs beside something
/// alike.
pub fn ratios(rows: &[Row]) -> Vec<Row> {
    let fanout = |beside: Beside| {
        rows.iter()
            .find(|row| row.scenario == beside.scenario() && row.metric == "deliveries per second")
            .map(|row| row.value)
            .filter(|value| *value > 0.0)
    };
    let (Some(alone), Some(webhook), Some(bare)) =
        (fanout(Beside::Nothing), fanout(Beside::Webhook), fanout(Beside::BarePoster))
    else {
        return Vec::new();
    };
    let over_alone = "fan-out over the run beside nothing";
    vec![
        Row::new(Beside::Webhook.scenario(), over_alone, webhook / alone, "×", Some(Target::AtLeast(0.9))),
        Row::new(Beside::BarePoster.scenario(), over_alone, bare / alone, "×", None),
        Row::new(Beside::Webhook.scenario(), "fan-out over the run beside the bare poster", webhook / bare, "×", None),
    ]
}
