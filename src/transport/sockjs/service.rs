//! The application behind a SockJS endpoint: what a session's messages go to, and how
//! the application writes back.
//!
//! A [`SockJsService`] opens a [`SessionHandler`] for each new session and hands it a
//! [`SessionSink`] to write with. Comet's own service ([`ConnectionService`](super::ConnectionService))
//! starts a comet `Connection` per session; the protocol test server's echo service just
//! writes every message back. Both are a few lines, because the session does the
//! protocol.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::{CloseCode, SlowConsumerPolicy, Transport, TransportError};

use super::session::{CloseSession, Push, Session};

/// Opens the application side of each new session. Shared by every worker thread.
///
/// A closure `Fn(SessionSink, &HttpRequest) -> Box<dyn SessionHandler>` is a service.
pub trait SockJsService: Send + Sync + 'static {
    /// A session opened. `sink` writes to its client; `request` is the HTTP request that
    /// opened it (peer address, headers, query). Called on the thread that will run the
    /// session, so the handler may start actors there.
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn SessionHandler>;

    /// How often each session should call [`SessionHandler::touch`] at least, for an
    /// application with an idle timeout of its own. Sessions touch on every heartbeat
    /// anyway; a shorter interval adds a timer. Default: none.
    fn touch_interval(&self) -> Option<Duration> {
        None
    }
}

impl<F> SockJsService for F
where
    F: Fn(SessionSink, &HttpRequest) -> Box<dyn SessionHandler> + Send + Sync + 'static,
{
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn SessionHandler> {
        self(sink, request)
    }
}

/// The application side of one session; lives in the session actor.
pub trait SessionHandler: 'static {
    /// A message from the client.
    fn message(&mut self, message: ByteString);

    /// The client is alive though it may send nothing: the session vouches for it (it
    /// reaps itself after `disconnect_delay` without a receiving request). Called when a
    /// receiving request arrives, every heartbeat, and every
    /// [`SockJsService::touch_interval`].
    fn touch(&mut self) {}

    /// The session is over (the client left, it was reaped, or the application closed
    /// it); called once, after which no message comes.
    fn closed(&mut self) {}
}

/// Messages on their way from a [`SessionSink`] to its session (in the session's
/// mailbox), and those dropped on the way.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// Pushes sent and not yet handled by the session.
    pub(crate) messages: AtomicUsize,
    /// Pushes dropped because too many were on their way (drop-oldest policy only).
    pub(crate) dropped: AtomicU64,
}

/// Writes to one session's client. Cheap to clone; every method returns at once.
///
/// Messages wait in the session until a receiving connection takes them, at most
/// `max_queued_messages` (and `max_queued_bytes`). Beyond that the session applies its
/// `slow_consumer` policy: under `Close` it closes with `c[4001,"Slow consumer"]` (and
/// [`SessionSink::send`] fails with [`TransportError::Full`] once that many are on their
/// way), under `DropOldest` it drops the oldest and tells the client. Either way a client
/// that stopped reading cannot grow memory.
#[derive(Clone)]
pub struct SessionSink {
    session: Addr<Session>,
    in_flight: Arc<InFlight>,
    capacity: usize,
    policy: SlowConsumerPolicy,
    transport: &'static str,
}

impl SessionSink {
    pub(crate) fn new(
        session: Addr<Session>,
        in_flight: Arc<InFlight>,
        capacity: usize,
        policy: SlowConsumerPolicy,
        transport: &'static str,
    ) -> SessionSink {
        SessionSink {
            session,
            in_flight,
            capacity,
            policy,
            transport,
        }
    }

    /// Queues a message for the client.
    pub fn send(&self, message: impl Into<ByteString>) -> Result<(), TransportError> {
        if !self.session.connected() {
            return Err(TransportError::Closed);
        }
        // The session takes its mailbox as fast as it runs; this bounds what may wait
        // there meanwhile (its own buffer is bounded by the session).
        let on_the_way = self.in_flight.messages.fetch_add(1, Ordering::Relaxed);
        if on_the_way >= self.capacity {
            self.in_flight.messages.fetch_sub(1, Ordering::Relaxed);
            return match self.policy {
                SlowConsumerPolicy::Close => Err(TransportError::Full),
                SlowConsumerPolicy::DropOldest => {
                    self.in_flight.dropped.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            };
        }
        self.session.do_send(Push(message.into()));
        Ok(())
    }

    /// Closes the session: the client gets `c[code,"reason"]` (a raw WebSocket a close
    /// frame with the code), after the messages queued before.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        self.session.do_send(CloseSession {
            code,
            reason: reason.into(),
        });
    }

    /// The transport the client chose: `xhr-streaming`, `xhr-polling`, `eventsource`,
    /// `htmlfile`, `jsonp-polling`, `sockjs-websocket` or (raw) `websocket`.
    pub fn transport(&self) -> &'static str {
        self.transport
    }
}

impl Transport for SessionSink {
    fn send(&mut self, frame: ByteString) -> Result<(), TransportError> {
        SessionSink::send(self, frame)
    }

    /// The session sends its own `h` frames every `heartbeat_delay`.
    fn heartbeat(&mut self) {}

    fn close(&mut self, code: CloseCode) {
        SessionSink::close(self, code.code(), code.reason());
    }

    fn name(&self) -> &'static str {
        self.transport
    }
}
