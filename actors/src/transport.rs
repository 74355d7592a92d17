//! The face a transport (raw WebSocket, a SockJS session, anything later) shows to its
//! [`Connection`](crate::Connection): write a frame, send a heartbeat, close with a code.
//! Inbound traffic goes the other way, as messages to the connection actor.

use bytestring::ByteString;
use thiserror::Error;

use crate::codes::CloseCode;

/// Why a frame could not be queued for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransportError {
    /// The client reads too slowly: its outbound queue is full.
    #[error("outbound queue is full")]
    Full,
    /// The client is gone.
    #[error("transport is closed")]
    Closed,
}

/// The outbound half of a transport, owned by one [`Connection`](crate::Connection).
///
/// Every method must return at once: a transport buffers (boundedly) and writes in the
/// background.
pub trait Transport: 'static {
    /// Queues one text frame for the client.
    fn send(&mut self, frame: ByteString) -> Result<(), TransportError>;

    /// Sends a heartbeat, such as a WebSocket ping or a SockJS `h` frame.
    fn heartbeat(&mut self) {}

    /// Ends the transport, telling the client why; later sends fail with `Closed`.
    fn close(&mut self, code: CloseCode);

    /// A short name for logs and [`ConnectionInfo::transport`](crate::ConnectionInfo).
    fn name(&self) -> &'static str;
}
