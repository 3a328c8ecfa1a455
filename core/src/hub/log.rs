//! One room's queue: the frames its connections on this node have not all
//! read yet, in the order they were pushed, each stored once. Every
//! connection reads from its own cursor; a frame goes when the last
//! connection that had to pass it has.
//!
//! This replaces a bounded channel per connection: a push is one append
//! and a wake of the connections it is for, instead of one send per
//! connection, and an idle connection holds a cursor instead of a channel.
//!
//! Signals are kept apart from the other frames (messages, presence
//! changes, endpoint frames, redactions), each placed after the frames
//! pushed before it, so that the slow-consumer rules stay the channel's:
//! - a connection more than `queue_len` frames behind, signals not
//!   counted, is closed as too slow (1013) when a frame is pushed;
//! - a connection half a queue behind, in frames or in signals, drops the
//!   signals it has not read and skips new ones until it catches up: a
//!   flood of signals never costs anyone a message, and never holds more
//!   than half a queue of signals for anyone.
//!
//! Not thread-safe by itself: the hub keeps each room's log in a mutex.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rustc_hash::FxHashMap;

use crate::live_endpoint::LiveEndpoint;
use crate::message::Outgoing;

use super::CloseReason;

/// Who a frame other than a signal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    /// Every connection: messages, presence changes, redactions.
    All,
    /// The connections of one endpoint, by row id: its `endpoint` frame.
    Endpoint(i64),
}

impl Audience {
    fn includes(self, endpoint_id: i64) -> bool {
        match self {
            Self::All => true,
            Self::Endpoint(id) => id == endpoint_id,
        }
    }
}

/// A frame in the log.
struct Frame<For> {
    outgoing: Arc<Outgoing>,
    /// Who it is for.
    to: For,
    /// Connections that have yet to pass it.
    unread: u32,
}

/// Who a signal is for, and where it stands.
#[derive(Debug, Clone, Copy)]
struct SignalPlace {
    /// The sending connection, which does not get it back (`None` when it
    /// came from another node).
    from: Option<u64>,
    /// The position of the first frame pushed after it: it is read after
    /// the frames before that.
    before: u64,
}

/// Frames in push order, addressed by position: the first ever pushed is 0.
struct Queue<For> {
    frames: VecDeque<Frame<For>>,
    /// Position of `frames[0]`.
    first: u64,
}

impl<For> Queue<For> {
    fn new() -> Self {
        Self { frames: VecDeque::new(), first: 0 }
    }

    /// Position of the next frame pushed.
    fn head(&self) -> u64 {
        self.first + self.frames.len() as u64
    }

    fn get(&self, position: u64) -> Option<&Frame<For>> {
        self.frames.get(usize::try_from(position - self.first).ok()?)
    }

    /// The frame at `position`, counted as passed by one more connection.
    fn pass(&mut self, position: u64) -> &Frame<For> {
        let index = usize::try_from(position - self.first).expect("a position in the queue");
        let frame = &mut self.frames[index];
        frame.unread -= 1;
        frame
    }

    /// Appends a frame `unread` connections have to pass; one nobody has
    /// to pass only takes its position.
    fn push(&mut self, outgoing: &Arc<Outgoing>, to: For, unread: u32) {
        if unread == 0 {
            // Every connection was at the head and stepped over it, so
            // nothing is kept before it either.
            debug_assert!(self.frames.is_empty());
            self.first += 1;
        } else {
            self.frames.push_back(Frame { outgoing: Arc::clone(outgoing), to, unread });
        }
    }

    /// A connection at `cursor` will never pass the frames from there on.
    fn release(&mut self, cursor: u64) {
        let from = usize::try_from(cursor - self.first).expect("a position in the queue");
        for frame in self.frames.range_mut(from..) {
            frame.unread -= 1;
        }
        self.drop_read();
    }

    /// Drops the frames at the front that every connection has passed.
    fn drop_read(&mut self) {
        while self.frames.front().is_some_and(|frame| frame.unread == 0) {
            self.frames.pop_front();
            self.first += 1;
        }
    }
}

/// A connection of the room.
pub(super) struct Reader {
    /// Its endpoint, as the app last changed it.
    pub endpoint: Arc<LiveEndpoint>,
    /// Position of the next frame, not a signal, it reads.
    cursor: u64,
    /// Position of the next signal it reads.
    signal_cursor: u64,
    /// Set while it waits at the head for the next frame.
    waker: Option<Waker>,
}

impl Reader {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// What a connection reads next.
#[derive(Debug)]
pub enum Delivery {
    /// A frame for it: the shared bytes and where they stand.
    Frame(Outgoing),
    /// The hub closed it; it should close its socket with this reason.
    Closed(CloseReason),
}

/// What a push did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Pushed {
    /// Connections the frame is for.
    pub delivered: u64,
    /// Connections that skipped a signal, being half a queue behind.
    pub skipped: u64,
    /// Connections closed as too slow.
    pub too_slow: u64,
}

/// The room's connections on this node and the frames they have yet to read.
pub(super) struct RoomLog {
    readers: FxHashMap<u64, Reader>,
    /// Connections the hub closed that have not left yet, with why.
    closed: FxHashMap<u64, CloseReason>,
    frames: Queue<Audience>,
    signals: Queue<SignalPlace>,
    queue_len: usize,
}

impl RoomLog {
    /// An empty room whose connections may each be `queue_len` frames behind.
    pub fn new(queue_len: usize) -> Self {
        Self {
            readers: FxHashMap::default(),
            closed: FxHashMap::default(),
            frames: Queue::new(),
            signals: Queue::new(),
            queue_len,
        }
    }

    /// Adds a connection, which reads the frames pushed from now on.
    pub fn join(&mut self, member_id: u64, endpoint: Arc<LiveEndpoint>) {
        let reader = Reader { endpoint, cursor: self.frames.head(), signal_cursor: self.signals.head(), waker: None };
        self.readers.insert(member_id, reader);
    }

    /// Removes a connection for good; whether it was still open (not
    /// closed by the hub before).
    pub fn leave(&mut self, member_id: u64) -> bool {
        self.closed.remove(&member_id);
        match self.readers.remove(&member_id) {
            Some(reader) => {
                self.frames.release(reader.cursor);
                self.signals.release(reader.signal_cursor);
                true
            }
            None => false,
        }
    }

    /// Closes a connection with `reason`: it stops reading frames and is
    /// told why. Whether it was open.
    pub fn close(&mut self, member_id: u64, reason: CloseReason) -> bool {
        let Some(mut reader) = self.readers.remove(&member_id) else { return false };
        self.frames.release(reader.cursor);
        self.signals.release(reader.signal_cursor);
        self.closed.insert(member_id, reason);
        reader.wake();
        true
    }

    /// Closes every open connection `which` picks; how many it closed.
    pub fn close_where(&mut self, reason: CloseReason, which: impl Fn(&Reader) -> bool) -> u64 {
        let ids: Vec<u64> = self.readers.iter().filter(|(_, reader)| which(reader)).map(|(id, _)| *id).collect();
        ids.iter().filter(|id| self.close(**id, reason)).count() as u64
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.readers.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.readers.is_empty()
    }

    /// The open connections.
    pub fn readers(&self) -> impl Iterator<Item = &Reader> {
        self.readers.values()
    }

    /// Appends a frame other than a signal for `to` and wakes the
    /// connections it is for; closes those it leaves a queue behind.
    pub fn push(&mut self, outgoing: &Arc<Outgoing>, to: Audience) -> Pushed {
        let position = self.frames.head();
        let mut pushed = Pushed::default();
        let mut unread = 0u32;
        for reader in self.readers.values_mut() {
            let wanted = to.includes(reader.endpoint.id);
            if !wanted && reader.cursor == position {
                // Nothing before it to read: it steps over at once.
                reader.cursor += 1;
                continue;
            }
            unread += 1;
            if wanted {
                pushed.delivered += 1;
                reader.wake();
            }
        }
        self.frames.push(outgoing, to, unread);
        pushed.too_slow = self.close_too_slow();
        pushed.delivered = pushed.delivered.saturating_sub(pushed.too_slow);
        pushed
    }

    /// Closes the connections more than a queue of frames behind.
    fn close_too_slow(&mut self) -> u64 {
        let queue_len = self.queue_len as u64;
        let head = self.frames.head();
        if head - self.frames.first <= queue_len {
            return 0;
        }
        let slow: Vec<u64> =
            self.readers.iter().filter(|(_, reader)| head - reader.cursor > queue_len).map(|(id, _)| *id).collect();
        slow.iter().filter(|id| self.close(**id, CloseReason::SlowConsumer)).count() as u64
    }

    /// Appends a signal for every connection but `from` and wakes them,
    /// except those half a queue behind, which drop the signals they have
    /// not read and skip this one.
    pub fn push_signal(&mut self, outgoing: &Arc<Outgoing>, from: Option<u64>) -> Pushed {
        let position = self.signals.head();
        let head = self.frames.head();
        let far_behind = (self.queue_len - self.queue_len / 2) as u64;
        let mut pushed = Pushed::default();
        let mut unread = 0u32;
        let mut dropping = Vec::new();
        for (id, reader) in &mut self.readers {
            let wanted = from != Some(*id);
            if !wanted && reader.signal_cursor == position {
                reader.signal_cursor += 1;
                continue;
            }
            if head - reader.cursor >= far_behind || position - reader.signal_cursor >= far_behind {
                dropping.push(reader.signal_cursor);
                reader.signal_cursor = position + 1;
                pushed.skipped += u64::from(wanted);
                continue;
            }
            unread += 1;
            if wanted {
                pushed.delivered += 1;
                reader.wake();
            }
        }
        for cursor in dropping {
            self.signals.release(cursor);
        }
        self.signals.push(outgoing, SignalPlace { from, before: head }, unread);
        pushed
    }

    /// The connection's next frame, if one is there: the frames it is not
    /// meant to see are passed over. `Closed` once the hub closed it.
    pub fn read(&mut self, member_id: u64) -> Option<Delivery> {
        let Some(reader) = self.readers.get_mut(&member_id) else {
            return Some(Delivery::Closed(self.closed.get(&member_id).copied().unwrap_or(CloseReason::ShuttingDown)));
        };
        let mut delivery = None;
        while delivery.is_none() {
            let signal_due =
                self.signals.get(reader.signal_cursor).is_some_and(|signal| signal.to.before <= reader.cursor);
            let passed = if signal_due {
                let signal = self.signals.pass(reader.signal_cursor);
                reader.signal_cursor += 1;
                (signal.to.from != Some(member_id)).then_some(&signal.outgoing)
            } else if reader.cursor < self.frames.head() {
                let frame = self.frames.pass(reader.cursor);
                reader.cursor += 1;
                frame.to.includes(reader.endpoint.id).then_some(&frame.outgoing)
            } else {
                break;
            };
            delivery = passed
                .map(|outgoing| Delivery::Frame(Outgoing { frame: outgoing.frame.clone(), order: outgoing.order }));
        }
        self.frames.drop_read();
        self.signals.drop_read();
        delivery
    }

    /// Like [`RoomLog::read`], but waits: with nothing to read, the
    /// connection's task is woken by the next push for it or its closing.
    pub fn poll_read(&mut self, member_id: u64, cx: &mut Context<'_>) -> Poll<Delivery> {
        if let Some(delivery) = self.read(member_id) {
            return Poll::Ready(delivery);
        }
        if let Some(reader) = self.readers.get_mut(&member_id) {
            reader.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Whether the hub closed the connection, and why.
    pub fn closed(&self, member_id: u64) -> Option<CloseReason> {
        self.closed.get(&member_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use comms_protocol::ws::ServerFrame;
    use comms_protocol::ErrorCode;

    use super::*;
    use crate::message::Order;

    const QUEUE: usize = 8;

    fn endpoint(id: i64) -> Arc<LiveEndpoint> {
        Arc::new(LiveEndpoint::for_test(1, id))
    }

    /// A frame whose text is `text`, easy to tell apart when read back.
    fn outgoing(text: &str, order: Order) -> Arc<Outgoing> {
        Arc::new(Outgoing::new(
            &ServerFrame::Error { code: ErrorCode::Invalid, message: text.to_owned(), nonce: None },
            order,
        ))
    }

    fn frame(seq: u64) -> Arc<Outgoing> {
        outgoing(&seq.to_string(), Order::Seq(seq))
    }

    fn signal(n: u64) -> Arc<Outgoing> {
        outgoing(&format!("s{n}"), Order::Ephemeral)
    }

    /// Every frame the member can read now, by its text.
    fn drain(log: &mut RoomLog, member: u64) -> Vec<String> {
        let mut read = Vec::new();
        while let Some(delivery) = log.read(member) {
            match delivery {
                Delivery::Frame(outgoing) => {
                    let value: serde_json::Value = serde_json::from_slice(&outgoing.frame).unwrap();
                    read.push(value["message"].as_str().unwrap().to_owned());
                }
                Delivery::Closed(reason) => {
                    read.push(format!("closed: {}", reason.text()));
                    break;
                }
            }
        }
        read
    }

    fn texts(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    fn is_empty(log: &RoomLog) -> bool {
        log.frames.frames.is_empty() && log.signals.frames.is_empty()
    }

    #[test]
    fn each_connection_reads_every_frame_from_its_join_in_order_and_read_frames_are_dropped() {
        let mut log = RoomLog::new(QUEUE);
        log.join(1, endpoint(10));
        log.push(&frame(1), Audience::All);
        log.join(2, endpoint(20));
        log.push(&frame(2), Audience::All);
        log.push_signal(&signal(1), None);
        log.push(&frame(3), Audience::All);
        assert_eq!(drain(&mut log, 2), texts(&["2", "s1", "3"]));
        assert_eq!(log.frames.frames.len(), 3, "member 1 has read nothing yet");
        assert_eq!(drain(&mut log, 1), texts(&["1", "2", "s1", "3"]));
        assert!(is_empty(&log));
        assert_eq!((log.frames.head(), log.signals.head()), (3, 1));
    }

    #[test]
    fn endpoint_frames_and_signals_reach_only_their_audience() {
        let mut log = RoomLog::new(QUEUE);
        log.join(1, endpoint(10));
        log.join(2, endpoint(20));
        log.push(&frame(1), Audience::Endpoint(20));
        log.push_signal(&signal(1), Some(2));
        log.push(&frame(2), Audience::All);
        assert_eq!(drain(&mut log, 1), texts(&["s1", "2"]));
        assert_eq!(drain(&mut log, 2), texts(&["1", "2"]));
        assert!(is_empty(&log));
    }

    #[test]
    fn a_frame_no_connection_has_to_pass_is_not_kept() {
        let mut log = RoomLog::new(QUEUE);
        log.join(1, endpoint(10));
        assert_eq!(log.push_signal(&signal(1), Some(1)), Pushed::default());
        assert_eq!(log.push(&frame(1), Audience::Endpoint(20)), Pushed::default());
        assert!(is_empty(&log));
        log.push(&frame(2), Audience::All);
        assert_eq!(drain(&mut log, 1), texts(&["2"]));
    }

    #[test]
    fn a_connection_more_than_a_queue_behind_is_closed_and_its_frames_released() {
        let mut log = RoomLog::new(QUEUE);
        log.join(1, endpoint(10));
        log.join(2, endpoint(20));
        for seq in 1..=QUEUE as u64 {
            assert_eq!(log.push(&frame(seq), Audience::All).too_slow, 0);
            drain(&mut log, 2);
        }
        let pushed = log.push(&frame(9), Audience::All);
        assert_eq!(pushed, Pushed { delivered: 1, skipped: 0, too_slow: 1 });
        assert_eq!(drain(&mut log, 1), texts(&["closed: too slow: queue full, resume with after_seq"]));
        assert_eq!(drain(&mut log, 2), texts(&["9"]));
        assert!(is_empty(&log), "the closed connection's frames went with it");
        assert_eq!(log.len(), 1);
        assert!(log.leave(2));
        assert!(!log.leave(1), "it was closed already");
        assert!(log.closed.is_empty());
    }

    #[test]
    fn half_a_queue_behind_a_connection_drops_its_signals_and_a_flood_never_closes_it() {
        let mut log = RoomLog::new(QUEUE);
        log.join(1, endpoint(10));
        log.join(2, endpoint(20));
        log.push_signal(&signal(1), None);
        for seq in 1..=QUEUE as u64 / 2 {
            log.push(&frame(seq), Audience::All);
        }
        let pushed = log.push_signal(&signal(2), None);
        assert_eq!(pushed, Pushed { delivered: 0, skipped: 2, too_slow: 0 });
        assert_eq!(log.signals.frames.len(), 0, "nobody holds signal 1 any more");
        drain(&mut log, 2);
        for n in 3..1000 {
            assert_eq!(log.push_signal(&signal(n), None).too_slow, 0);
            drain(&mut log, 2);
        }
        assert_eq!(drain(&mut log, 1), texts(&["1", "2", "3", "4"]));
        assert!(is_empty(&log));
        log.push_signal(&signal(1000), None);
        assert_eq!(drain(&mut log, 1), texts(&["s1000"]), "caught up, it gets signals again");
    }

    #[test]
    fn signals_alone_keep_at_most_half_a_queue_for_a_connection_that_does_not_read() {
        let mut log = RoomLog::new(QUEUE);
        log.join(1, endpoint(10));
        let mut skipped = 0;
        for n in 0..100 {
            skipped += log.push_signal(&signal(n), None).skipped;
            assert!(log.signals.frames.len() <= QUEUE / 2);
        }
        assert!(skipped > 0);
        assert_eq!(log.len(), 1, "still open");
    }

    #[test]
    fn a_waiting_connection_is_woken_by_a_frame_for_it_or_its_closing() {
        let mut log = RoomLog::new(QUEUE);
        log.join(1, endpoint(10));
        log.join(2, endpoint(20));
        let (waker, woken) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(log.poll_read(1, &mut cx).is_pending());
        log.push(&frame(1), Audience::Endpoint(20));
        log.push_signal(&signal(1), Some(1));
        assert_eq!(woken.load(Ordering::SeqCst), 0, "neither is for it");
        log.push(&frame(2), Audience::All);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert_eq!(drain(&mut log, 1), texts(&["2"]));
        assert!(log.poll_read(1, &mut cx).is_pending());
        assert!(log.close(1, CloseReason::EndpointDeleted));
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        assert_eq!(log.closed(1), Some(CloseReason::EndpointDeleted));
        assert!(matches!(log.poll_read(1, &mut cx), Poll::Ready(Delivery::Closed(CloseReason::EndpointDeleted))));
    }

    fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
        struct Count(Arc<AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let woken = Arc::new(AtomicUsize::new(0));
        (Waker::from(Arc::new(Count(Arc::clone(&woken)))), woken)
    }
}
