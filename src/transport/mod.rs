//! Transports: adapters that carry a client's text frames to its
//! [`Connection`](comet_actors::Connection) actor and back.
//!
//! - [`websocket`]: raw WebSocket at `<scope>/websocket`.

pub mod websocket;
