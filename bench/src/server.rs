//! The server under test: a release `comms` started with a fresh data
//! folder, pinned to one core when `taskset` is there, with the limits a
//! load test would otherwise trip over turned off (quotas raised out of
//! reach), and without the demo.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// The count quotas of `[quotas]`. The bench sets each far above what any
/// scenario reaches (the idle one alone opens 19 500 sockets from one
/// address), not to 0: the counting still runs, so its cost is measured.
const QUOTAS: [&str; 6] = [
    "rooms_per_app",
    "endpoints_per_room",
    "apps_per_account",
    "sockets_per_app",
    "sockets_per_endpoint",
    "sockets_per_ip",
];
/// The value every quota gets.
const BENCH_QUOTA: &str = "100000000";
/// `limits.connection_queue` of the bench's servers: frames a connection
/// may be behind before it is closed (the bare server keeps the same).
pub const CONNECTION_QUEUE: usize = 4096;
/// `presence.leave_grace_ms` of the bench's servers: shorter than the
/// default, so the presence storm churns faster.
pub const BENCH_LEAVE_GRACE: Duration = Duration::from_millis(500);
/// `webhooks.concurrency_per_app` of the bench's servers. The default (8)
/// caps an app at 8 attempts per round trip, and a round trip on a server
/// whose core the fan-out saturates takes about 3 ms: 2 700 a second, not
/// the webhook scenario's 10 000.
const BENCH_WEBHOOK_CONCURRENCY: usize = 64;

/// Where a comms node keeps its data beside its own folder: nothing (the
/// SQLite file and the in-process broker), or a PostgreSQL database and a
/// Redis key prefix that several nodes may share.
#[derive(Debug, Clone, Default)]
pub struct Backing {
    /// `DATABASE_URL`, `REDIS_URL` and `COMMS_BROKER__KEY_PREFIX`, when set.
    env: Vec<(&'static str, String)>,
}

impl Backing {
    /// A PostgreSQL database and Redis under `prefix`.
    pub fn shared(database: &str, redis: &str, prefix: &str) -> Self {
        let env = vec![
            ("DATABASE_URL", database.to_owned()),
            ("REDIS_URL", redis.to_owned()),
            ("COMMS_BROKER__KEY_PREFIX", prefix.to_owned()),
        ];
        Self { env }
    }
}

/// A running `comms serve` process.
pub struct ServerProcess {
    child: Child,
    binary: PathBuf,
    data: TempDir,
    backing: Backing,
    pid: u32,
    /// `127.0.0.1:port` it listens on.
    pub addr: SocketAddr,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn has_taskset() -> bool {
    std::process::Command::new("taskset").arg("-V").output().is_ok_and(|out| out.status.success())
}

/// A command running `program` on `core`, with taskset when there is one.
pub fn pinned(program: &Path, core: Option<usize>) -> Command {
    match core.filter(|_| has_taskset()) {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(core.to_string()).arg(program);
            command
        }
        None => Command::new(program),
    }
}

impl ServerProcess {
    /// Starts the server and waits until `/healthz` answers.
    ///
    /// # Errors
    ///
    /// The binary cannot be started or does not become healthy in 30 s.
    pub async fn start(binary: &Path, core: Option<usize>) -> anyhow::Result<Self> {
        Self::start_on(binary, core, Backing::default()).await
    }

    /// Starts a node on `backing` and waits until `/healthz` answers.
    ///
    /// # Errors
    ///
    /// The binary cannot be started or does not become healthy in 30 s.
    pub async fn start_on(binary: &Path, core: Option<usize>, backing: Backing) -> anyhow::Result<Self> {
        let env = backing.env.clone();
        Self::launch(binary.to_owned(), core, backing, |command, addr, data| {
            command
                .args(["serve", "--addr", &addr.to_string()])
                .env("COMMS_DATA_DIR", data)
                .envs(env)
                .env("COMMS_LIMITS__API_REQUESTS_PER_SECOND", "0")
                .env("COMMS_LIMITS__WS_MESSAGES_PER_SECOND", "0")
                .env("COMMS_LIMITS__CONNECTION_QUEUE", CONNECTION_QUEUE.to_string())
                .env("COMMS_PRESENCE__LEAVE_GRACE_MS", BENCH_LEAVE_GRACE.as_millis().to_string())
                .env("COMMS_WEBHOOKS__CONCURRENCY_PER_APP", BENCH_WEBHOOK_CONCURRENCY.to_string())
                .envs(QUOTAS.iter().map(|quota| (format!("COMMS_QUOTAS__{}", quota.to_uppercase()), BENCH_QUOTA)))
                .env("COMMS_LOG__FILTER", "warn")
                .env("COMMS_DEMO__ENABLED", "false")
                .env_remove("RUST_LOG");
        })
        .await
    }

    /// Starts the bare reference server (`bare_server`, this binary run
    /// with `--bare-server`) on `core` and waits until it answers.
    ///
    /// # Errors
    ///
    /// It cannot be started or does not answer in 30 s.
    pub async fn start_bare(core: Option<usize>) -> anyhow::Result<Self> {
        Self::launch(std::env::current_exe()?, core, Backing::default(), |command, addr, _| {
            command.args(["--bare-server", &addr.to_string()]);
        })
        .await
    }

    /// Runs `binary` on `core` with what `configure` adds (given the
    /// address to listen on and a fresh data folder), its errors logged in
    /// that folder, and waits until `/healthz` answers.
    async fn launch(
        binary: PathBuf,
        core: Option<usize>,
        backing: Backing,
        configure: impl FnOnce(&mut Command, SocketAddr, &Path),
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let log = std::fs::File::create(data.path().join("server.log"))?;
        let mut command = pinned(&binary, core);
        configure(&mut command, addr, data.path());
        command.stdout(Stdio::null()).stderr(log).kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let server = Self { child, binary, data, backing, pid, addr };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// The process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let url = format!("http://{}/healthz", self.addr);
            if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default();
        bail!("the server did not become healthy; its log:\n{log}")
    }

    /// Creates an app with the CLI, as an operator would; returns its key.
    ///
    /// # Errors
    ///
    /// The command fails or prints something unexpected.
    pub async fn create_app(&self, name: &str) -> anyhow::Result<String> {
        let output = Command::new(&self.binary)
            .args(["app", "create", name])
            .env("COMMS_DATA_DIR", self.data.path())
            .envs(self.backing.env.iter().cloned())
            .env("COMMS_LOG__FILTER", "warn")
            .output()
            .await?;
        if !output.status.success() {
            bail!("comms app create failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let created: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        created["api_key"].as_str().map(str::to_owned).context("no api_key in the output")
    }

    /// Resident memory of the server process, in KiB.
    ///
    /// # Errors
    ///
    /// `/proc` cannot be read (not Linux).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
        Ok(line.split_whitespace().nth(1).context("no VmRSS value")?.parse()?)
    }

    /// Stops the server with SIGTERM, as systemd would.
    pub async fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
