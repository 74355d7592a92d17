//! Transports: adapters that carry a client's text frames to its
//! [`Connection`](comet_actors::Connection) actor and back.
//!
//! - [`websocket`]: raw WebSocket at `<scope>/websocket`.
//! - [`sockjs`]: the SockJS protocol (WebSocket, streaming and polling fallbacks) under
//!   `<scope>/`.

mod socket;
pub mod sockjs;
pub mod websocket;
