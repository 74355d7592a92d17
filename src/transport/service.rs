//! The application behind a transport: what a client's messages go to, and how the
//! application writes back.
//!
//! A [`SockJsService`] opens a [`SessionHandler`] for each new client (a WebSocket, or a
//! SockJS session over any of its transports) and hands it a [`SessionSink`] to write
//! with. Comet's own service ([`ConnectionService`](super::sockjs::ConnectionService))
//! starts a comet `Connection` per client; the protocol test server's echo service just
//! writes every message back. Both are a few lines, because the transports do the rest.

use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::protocol::FrameError;
use comet_actors::{CloseCode, Outlet, TransportError};

/// Opens the application side of each new client. Shared by every worker thread.
///
/// A closure `Fn(SessionSink, &HttpRequest) -> Box<dyn SessionHandler>` is a service.
pub trait SockJsService: Send + Sync + 'static {
    /// A client connected. `sink` writes to it; `request` is the HTTP request that
    /// opened it (peer address, headers, query). Called on the thread that serves the
    /// client, so the handler may start actors there.
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn SessionHandler>;
}

impl<F> SockJsService for F
where
    F: Fn(SessionSink, &HttpRequest) -> Box<dyn SessionHandler> + Send + Sync + 'static,
{
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn SessionHandler> {
        self(sink, request)
    }
}

/// The application side of one client; lives with its transport.
pub trait SessionHandler: 'static {
    /// A message from the client.
    fn message(&mut self, message: ByteString);

    /// Something the client sent that is no message at all (a binary WebSocket message
    /// that is not UTF-8): the application may answer it. Default: ignored.
    fn refused(&mut self, _error: FrameError) {}

    /// The client is gone (it left, its session was reaped, or the application closed
    /// it); called once, after which no message comes.
    fn closed(&mut self) {}
}

/// Writes to one client: its [`Outlet`] (the one bounded outbound queue that the
/// transport drains), and the name of the transport it came by. Cheap to clone; not
/// `Send`: it stays on the client's thread.
///
/// At most `outbound_queue` messages (and `outbound_queue_bytes`) wait for a client that
/// does not read; beyond that the `slow_consumer` policy applies: under `Close` the
/// client is closed with 4001 (SockJS: `c[4001,"Slow consumer"]`) and
/// [`send`](Self::send) fails with [`TransportError::Full`], under `DropOldest` the
/// oldest messages are dropped and the client told. Either way a client that stopped
/// reading cannot grow memory.
#[derive(Clone)]
pub struct SessionSink {
    outlet: Outlet,
    transport: &'static str,
}

impl SessionSink {
    pub(crate) fn new(outlet: Outlet, transport: &'static str) -> SessionSink {
        SessionSink { outlet, transport }
    }

    /// Queues a message for the client.
    pub fn send(&self, message: impl Into<ByteString>) -> Result<(), TransportError> {
        self.outlet.send(message.into())
    }

    /// Asks the transport for a heartbeat (SockJS `h`, a WebSocket ping). Comet's
    /// connections do so every `heartbeat_interval`; a service of your own calls it when
    /// it likes.
    pub fn heartbeat(&self) {
        self.outlet.heartbeat();
    }

    /// Closes: the client gets the code (SockJS: `c[code,"reason"]`) after the messages
    /// queued before (a slow consumer's are dropped).
    pub fn close(&self, code: CloseCode) {
        self.outlet.close(code);
    }

    /// The outlet itself, for a comet `Connection`.
    pub fn outlet(&self) -> &Outlet {
        &self.outlet
    }

    /// The transport the client chose: `websocket` (raw), `sockjs-websocket`,
    /// `xhr-streaming`, `xhr-polling`, `eventsource`, `htmlfile` or `jsonp-polling`.
    pub fn transport(&self) -> &'static str {
        self.transport
    }
}
