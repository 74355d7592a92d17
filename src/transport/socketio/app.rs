//! The application behind an Engine.IO session, and what it is told.
//!
//! An [`EioService`] opens an [`EioApp`] per session (whatever its transport: long-polling,
//! WebSocket, or polling upgraded to WebSocket). The app gets the client's Engine.IO
//! messages, and translates, when the transport drains them, the frames queued in the
//! session's [`Outlet`](comet_actors::Outlet) into Engine.IO messages: comet's app
//! ([`super::comet::CometApp`]) turns jii frames into Socket.IO packets there, so that
//! fan-out writes the same `channel …` frame into every subscriber's outlet whatever its
//! transport. Apps that write Engine.IO messages themselves put text as it is and binary
//! as [`binary_frame`](super::eio::binary_frame) into the outlet.

use std::time::Duration;

use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::CloseCode;

use super::eio::{decode_frame, EioMessage};
use crate::transport::service::SessionSink;

/// The application side of one Engine.IO session; lives on the session's thread.
pub trait EioApp: 'static {
    /// A message from the client. `Err` closes the session with that code (Socket.IO
    /// closes on a packet that breaks its format).
    fn message(&mut self, message: EioMessage) -> Result<(), CloseCode>;

    /// One frame taken from the session's outlet, as Engine.IO messages for the client
    /// (none, one or several).
    fn outbound(&mut self, frame: ByteString, out: &mut dyn FnMut(EioMessage)) {
        out(match decode_frame(&frame) {
            Some(bytes) => EioMessage::Binary(bytes),
            None => EioMessage::Text(frame),
        });
    }

    /// The session closes with `code`: the messages the client gets before the close.
    fn closing(&mut self, _code: CloseCode, _out: &mut dyn FnMut(EioMessage)) {}

    /// Whether the client connected in the app's own sense (Socket.IO: a CONNECT
    /// packet came): a session that is not connected `connect_timeout` after it opened is
    /// closed. Default: yes at once.
    fn connected(&self) -> bool {
        true
    }

    /// The session is over; called once, after which nothing comes.
    fn closed(&mut self) {}
}

/// Opens an [`EioApp`] for each new session. Shared by every worker thread.
pub trait EioService: Send + Sync + 'static {
    /// A session opened. `sink` writes to its outlet; `request` is the HTTP request that
    /// opened it. Called on the thread that serves the session.
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn EioApp>;
}

impl<F> EioService for F
where
    F: Fn(SessionSink, &HttpRequest) -> Box<dyn EioApp> + Send + Sync + 'static,
{
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn EioApp> {
        self(sink, request)
    }
}

/// The options of an Engine.IO endpoint, with the handshake's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EioConfig {
    /// The handshake's `pingInterval`: how often the client is pinged. The pings
    /// themselves are the outlet's heartbeats (comet's connections ask for one every
    /// `heartbeat_interval`, which comet's endpoint puts here).
    pub ping_interval: Duration,
    /// The handshake's `pingTimeout`: a session that sent nothing, not even a pong, for
    /// `ping_interval + ping_timeout` is closed. Default 20 s (Engine.IO's).
    pub ping_timeout: Duration,
    /// The handshake's `maxPayload`: the largest WebSocket message or polling request
    /// body read, in bytes (larger: the session is closed). Comet's endpoint uses
    /// `Limits::transport_cap`.
    pub max_payload: usize,
    /// A session that did not connect (Socket.IO: no CONNECT packet) by then is closed.
    /// Default 45 s (Socket.IO's).
    pub connect_timeout: Duration,
    /// Most long-polling sessions open at once (503 beyond). Default 100,000.
    pub max_sessions: usize,
}

impl Default for EioConfig {
    fn default() -> EioConfig {
        EioConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_secs(45),
            max_sessions: 100_000,
        }
    }
}

impl EioConfig {
    /// The handshake (open packet) of session `sid`.
    pub(crate) fn handshake(&self, sid: &str, upgrades: bool) -> String {
        format!(
            "0{{\"sid\":\"{sid}\",\"upgrades\":[{}],\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
            if upgrades { "\"websocket\"" } else { "" },
            self.ping_interval.as_millis(),
            self.ping_timeout.as_millis(),
            self.max_payload
        )
    }

    /// How long a session may stay silent.
    pub(crate) fn silence_limit(&self) -> Duration {
        self.ping_interval + self.ping_timeout
    }
}

/// A random session id: 20 characters of base64url.
pub(crate) fn new_sid() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Asks `sink`'s transport for a heartbeat (an Engine.IO ping) every `every` until the
/// session closes: for an app without a comet connection, which does this itself.
pub fn spawn_heartbeats(sink: &SessionSink, every: Duration) {
    let outlet = sink.outlet().clone();
    actix_web::rt::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if outlet.is_closed() {
                return;
            }
            outlet.heartbeat();
        }
    });
}
