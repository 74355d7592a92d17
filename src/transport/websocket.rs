//! The raw WebSocket transport at `<scope>/websocket`: each text message is one frame of
//! the application's protocol (comet's jii frames), no framing around them. It runs on
//! the one WebSocket engine (`socket.rs`), as SockJS's WebSocket does; this file is its
//! framing and its route.
//!
//! A browser's handshake (one with an `Origin` header) from an origin that the endpoint
//! does not allow gets 403, as on the SockJS transports: one list of origins for the
//! whole endpoint, so a page on another site cannot use a visitor's cookies here.

use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use comet_actors::CloseCode;

use super::socket::{self, Framing, Writer};
use super::sockjs::{refuse_origin, Endpoint};

/// Plain messages both ways: a frame is a WebSocket text message.
pub(crate) struct Raw;

impl Framing for Raw {
    fn name(&self) -> &'static str {
        "websocket"
    }

    fn frames(&self, frames: &[ByteString], out: &mut Writer<'_>) {
        for frame in frames {
            out.text(frame.clone());
        }
    }

    fn decode(
        &self,
        text: ByteString,
        deliver: &mut dyn FnMut(ByteString),
    ) -> Result<(), CloseCode> {
        deliver(text);
        Ok(())
    }
}

/// `GET <prefix>/websocket`: upgrades to a raw WebSocket and opens the endpoint's
/// application on it (for comet's own endpoint, a `Connection`).
pub(crate) async fn raw_websocket(
    req: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    if let Some(refusal) = refuse_origin(&endpoint.config, &req) {
        return Ok(refusal);
    }
    socket::serve(&req, body, &Raw, &*endpoint.service, &endpoint.limits)
}
