//! Transports: how a client's messages reach its application (a comet `Connection`) and
//! how what the application writes reaches the client. Every transport carries the same
//! [`SessionHandler`](service::SessionHandler) application and drains the same bounded
//! [`Outlet`](comet_actors::Outlet); a transport only frames and writes.
//!
//! | file | what it holds |
//! | --- | --- |
//! | `service.rs` | the application side: [`SockJsService`](service::SockJsService), [`SessionHandler`](service::SessionHandler), [`SessionSink`](service::SessionSink) |
//! | `socket.rs` | the one WebSocket engine, with a framing as parameter |
//! | `websocket.rs` | the raw framing (jii frames as they are) at `<scope>/websocket` |
//! | `sockjs/` | SockJS: its framing on the engine, and its HTTP transports with their sessions |
//! | `socketio/` | Socket.IO: Engine.IO's framing on the engine, its long-polling sessions, and comet's model in Socket.IO events |

pub mod service;
mod socket;
pub mod socketio;
pub mod sockjs;
pub(crate) mod websocket;
