//! The outlet: a connection's one way out. It holds the connection's bounded outbound
//! queue (an [`Outbox`] under the [`SlowConsumerPolicy`](crate::SlowConsumerPolicy) of
//! its [`Limits`]), and what the connection owes its client besides frames: a heartbeat, a
//! close with its code. It also keeps the time the client was last heard of.
//!
//! Three parties share it on the connection's thread, by plain calls:
//!
//! - the [`Connection`](crate::Connection), which writes its answers, asks for
//!   heartbeats and closes;
//! - its thread's [`ChannelRegistry`](crate::ChannelRegistry), which writes channel
//!   messages straight into it: fan-out is the hot path, and a message per subscriber
//!   through the connection's mailbox (a boxed envelope, a wake and a poll each) cost
//!   about as much as everything else together. Subscribing and unsubscribing are plain
//!   calls into the registry on the same thread, so once a connection has left a channel
//!   (and written `unsubscribed`), no frame of that channel can reach its outlet;
//! - the transport's writer (a WebSocket's response body, a SockJS session), which
//!   [drains](Outlet::drain) it when woken, frames what it takes in its own format
//!   (raw jii frames, SockJS `a[…]`, …) and writes it.
//!
//! So a transport only frames and writes: the queue, its bound, the slow-consumer policy,
//! heartbeats and the close are the connection's, the same over every transport.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Waker;
use tokio::time::Instant;

use bytestring::ByteString;

use crate::codes::CloseCode;
use crate::config::Limits;
use crate::connections::outbox::Outbox;
use crate::transport::TransportError;

/// One thing a transport's writer takes out of an [`Outlet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A heartbeat is due (a WebSocket ping, a SockJS `h` frame, …).
    Heartbeat,
    /// A frame for the client, in order.
    Frame(ByteString),
    /// Close with this code: nothing follows.
    Close(CloseCode),
}

/// What a [`drain`](Outlet::drain) left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing waits now; the waker given to [`Outlet::wait`] is woken when something does.
    Idle,
    /// The byte budget ran out before the queue did: drain again.
    More,
    /// The close went out: the outlet is finished.
    Closed,
}

struct State {
    outbox: Outbox,
    heartbeat: bool,
    closing: Option<CloseCode>,
    /// The transport is gone, or the close went out: later writes fail with `Closed`.
    finished: bool,
    waker: Option<Waker>,
}

struct Shared {
    state: RefCell<State>,
    last_seen: Cell<Instant>,
    /// The transport answers for its client's liveness itself (a SockJS session over
    /// HTTP, which reaps a client that stops coming): no idle timeout.
    vouched: Cell<bool>,
    /// Told once when the outlet closes itself for a slow consumer.
    on_overflow: Cell<Option<Box<dyn FnOnce()>>>,
}

/// A connection's way out; see the module docs. Cheap to clone; not `Send` (it stays on
/// its connection's thread).
///
/// ```
/// use comet_actors::{Limits, Out, Outlet, Drained};
///
/// let outlet = Outlet::new(&Limits::default());
/// outlet.send("channel chat hi".into()).unwrap();
/// outlet.heartbeat();
/// let mut taken = Vec::new();
/// assert_eq!(outlet.drain(64 * 1024, |out| taken.push(out)), Drained::Idle);
/// assert_eq!(taken, [Out::Heartbeat, Out::Frame("channel chat hi".into())]);
/// ```
#[derive(Clone)]
pub struct Outlet(Rc<Shared>);

impl Outlet {
    /// An outlet bounded by `limits` (`outbound_queue`, `outbound_queue_bytes`,
    /// `slow_consumer`).
    pub fn new(limits: &Limits) -> Outlet {
        Outlet::with_outbox(Outbox::new(limits))
    }

    /// An outlet around a given outbox.
    pub fn with_outbox(outbox: Outbox) -> Outlet {
        Outlet(Rc::new(Shared {
            state: RefCell::new(State {
                outbox,
                heartbeat: false,
                closing: None,
                finished: false,
                waker: None,
            }),
            last_seen: Cell::new(Instant::now()),
            vouched: Cell::new(false),
            on_overflow: Cell::new(None),
        }))
    }

    /// A key for this outlet, unique among live outlets.
    pub fn key(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }

    fn wake(state: &mut State) {
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// Queues a frame for the client. A client too slow to take it meets the
    /// slow-consumer policy: under `Close` the outlet closes itself with 4001 (what was
    /// queued is dropped; the close goes next) and this answers
    /// [`TransportError::Full`]; under `DropOldest` the oldest frames make room.
    /// [`TransportError::Closed`] once the outlet is closing or finished.
    pub fn send(&self, frame: ByteString) -> Result<(), TransportError> {
        {
            let mut state = self.0.state.borrow_mut();
            if state.finished || state.closing.is_some() {
                return Err(TransportError::Closed);
            }
            match state.outbox.push(frame) {
                Ok(()) => {
                    Outlet::wake(&mut state);
                    return Ok(());
                }
                Err(_) => {
                    state.outbox.clear();
                    crate::metrics::METRICS
                        .connections_closed
                        .with_label_values(&["4001"])
                        .inc();
                    state.closing = Some(CloseCode::SlowConsumer);
                    Outlet::wake(&mut state);
                }
            }
        }
        if let Some(told) = self.0.on_overflow.take() {
            told();
        }
        Err(TransportError::Full)
    }

    /// Has `told` called once the outlet closes itself for a slow consumer (the
    /// connection stops then, releasing its subscriptions at once, whether or not its
    /// transport gets the close out soon).
    pub fn on_overflow(&self, told: impl FnOnce() + 'static) {
        self.0.on_overflow.set(Some(Box::new(told)));
    }

    /// Asks the transport for a heartbeat (dropped if the outlet is closing).
    pub fn heartbeat(&self) {
        let mut state = self.0.state.borrow_mut();
        if state.closing.is_none() && !state.finished {
            state.heartbeat = true;
            Outlet::wake(&mut state);
        }
    }

    /// Closes with `code` once what is queued went out (a slow consumer's queue is
    /// dropped: it gets the close next). Later sends fail with `Closed`; a second close
    /// changes nothing.
    pub fn close(&self, code: CloseCode) {
        let mut state = self.0.state.borrow_mut();
        if state.closing.is_some() || state.finished {
            return;
        }
        if code == CloseCode::SlowConsumer {
            state.outbox.clear();
        }
        crate::metrics::METRICS
            .connections_closed
            .with_label_values(&[&code.code().to_string()])
            .inc();
        state.closing = Some(code);
        Outlet::wake(&mut state);
    }

    /// The code the outlet is closing (or closed) with, if it is.
    pub fn closing(&self) -> Option<CloseCode> {
        self.0.state.borrow().closing
    }

    /// Whether the outlet takes no more frames (closing, or its transport is gone).
    pub fn is_closed(&self) -> bool {
        let state = self.0.state.borrow();
        state.finished || state.closing.is_some()
    }

    /// For the transport's writer: hands `take` what is owed, in order (a heartbeat,
    /// then frames up to about `budget` bytes, then the close once nothing is queued),
    /// and says what is left. After [`Drained::Closed`] the outlet is finished.
    pub fn drain(&self, budget: usize, mut take: impl FnMut(Out)) -> Drained {
        let mut state = self.0.state.borrow_mut();
        if state.finished {
            return Drained::Closed;
        }
        if std::mem::take(&mut state.heartbeat) {
            take(Out::Heartbeat);
        }
        let mut bytes = 0;
        while bytes < budget {
            let Some(frame) = state.outbox.pop() else {
                break;
            };
            bytes += frame.len();
            take(Out::Frame(frame));
        }
        if !state.outbox.is_empty() {
            return Drained::More;
        }
        // Nothing is queued (no frame, no notice owed): give back the queue's allocation,
        // so that an idle connection holds none (~128 bytes each once it got a frame).
        // The next frame allocates it again, once per batch, not per frame.
        state.outbox.clear();
        match state.closing {
            Some(code) => {
                state.finished = true;
                state.waker = None;
                take(Out::Close(code));
                Drained::Closed
            }
            None => Drained::Idle,
        }
    }

    /// Whether a [`drain`](Self::drain) would take anything now.
    pub fn has_output(&self) -> bool {
        let state = self.0.state.borrow();
        !state.finished && (state.heartbeat || !state.outbox.is_empty() || state.closing.is_some())
    }

    /// For the transport's writer: `waker` is woken when something is queued, a
    /// heartbeat is asked for, or the outlet closes.
    pub fn wait(&self, waker: &Waker) {
        let mut state = self.0.state.borrow_mut();
        if !state
            .waker
            .as_ref()
            .is_some_and(|current| current.will_wake(waker))
        {
            state.waker = Some(waker.clone());
        }
    }

    /// Resolves once the outlet has something for its writer (a frame, a heartbeat, the
    /// close) or is finished: for writers that are not themselves polled streams (the
    /// HTTP sessions), which then drain it.
    pub fn ready(&self) -> impl std::future::Future<Output = ()> + 'static {
        let outlet = self.clone();
        std::future::poll_fn(move |cx| {
            if outlet.has_output() || outlet.is_finished() {
                std::task::Poll::Ready(())
            } else {
                outlet.wait(cx.waker());
                std::task::Poll::Pending
            }
        })
    }

    /// For the transport: it is gone (the client left). Queued frames are dropped and
    /// later sends fail with `Closed`.
    pub fn finish(&self) {
        if let Ok(mut state) = self.0.state.try_borrow_mut() {
            state.finished = true;
            state.outbox.clear();
            state.waker = None;
        }
    }

    /// Whether the transport is gone or the close went out.
    pub fn is_finished(&self) -> bool {
        self.0.state.borrow().finished
    }

    /// The client showed it is alive (a frame, a pong, a poll).
    pub fn touch(&self) {
        self.0.last_seen.set(Instant::now());
    }

    /// When the client was last heard of (tokio's clock, so that tests can pause it).
    pub fn last_seen(&self) -> Instant {
        self.0.last_seen.get()
    }

    /// The transport answers for its client's liveness itself, so the connection's idle
    /// timeout does not apply (a SockJS session over HTTP reaps a client that stops
    /// polling after its `disconnect_delay`).
    pub fn vouch(&self) {
        self.0.vouched.set(true);
    }

    /// Whether the transport vouches for its client (see [`vouch`](Self::vouch)).
    pub fn is_vouched(&self) -> bool {
        self.0.vouched.get()
    }

    /// Frames queued now, and their bytes.
    pub fn queued(&self) -> (usize, usize) {
        let state = self.0.state.borrow();
        (state.outbox.len(), state.outbox.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SlowConsumerPolicy;

    fn drained(outlet: &Outlet) -> (Vec<Out>, Drained) {
        let mut out = Vec::new();
        let end = outlet.drain(usize::MAX, |o| out.push(o));
        (out, end)
    }

    #[test]
    fn frames_then_close_in_order() {
        let outlet = Outlet::new(&Limits::default());
        outlet.send("a".into()).unwrap();
        outlet.send("b".into()).unwrap();
        outlet.close(CloseCode::GoingAway);
        assert_eq!(outlet.send("c".into()), Err(TransportError::Closed));
        let (out, end) = drained(&outlet);
        assert_eq!(
            out,
            [
                Out::Frame("a".into()),
                Out::Frame("b".into()),
                Out::Close(CloseCode::GoingAway)
            ]
        );
        assert_eq!(end, Drained::Closed);
        assert!(outlet.is_finished());
    }

    #[test]
    fn a_slow_consumer_is_closed_with_4001_and_its_queue_dropped() {
        let outlet = Outlet::with_outbox(Outbox::with_bounds(
            2,
            usize::MAX,
            SlowConsumerPolicy::Close,
        ));
        outlet.send("a".into()).unwrap();
        outlet.send("b".into()).unwrap();
        assert_eq!(outlet.send("c".into()), Err(TransportError::Full));
        assert_eq!(outlet.closing(), Some(CloseCode::SlowConsumer));
        let (out, _) = drained(&outlet);
        assert_eq!(out, [Out::Close(CloseCode::SlowConsumer)]);
    }

    #[test]
    fn the_budget_splits_a_burst() {
        let outlet = Outlet::new(&Limits::default());
        for _ in 0..4 {
            outlet.send("12345".into()).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(outlet.drain(10, |o| out.push(o)), Drained::More);
        assert_eq!(out.len(), 2);
        assert_eq!(outlet.drain(10, |o| out.push(o)), Drained::Idle);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn a_finished_outlet_refuses_frames() {
        let outlet = Outlet::new(&Limits::default());
        outlet.send("a".into()).unwrap();
        outlet.finish();
        assert_eq!(outlet.send("b".into()), Err(TransportError::Closed));
        assert!(!outlet.has_output());
    }
}
