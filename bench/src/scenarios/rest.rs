//! Scenario 6: the REST API with key auth, GET and POST on `/api/v1/rooms`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use anyhow::bail;
use futures_util::future::join_all;

use super::Ctx;
use crate::stats::{Row, Target};

/// Requests in flight at once (one keep-alive connection each).
const CONCURRENCY: usize = 32;

/// Runs GET, then POST, each for the measuring time.
///
/// # Errors
///
/// A request fails.
pub async fn run(ctx: &Ctx, key: &str) -> anyhow::Result<Vec<Row>> {
    for n in 0..10 {
        ctx.api.create_room(&format!("listed-{n}")).await?;
    }
    let base = format!("http://{}", ctx.server);
    let get = rate(ctx, |client, worker, n| {
        let _ = (worker, n);
        client.get(format!("{base}/api/v1/rooms")).header("X-API-Key", key)
    })
    .await?;
    // GET runs first, so it lists only the ten rooms above.
    let post = rate(ctx, |client, worker, n| {
        client
            .post(format!("{base}/api/v1/rooms"))
            .header("X-API-Key", key)
            .body(format!("{{\"name\": \"new-{worker}-{n}\"}}"))
    })
    .await?;
    Ok(vec![
        Row::new("REST", "GET /api/v1/rooms per second", get, "req/s", Some(Target::AtLeast(15_000.0))),
        Row::new("REST", "POST /api/v1/rooms per second", post, "req/s", Some(Target::AtLeast(15_000.0))),
    ])
}

async fn rate(
    ctx: &Ctx,
    request: impl Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder,
) -> anyhow::Result<f64> {
    let done = Rc::new(Cell::new(0u64));
    let until = Instant::now() + ctx.size.warm_up() + ctx.size.measure();
    let measure_from = Instant::now() + ctx.size.warm_up();
    let request = &request;
    let workers = (0..CONCURRENCY).map(|worker| {
        let done = Rc::clone(&done);
        async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
            let mut n = 0;
            while Instant::now() < until {
                let response = request(&client, worker, n).send().await?;
                if !response.status().is_success() {
                    bail!("{} {}", response.status(), response.text().await.unwrap_or_default());
                }
                response.bytes().await?;
                if Instant::now() >= measure_from {
                    done.set(done.get() + 1);
                }
                n += 1;
            }
            anyhow::Ok(())
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    Ok(done.get() as f64 / ctx.size.measure().as_secs_f64())
}
