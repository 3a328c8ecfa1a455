//! PostgreSQL going away and coming back, seen through a TCP proxy the test
//! can cut: the node stays up, `/readyz` says not ready, requests answer
//! `503 unavailable`, live sockets stay open, and everything works again
//! once the database is back, with nothing acknowledged lost. (The Redis
//! side is `cluster::a_redis_restart_is_survived_…`.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comms_testkit::postgres::TestDatabase;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::helpers::{assert_error, body, spawn_app_with, TestApp};

/// Forwards connections to `target` until cut; while cut, it refuses new
/// ones and has dropped the open ones, as a database that went away.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accepting: AbortHandle,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up_, links_) = (Arc::clone(&up), Arc::clone(&links));
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up_.load(Ordering::Acquire) {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links_.lock().unwrap().push(link.abort_handle());
            }
        })
        .abort_handle();
        Self { addr, up, links, accepting }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::Release);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::Release);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

async fn ready(app: &TestApp) -> u16 {
    app.api().client.get(format!("{}/readyz", app.api().base)).send().await.unwrap().status().as_u16()
}

async fn eventually_ready(app: &TestApp, status: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while ready(app).await != status {
        assert!(Instant::now() < deadline, "/readyz did not answer {status} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_and_recovers_without_losing_messages() {
    let Some(database) = TestDatabase::create().await else { return };
    let mut url = reqwest::Url::parse(database.url()).unwrap();
    let target = url.socket_addrs(|| Some(5432)).unwrap()[0];
    let proxy = Proxy::start(target).await;
    url.set_ip_host(proxy.addr.ip()).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let proxied = url.to_string();
    let app = spawn_app_with(move |config| {
        config.database.url = proxied;
        // Every request asks the database, not a cached key.
        config.auth.key_cache_ttl = Duration::ZERO;
    })
    .await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut live = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    assert_eq!(live.next_json().await["type"], "welcome");
    let first = body(app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": 1 })).await).await;
    assert_eq!(live.next_message().await["seq"], first["seq"]);

    proxy.cut();
    eventually_ready(&app, 503, Duration::from_secs(15)).await;
    assert_error(app.api().get("/api/v1/rooms", &key).await, 503, "unavailable").await;

    proxy.restore();
    eventually_ready(&app, 200, Duration::from_secs(15)).await;
    let second = app.api().post("/api/v1/rooms/lobby/messages", &key, json!({ "message": 2 })).await;
    assert_eq!(second.status(), 201, "requests work again");
    let message = live.next_message().await;
    assert_eq!((&message["message"], message["seq"].as_u64()), (&json!(2), Some(2)), "the socket lived through it");
    let history = body(app.api().get("/api/v1/rooms/lobby/messages", &key).await).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2, "nothing acknowledged was lost");
}
