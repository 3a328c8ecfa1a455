//! A connection's deadlines: how long a request head may take to arrive, and
//! how long a kept-alive connection may wait for its next request.
//!
//! hyper 1 has one timer for HTTP/1, `header_read_timeout`, and it runs
//! whenever hyper waits for a request head: on a new connection, and again
//! as soon as a response is sent on a kept-alive one (hyper 1.12,
//! `proto/h1/conn.rs`: `State::idle` sets `notify_read`, and the next
//! `poll_read_head` arms the timer). With it alone a connection could wait
//! between requests no longer than a head may take to arrive (10 s), and
//! nginx, which keeps idle upstream connections for 60 s, would now and
//! then send a request on a connection comms was just closing: a `502`. So
//! hyper's timer is off, and [`Cycle`] follows each connection through its
//! requests:
//!
//! - accepted: the first request's head is due `header_read_timeout` after
//!   the accept (a TLS handshake spends from that same time);
//! - a request is being answered: no deadline (a slow handler is not the
//!   client's doing);
//! - its response sent (hyper drops a body once it has written the last of
//!   it): the next request must begin within `keep_alive_idle`;
//! - a byte of it arrived: its head is due `header_read_timeout` later,
//!   however slowly the rest trickles in.
//!
//! A connection that switches protocols (a WebSocket) leaves the cycle: hyper's
//! connection future ends when it hands the socket over, and with it the timer.
//!
//! [`Cycle::until_deadline`] drives the connection and drops it when the
//! deadline passes. The timer belongs to the connection's task, not to its
//! IO: without a header timer of its own, hyper does not read again after
//! a response until the socket turns readable, so an IO would never see an
//! idle deadline pass. Every move of the cycle happens inside a poll of the
//! connection (its reads, its handler, its response body), so re-arming
//! the timer after each poll keeps it on the current deadline.
//!
//! Bytes that arrive while a request is being answered (a pipelined next
//! request) start no head deadline: if they are half a head, the connection
//! keeps it for `keep_alive_idle` rather than `header_read_timeout`. Still
//! bounded, and only for a client that completed a request first.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The two times `[server]` configures.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// `header_read_timeout_secs`.
    pub(super) header_read: Duration,
    /// `keep_alive_idle_secs`.
    pub(super) keep_alive_idle: Duration,
}

/// Where one connection is in its requests. Shared by its IO
/// ([`Observed`]), its service and its response bodies ([`SentBody`]),
/// which the connection's own task polls: the lock is never contended.
pub(super) struct Cycle {
    timeouts: Timeouts,
    phase: Mutex<Phase>,
}

enum Phase {
    /// No byte of a request yet: the connection is dropped at `deadline`.
    /// On a new connection (`first`) that is also when the head is due;
    /// after a response, a head gets its own time from its first byte.
    Waiting { deadline: Instant, first: bool },
    /// A request head is arriving; it must be complete by `deadline`.
    Head { deadline: Instant },
    /// A request is being answered.
    Answering,
}

impl Cycle {
    /// A connection just accepted, whose first request head is due at
    /// `first_head_due`.
    pub(super) fn new(timeouts: Timeouts, first_head_due: Instant) -> Arc<Self> {
        let phase = Phase::Waiting { deadline: first_head_due, first: true };
        Arc::new(Self { timeouts, phase: Mutex::new(phase) })
    }

    /// Polls `connection` to its end, or drops it (`None`) once the
    /// deadline passes.
    pub(super) async fn until_deadline<F: Future>(&self, mut connection: Pin<&mut F>) -> Option<F::Output> {
        let mut timer = pin!(tokio::time::sleep_until(Instant::now()));
        poll_fn(|cx| {
            if let Poll::Ready(ended) = connection.as_mut().poll(cx) {
                return Poll::Ready(Some(ended));
            }
            let Some(deadline) = self.deadline() else { return Poll::Pending };
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await
    }

    /// When the connection is dropped if it stays where it is.
    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock() {
            Phase::Waiting { deadline, .. } | Phase::Head { deadline } => Some(deadline),
            Phase::Answering => None,
        }
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock();
        if let Phase::Waiting { deadline, first } = *phase {
            let deadline = if first { deadline } else { Instant::now() + self.timeouts.header_read };
            *phase = Phase::Head { deadline };
        }
    }

    /// A request's head is complete and its handler is called.
    pub(super) fn request_started(&self) {
        *self.phase.lock() = Phase::Answering;
    }

    /// The response to send, whose body tells this cycle when it has been
    /// sent.
    pub(super) fn answered(self: &Arc<Self>, response: Response) -> Response<SentBody> {
        response.map(|body| SentBody { body, cycle: Arc::clone(self) })
    }

    fn response_sent(&self) {
        let mut phase = self.phase.lock();
        if matches!(*phase, Phase::Answering) {
            *phase = Phase::Waiting { deadline: Instant::now() + self.timeouts.keep_alive_idle, first: false };
        }
    }
}

/// A connection's IO, telling its [`Cycle`] when bytes arrive.
pub(super) struct Observed<I> {
    io: I,
    cycle: Arc<Cycle>,
}

impl<I> Observed<I> {
    pub(super) fn new(io: I, cycle: Arc<Cycle>) -> Self {
        Self { io, cycle }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Observed<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.cycle.bytes_arrived();
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Observed<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A response body that tells its connection's [`Cycle`] when it has been
/// sent: hyper drops a body as soon as it has written its last frame.
pub(super) struct SentBody {
    body: Body,
    cycle: Arc<Cycle>,
}

impl HttpBody for SentBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for SentBody {
    fn drop(&mut self) {
        self.cycle.response_sent();
    }
}
