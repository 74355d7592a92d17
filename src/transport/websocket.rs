//! The raw WebSocket transport at `<scope>/websocket` (the same path SockJS serves its raw
//! WebSocket on).
//!
//! Each client gets a [`Connection`] actor, one reader task that turns WebSocket
//! messages into actor messages, and a response body that writes the socket
//! (`socket.rs`): the connection's transport pushes frames into a bounded
//! [`Outbox`] that the body drains, on the same thread, with no
//! task or channel between them. A close request skips what a slow consumer did not take.
//!
//! A browser's handshake (one with an `Origin` header) from an origin that the SockJS
//! options do not allow gets 403, as on the SockJS transports: one list of origins for
//! the whole endpoint, so a page on another site cannot use a visitor's cookies here.

use actix::{Actor, Addr};
use actix_web::body::BoxBody;
use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use comet_actors::codes::ErrorCode;
use comet_actors::protocol::FrameError;
use comet_actors::{
    Close, CloseCode, Connection, Inbound, Outbox, Refused, Touch, Transport, TransportClosed,
    TransportError,
};

use super::socket::{self, Incoming, ReadEnd, SocketWriter};
use crate::request_info::connection_info;
use crate::Comet;

/// The [`Transport`] face of one WebSocket.
struct WebSocketTransport(SocketWriter);

impl Transport for WebSocketTransport {
    fn send(&mut self, frame: ByteString) -> Result<(), TransportError> {
        self.0.send(frame)
    }

    fn heartbeat(&mut self) {
        self.0.ping();
    }

    fn close(&mut self, code: CloseCode) {
        self.0.close(code);
    }

    fn name(&self) -> &'static str {
        "websocket"
    }
}

impl Drop for WebSocketTransport {
    fn drop(&mut self) {
        // The connection is gone without a close request (its actor stopped): end the
        // socket too. A no-op after a close.
        self.0.close(CloseCode::Normal);
    }
}

/// The largest WebSocket message read at all. Frames between the protocol's
/// `max_frame_bytes` and this get a `too_large` error frame and the connection lives on;
/// beyond it, reading would cost memory, so the connection is closed with 1009.
fn transport_cap(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(4).max(1024 * 1024)
}

/// `GET <scope>/websocket`: upgrades to a WebSocket and starts its [`Connection`].
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    comet: web::Data<Comet>,
) -> actix_web::Result<HttpResponse> {
    if let Some(refusal) = super::sockjs::refuse_origin(&comet.settings().sockjs, &req) {
        return Ok(refusal);
    }
    let mut response = actix_http::ws::handshake(req.head())?;
    let node = comet.node().clone();
    let limits = &node.config().limits;
    let cap = transport_cap(limits.max_frame_bytes);
    let (writer, socket_body) = socket::outbound(Outbox::new(limits));
    let info = connection_info(
        &req,
        node.next_connection_id(),
        "websocket",
        comet.settings().trust_proxy_headers,
    );
    let pongs = writer.clone_handle();
    let connection = Connection::new(node, info, Box::new(WebSocketTransport(writer))).start();
    actix_web::rt::spawn(read(body, cap, connection, pongs));
    Ok(HttpResponse::from(
        response.message_body(BoxBody::new(socket_body))?,
    ))
}

/// Reads client messages into the connection actor until the socket ends.
async fn read(body: web::Payload, cap: usize, connection: Addr<Connection>, pongs: SocketWriter) {
    let end = socket::read(body, cap, |message| match message {
        Incoming::Text(text) => connection.do_send(Inbound(text)),
        Incoming::Binary(bytes) => match ByteString::try_from(bytes) {
            Ok(text) => connection.do_send(Inbound(text)),
            Err(_) => connection.do_send(Refused(FrameError::new(
                ErrorCode::BadFrame,
                "binary frames must hold UTF-8 text",
            ))),
        },
        Incoming::Ping(bytes) => {
            connection.do_send(Touch);
            pongs.pong(bytes);
        }
        Incoming::Pong => connection.do_send(Touch),
    })
    .await;
    match end {
        ReadEnd::Closed => {}
        ReadEnd::Overflow => {
            log::info!("websocket: a client sent a frame over the hard cap; closing");
            connection.do_send(Close(CloseCode::MessageTooBig));
        }
        ReadEnd::Error(err) => log::debug!("websocket: protocol error, closing: {err}"),
    }
    connection.do_send(TransportClosed);
}
