//! Serving HTTP on the listeners (the main one, plain or TLS, and the
//! HTTP-to-HTTPS redirect): our own accept loop in place of `axum::serve`,
//! which has no time limit on a request head, no idle limit on a kept-alive
//! connection and no bound on open connections (SPEC, "Limits and
//! quotas": HTTP). The deadlines are in the `timeouts` submodule.
//!
//! **The bound.** Every listener takes one of the process's
//! `server.max_connections` slots before it accepts a connection; the
//! connection holds it until it closes or becomes a WebSocket (sockets live
//! for hours and are bounded by the open-file limit, not by this). With every
//! slot taken a listener stops accepting, and new connections wait in
//! the kernel's listen queue until a slot frees, then are served in order.
//! Accepting and closing them at once was the other way: it would spend an
//! accept and a file descriptor on every refused client just when none
//! are to spare, and turn a brief burst into errors instead of a short
//! wait. Half-sent requests free their slots at their head deadline, so
//! they cannot keep the slots for long.
//!
//! **Connections.** hyper's HTTP/1.1 (axum is built without HTTP/2 here, and
//! built-in TLS offers only `http/1.1`), with upgrades for WebSockets and
//! the peer's address as [`ConnectInfo`], as
//! `into_make_service_with_connect_info` gave it. A TLS handshake runs in
//! the connection's own task, holding its slot, and must finish before
//! the first request head is due. `TCP_NODELAY` stays off, as with
//! `axum::serve`.
//!
//! **Shutdown**, as `axum::serve`'s graceful one: stop accepting (the port
//! closes), tell every connection to close after the request it is on
//! (hyper closes at once one that is between requests or has sent
//! nothing), and return when all are gone. A request half sent is finished
//! or dropped at its head deadline (under `axum::serve` it held the shutdown
//! for as long as the client liked). WebSockets are no longer connections
//! here: `startup` closes them.

mod timeouts;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use comms_core::config::ServerConfig;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use self::timeouts::{Cycle, Observed, Timeouts};

/// A bound listener, speaking plain HTTP or HTTPS.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Listener {
    /// Plain HTTP on `tcp`.
    pub fn plain(tcp: TcpListener) -> Self {
        Self { tcp, tls: None }
    }

    /// HTTPS on `tcp`, with the handshakes of `acceptor`.
    pub fn tls(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        Self { tcp, tls: Some(acceptor) }
    }

    /// The address bound.
    ///
    /// # Errors
    ///
    /// The socket cannot tell (not in practice for a bound listener).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The bound on open HTTP connections and the deadlines, shared by every
/// listener of the process (cheap to clone).
#[derive(Clone)]
pub struct Connections {
    /// One permit per open connection; never closed.
    slots: Arc<Semaphore>,
    timeouts: Timeouts,
}

impl Connections {
    /// The `[server]` settings `header_read_timeout_secs`,
    /// `keep_alive_idle_secs` and `max_connections`.
    pub fn new(server: &ServerConfig) -> Self {
        let timeouts = Timeouts { header_read: server.header_read_timeout, keep_alive_idle: server.keep_alive_idle };
        Self { slots: Arc::new(Semaphore::new(server.max_connections as usize)), timeouts }
    }

    /// Serves `router` on `listener` until `shutdown` completes, then
    /// drains (see the module docs).
    pub async fn serve(&self, listener: Listener, router: Router, shutdown: impl Future<Output = ()>) {
        let Listener { tcp, tls } = listener;
        let serving = Arc::new(Serving {
            router,
            tls,
            timeouts: self.timeouts,
            http: http1_builder(),
            draining: CancellationToken::new(),
        });
        let open = TaskTracker::new();
        let mut shutdown = pin!(shutdown);
        loop {
            let (stream, peer, slot) = tokio::select! {
                accepted = self.accept(&tcp) => accepted,
                () = &mut shutdown => break,
            };
            let first_head_due = Instant::now() + self.timeouts.header_read;
            let serving = Arc::clone(&serving);
            open.spawn(async move {
                serving.connection(stream, peer, first_head_due).await;
                drop(slot);
            });
        }
        drop(tcp);
        serving.draining.cancel();
        open.close();
        open.wait().await;
    }

    /// The next connection, once a slot is free, with its slot. The slot
    /// is taken before the accept, so a listener waiting for a connection
    /// holds one: with the redirect listener too, one slot of the bound
    /// may sit reserved for it.
    async fn accept(&self, tcp: &TcpListener) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        let slot = Arc::clone(&self.slots).acquire_owned().await.expect("the slots are never closed");
        loop {
            match tcp.accept().await {
                Ok((stream, peer)) => {
                    // Every write is a whole batch of frames or an answer:
                    // Nagle's algorithm would only hold a small one back
                    // until the previous is acknowledged, up to the peer's
                    // delayed ACK (40 ms on Linux).
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(error = %err, "could not turn Nagle's algorithm off");
                    }
                    return (stream, peer, slot);
                }
                Err(err) => accept_failed(err).await,
            }
        }
    }
}

/// As `axum::serve` does: a connection that went away before it was
/// accepted is skipped; anything else (out of file descriptors: `EMFILE`,
/// `ENFILE`) is logged and tried again a second later, since only a
/// closing connection can end it.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    // Ours instead (see `timeouts`): hyper's would also close kept-alive
    // connections once they had waited as long as a head may take.
    builder.header_read_timeout(None);
    builder
}

/// What every connection of one listener shares.
struct Serving {
    router: Router,
    tls: Option<TlsAcceptor>,
    timeouts: Timeouts,
    http: http1::Builder,
    /// Cancelled when the listener stops: connections close after the
    /// request they are on.
    draining: CancellationToken,
}

impl Serving {
    async fn connection(&self, stream: TcpStream, peer: SocketAddr, first_head_due: Instant) {
        let cycle = Cycle::new(self.timeouts, first_head_due);
        let Some(tls) = &self.tls else { return self.http(stream, peer, cycle).await };
        // The handshake spends from the first request's time: a client
        // stalling in it is dropped when one stalling in its head would be.
        match tokio::time::timeout_at(first_head_due, tls.accept(stream)).await {
            Ok(Ok(stream)) => self.http(stream, peer, cycle).await,
            Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    async fn http<I>(&self, io: I, peer: SocketAddr, cycle: Arc<Cycle>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (router, requests) = (self.router.clone(), Arc::clone(&cycle));
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            requests.request_started();
            let (router, cycle) = (router.clone(), Arc::clone(&requests));
            async move {
                let response: Result<_, Infallible> = router.oneshot(request).await;
                response.map(|response| cycle.answered(response))
            }
        });
        let io = TokioIo::new(Observed::new(io, Arc::clone(&cycle)));
        let mut connection = pin!(self.http.serve_connection(io, service).with_upgrades());
        let ended = tokio::select! {
            ended = cycle.until_deadline(connection.as_mut()) => ended,
            () = self.draining.cancelled() => {
                connection.as_mut().graceful_shutdown();
                cycle.until_deadline(connection).await
            }
        };
        match ended {
            Some(Ok(())) => {}
            Some(Err(err)) => tracing::debug!(%peer, error = %err, "HTTP connection failed"),
            None => tracing::debug!(%peer, "HTTP connection dropped: the client took too long"),
        }
    }
}

/// Raises the process's soft open-file limit to its hard limit (every
/// connection and WebSocket is a file descriptor; shells often start
/// with a soft 1024 under a hard limit far above it), and warns when even
/// that is below `max_connections`: past it accepting fails, whatever the
/// bound says, until a connection closes.
pub fn raise_open_file_limit(max_connections: u32) {
    // The database pool, the listeners, log and site files.
    const OWN_FILES: u64 = 64;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < u64::from(max_connections) + OWN_FILES => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is below server.max_connections: raise it (LimitNOFILE in the systemd unit)"
        ),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        let connections = Connections::new(&ServerConfig::default());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (stream, ..) = tokio::time::timeout(Duration::from_secs(5), connections.accept(&tcp)).await.unwrap();
        assert!(stream.nodelay().unwrap(), "Nagle's algorithm is off");
        drop(client.await.unwrap());
    }
}
