//! What a transport may answer when a frame is written for its client. A transport
//! (raw WebSocket, a SockJS session, anything later) does not implement a trait: it
//! drains its connection's [`Outlet`](crate::Outlet), frames what it takes and writes
//! it, and hands the client's messages to the [`Connection`](crate::Connection).

use thiserror::Error;

/// Why a frame could not be queued for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransportError {
    /// The client reads too slowly: its outbound queue is full.
    #[error("outbound queue is full")]
    Full,
    /// The client is gone, or its connection is closing.
    #[error("transport is closed")]
    Closed,
}
