//! `comms-bench`: starts a release `comms` on one core, drives it from this
//! process on another, and prints a Markdown table (and writes JSON) of
//! fan-out throughput (on the in-process and the Redis broker), latency,
//! memory per idle socket, handshake rate, REST rate, resume time and the
//! fan-out beside webhook deliveries. Every run also counts messages lost or
//! duplicated, which must be zero; `--smoke` is a few-second run for CI that
//! checks exactly that.
//!
//! # Layout
//!
//! - `server`: the comms process under test.
//! - `api`: REST setup calls.
//! - `client`: the WebSocket client and the frame fields it reads.
//! - `stats`: latency histograms, seq checks, report rows.
//! - `scenarios`: one module per scenario.
//! - `report`: Markdown and JSON output.
//! - `cpu`: each side's CPU time while measuring.
//! - `counters`: the nodes' `/metrics` counters while measuring.
//! - `bare_server`: the fan-out scenarios' reference, run as a process of
//!   its own (`--bare-server`).
//! - `bare_poster`: the webhook scenario's reference, run as a process of
//!   its own (`--bare-poster`).

mod api;
mod bare_poster;
mod bare_server;
mod client;
mod counters;
mod cpu;
mod report;
mod scenarios;
mod server;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::api::Api;
use crate::report::{Machine, Report};
use crate::scenarios::fanout::Pace;
use crate::scenarios::{Ctx, Size};
use crate::server::ServerProcess;

/// Benchmarks a comms server.
#[derive(Debug, Parser)]
struct Args {
    /// A few seconds with a few connections: checks the harness and message
    /// integrity, not speed.
    #[arg(long)]
    smoke: bool,
    /// The `comms` binary; default: next to this one.
    #[arg(long)]
    server: Option<PathBuf>,
    /// Core to pin the server to (with taskset).
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Where to write the JSON report.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run only scenarios whose name contains one of these words
    /// (fanout, broker, fixed, rooms, idle, storm, presence, rest, resume, webhook).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Instead of benchmarking, be the webhook scenario's bare poster,
    /// posting to this URL until killed.
    #[arg(long, hide = true)]
    bare_poster: Option<String>,
    /// Instead of benchmarking, be the fan-out scenarios' bare server,
    /// listening on this address until killed.
    #[arg(long, hide = true)]
    bare_server: Option<std::net::SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let reference = match (&args.bare_poster, args.bare_server) {
        (Some(url), _) => Some(bare_poster::run(url)),
        (None, Some(addr)) => Some(bare_server::run(addr)),
        (None, None) => None,
    };
    if let Some(ended) = reference {
        return match ended {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("messages were lost or duplicated");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn wanted(args: &Args, scenario: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|word| scenario.contains(word.as_str()))
}

/// One fresh server and app for a scenario.
async fn fresh(binary: &std::path::Path, core: usize, size: Size) -> anyhow::Result<(ServerProcess, Ctx, String)> {
    let server = ServerProcess::start(binary, Some(core)).await?;
    let key = server.create_app("bench").await?;
    let ctx = Ctx::new(&[&server], key.clone(), size);
    Ok((server, ctx, key))
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.parent().context("no folder")?.join("comms"),
    };
    anyhow::ensure!(binary.exists(), "no server binary at {} (build comms-server first)", binary.display());
    // Tens of thousands of sockets on each side; the server inherits the
    // limit. Raising the hard limit needs root; otherwise take what is allowed.
    if rlimit::setrlimit(rlimit::Resource::NOFILE, 200_000, 200_000).is_err() {
        let _ = rlimit::increase_nofile_limit(200_000);
    }
    let size = if args.smoke { Size::Smoke } else { Size::Full };
    let core = args.server_core;
    let mut rows = Vec::new();
    let mut integrity = Vec::new();

    for (scenario, subscribers) in [("fanout S=100", 100), ("fanout S=1000", 1000)] {
        if wanted(&args, scenario) {
            let (server, ctx, _) = fresh(&binary, core, size).await?;
            let (comms, i) = scenarios::fanout::run(&ctx, scenario, size.scale(subscribers), Pace::Flat).await?;
            integrity.push(i);
            server.stop().await;
            let bare = ServerProcess::start_bare(Some(core)).await?;
            let ctx = Ctx::new(&[&bare], String::new(), size);
            let name = format!("{scenario}, bare server");
            let (reference, i) = scenarios::fanout::run(&ctx, &name, size.scale(subscribers), Pace::Flat).await?;
            integrity.push(i);
            bare.stop().await;
            let ratio = scenarios::fanout::over_reference(scenario, &comms, &reference);
            rows.extend(comms);
            rows.extend(reference);
            rows.extend(ratio);
        }
    }
    if wanted(&args, "broker") {
        let setup = scenarios::broker::Setup { binary: &binary, core, size, subscribers: size.scale(1000) };
        match scenarios::broker::run(&setup).await? {
            Some((r, i)) => {
                rows.extend(r);
                integrity.extend(i);
            }
            None => eprintln!("the broker scenario needs PostgreSQL and Redis: not run"),
        }
    }
    if wanted(&args, "webhook") {
        let mut runs = Vec::new();
        for beside in scenarios::webhooks::Beside::ALL {
            let (server, ctx, _) = fresh(&binary, core, size).await?;
            let side = Api::new(format!("http://{}", server.addr), server.create_app("side").await?);
            let (r, i) = scenarios::webhooks::run(&ctx, &side, size.scale(100), beside, Some(core)).await?;
            runs.extend(r);
            integrity.push(i);
            server.stop().await;
        }
        let ratios = scenarios::webhooks::ratios(&runs);
        rows.extend(runs);
        rows.extend(ratios);
    }
    if wanted(&args, "fixed load") {
        let (server, ctx, _) = fresh(&binary, core, size).await?;
        let name = "fixed load S=1000, 100 msg/s";
        let (r, i) = scenarios::fanout::run(&ctx, name, size.scale(1000), Pace::PerSecond(100)).await?;
        rows.extend(r);
        integrity.push(i);
        server.stop().await;
    }
    if wanted(&args, "small rooms") {
        let (server, ctx, _) = fresh(&binary, core, size).await?;
        let (r, i) = scenarios::small_rooms::run(&ctx, size.scale(500)).await?;
        rows.extend(r);
        integrity.push(i);
        server.stop().await;
    }
    if wanted(&args, "idle") {
        let (server, ctx, _) = fresh(&binary, core, size).await?;
        // Each side needs a descriptor per socket: without the right to raise
        // the hard limit (a sandbox), stay a little under it.
        let most = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(20_000, |(_, hard)| hard as usize - 500);
        let counts = [size.scale(10_000).min(most), size.scale(20_000).min(most)];
        rows.extend(scenarios::idle::run(&ctx, &server, &counts).await?);
        server.stop().await;
    }
    if wanted(&args, "connection storm") {
        let (server, ctx, _) = fresh(&binary, core, size).await?;
        rows.extend(scenarios::storm::run(&ctx).await?);
        server.stop().await;
    }
    if wanted(&args, "presence storm") {
        let (server, ctx, _) = fresh(&binary, core, size).await?;
        let (r, i) = scenarios::presence_storm::run(&ctx, size.scale(1000)).await?;
        rows.extend(r);
        integrity.push(i);
        server.stop().await;
    }
    if wanted(&args, "rest") {
        let (server, ctx, key) = fresh(&binary, core, size).await?;
        rows.extend(scenarios::rest::run(&ctx, &key).await?);
        server.stop().await;
    }
    if wanted(&args, "resume") {
        let (server, ctx, _) = fresh(&binary, core, size).await?;
        let backlog = if args.smoke { 100 } else { 1000 };
        let (r, i) = scenarios::resume::run(&ctx, backlog, if args.smoke { 3 } else { 20 }).await?;
        rows.extend(r);
        integrity.push(i);
        server.stop().await;
    }

    if args.smoke {
        // Smoke runs are debug builds with a few connections: no target applies.
        for row in &mut rows {
            row.target = None;
            row.meets = None;
        }
    }
    let generator_core = std::env::var("COMMS_BENCH_CORE").ok().and_then(|c| c.parse().ok());
    let report = Report { machine: Machine::here(Some(core), generator_core), rows, integrity };
    println!("{}", report.markdown());
    if let Some(path) = &args.json {
        report.write_json(path)?;
        println!("JSON report: {}", path.display());
    }
    Ok(report.intact())
}
