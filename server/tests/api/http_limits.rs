//! SPEC's HTTP limits, on raw sockets against the real listener: a request
//! head must arrive in time, a kept-alive connection may wait only so long
//! between requests, open connections are bounded, and a thousand half-sent
//! requests leave `/healthz` answering a new client. (The same deadline on
//! the TLS and redirect listeners: in `tls`.)

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{spawn_app, spawn_app_with, WAIT};

/// Reads (and ignores what comes) until the server closes the connection,
/// by a FIN or a reset; how long after `since` that was.
pub async fn closed_by_server(stream: &mut (impl AsyncRead + Unpin), since: Instant) -> Duration {
    let mut buf = [0; 1024];
    loop {
        let read = tokio::time::timeout_at(since + WAIT, stream.read(&mut buf)).await;
        match read.expect("the server closes the connection in time") {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => continue,
        }
    }
}

/// Asserts that a deadline of `timeout` counted from `since` closed the
/// connection: not before it, and not long after.
pub async fn assert_dropped_after(
    stream: &mut (impl AsyncRead + Unpin),
    since: Instant,
    timeout: Duration,
    what: &str,
) {
    let closed = closed_by_server(stream, since).await;
    assert!(closed >= timeout && closed < timeout + Duration::from_secs(3), "{what}: closed after {closed:?}");
}

/// Sends `GET /healthz` on a kept-alive connection and reads the whole
/// answer; its status line.
async fn get_healthz(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: comms.test\r\n\r\n").await.unwrap();
    read_response(stream).await
}

/// Reads one response with a `Content-Length`; its status line.
async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut received = Vec::new();
    let mut buf = [0; 1024];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf)).await.expect("an answer in time").unwrap();
        assert!(read > 0, "the connection closed before an answer");
        received.extend_from_slice(&buf[..read]);
    };
    let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().parse().unwrap()))
        .expect("a Content-Length");
    let mut body = vec![0; head_end + length - received.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut body)).await.expect("the body in time").unwrap();
    head.lines().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_head_not_complete_in_time_is_dropped() {
    let timeout = Duration::from_secs(1);
    let app = spawn_app_with(|config| config.server.header_read_timeout = timeout).await;
    let addr = app.api().addr;
    let start = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: comms.test\r\n").await.unwrap();
    // A byte every 100 ms keeps the connection busy, but buys no time.
    let (mut trickle, mut trickle_writes) = TcpStream::connect(addr).await.unwrap().into_split();
    let trickling = tokio::spawn(async move {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: comms.test\r\nUser-Agent: slow\r\n" {
            if trickle_writes.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    assert_dropped_after(&mut silent, start, timeout, "a connection that sent nothing").await;
    assert_dropped_after(&mut half, start, timeout, "a connection that sent half a head").await;
    assert_dropped_after(&mut trickle, start, timeout, "a connection sending its head a byte at a time").await;
    trickling.abort();
    let mut whole = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_healthz(&mut whole).await, "HTTP/1.1 200 OK", "complete requests are still answered");
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_time_not_the_head_time() {
    let idle = Duration::from_secs(3);
    let app = spawn_app_with(|config| {
        config.server.header_read_timeout = Duration::from_secs(1);
        config.server.keep_alive_idle = idle;
    })
    .await;
    let mut stream = TcpStream::connect(app.api().addr).await.unwrap();
    assert_eq!(get_healthz(&mut stream).await, "HTTP/1.1 200 OK");
    // Longer than a head may take, shorter than the idle time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get_healthz(&mut stream).await, "HTTP/1.1 200 OK", "the same connection serves a second request");
    let answered = Instant::now();
    let closed = closed_by_server(&mut stream, answered).await;
    // The server's clock starts when the answer left, a moment before it was read here.
    assert!(closed >= idle - Duration::from_millis(500) && closed < idle + Duration::from_secs(3), "{closed:?}");
}

#[tokio::test]
async fn connections_past_the_bound_wait_until_one_closes() {
    let app = spawn_app_with(|config| config.server.max_connections = 5).await;
    let addr = app.api().addr;
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert_eq!(get_healthz(&mut stream).await, "HTTP/1.1 200 OK");
        held.push(stream);
    }

    // The sixth connects (the kernel queues it) but is not served while
    // five kept-alive connections are open.
    let mut sixth = TcpStream::connect(addr).await.unwrap();
    sixth.write_all(b"GET /healthz HTTP/1.1\r\nHost: comms.test\r\n\r\n").await.unwrap();
    let mut byte = [0; 1];
    let waited = tokio::time::timeout(Duration::from_secs(1), sixth.peek(&mut byte)).await;
    assert!(waited.is_err(), "a sixth connection was served past the bound of five");

    drop(held.remove(0));
    assert_eq!(read_response(&mut sixth).await, "HTTP/1.1 200 OK", "served once a connection closed");

    // The server recovers: with the others closed, new connections come
    // and go freely.
    drop(held);
    drop(sixth);
    for _ in 0..10 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert_eq!(get_healthz(&mut stream).await, "HTTP/1.1 200 OK");
    }
}

#[tokio::test]
async fn a_thousand_half_sent_requests_leave_healthz_answering() {
    // Both ends are in this process: two thousand descriptors, and more for
    // the tests running beside this one.
    let limit = rlimit::increase_nofile_limit(8192).expect("the open-file limit");
    assert!(limit >= 4096, "this test needs 4096 open files; the hard limit is {limit}");
    let app = spawn_app().await;
    let addr = app.api().addr;
    let mut half_sent = Vec::new();
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /heal").await.unwrap();
        half_sent.push(stream);
    }

    let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(2), client.get(format!("{}/healthz", app.api().base)).send())
        .await
        .expect("/healthz answers a new client within 2 s")
        .unwrap();
    assert_eq!(answer.status(), 200);
    let still_open = half_sent
        .iter()
        .filter(|stream| stream.try_read(&mut [0; 1]).is_err_and(|err| err.kind() == std::io::ErrorKind::WouldBlock))
        .count();
    assert_eq!(still_open, 1000, "the half-sent requests were still held open");
}

#[tokio::test]
async fn a_websocket_outlives_the_http_deadlines_and_leaves_the_bound() {
    let app = spawn_app_with(|config| {
        config.server.header_read_timeout = Duration::from_secs(1);
        config.server.keep_alive_idle = Duration::from_secs(1);
        config.server.max_connections = 2;
    })
    .await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let code = endpoint["code"].as_str().unwrap();
    // Three sockets through a bound of two: each takes a slot for its
    // handshake only.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut socket = app.api().connect_ws(code, None).await;
        assert_eq!(socket.next_json().await["type"], "welcome");
        sockets.push(socket);
    }

    // Quiet for longer than a head may take or a connection may idle.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sockets[0].send_message(serde_json::json!("still here")).await;
    for socket in &mut sockets {
        assert_eq!(socket.next_message().await["message"], "still here");
    }
    let mut stream = TcpStream::connect(app.api().addr).await.unwrap();
    assert_eq!(get_healthz(&mut stream).await, "HTTP/1.1 200 OK", "the sockets hold no slot");
}

#[tokio::test]
async fn shutdown_waits_for_a_half_sent_request_only_until_its_head_deadline() {
    let timeout = Duration::from_secs(1);
    let mut app = spawn_app_with(|config| config.server.header_read_timeout = timeout).await;
    let start = Instant::now();
    let mut half = TcpStream::connect(app.api().addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut silent = TcpStream::connect(app.api().addr).await.unwrap();
    // Accepted in order: once this one is answered, the two above are the
    // server's (not still in the kernel's queue), and the half request read.
    let mut kept_alive = TcpStream::connect(app.api().addr).await.unwrap();
    assert_eq!(get_healthz(&mut kept_alive).await, "HTTP/1.1 200 OK");

    let stopping = Instant::now();
    let (stopped, idle_closed, silent_closed, half_closed) = tokio::join!(
        async {
            app.stop().await;
            stopping.elapsed()
        },
        closed_by_server(&mut kept_alive, stopping),
        closed_by_server(&mut silent, stopping),
        closed_by_server(&mut half, start),
    );
    let at_once = Duration::from_millis(500);
    assert!(idle_closed < at_once, "a connection between requests closes at once: {idle_closed:?}");
    assert!(silent_closed < at_once, "a new connection that sent nothing closes at once: {silent_closed:?}");
    assert!(half_closed >= timeout, "a half-sent request may still be finished: {half_closed:?}");
    assert!(stopped < timeout + Duration::from_secs(3), "a half-sent request held the shutdown: {stopped:?}");
}
