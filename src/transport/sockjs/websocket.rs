//! SockJS's WebSocket transport, `<prefix>/<server>/<session>/websocket`: the one
//! WebSocket engine (`transport/socket.rs`) with SockJS framing. The client gets `o`
//! first, messages as `a[…]` (every frame queued at one moment in one array), `h` as the
//! heartbeat (beside a WebSocket ping, which the client answers by itself), and
//! `c[code,"reason"]` before the close; it sends a JSON string or an array of them per
//! message, and broken JSON closes the socket with 3000 "Broken framing.", as the
//! protocol asks. The socket is the session: it ends with it. The raw `<prefix>/websocket`
//! (the `Raw` framing of `transport/websocket.rs`) is routed here too.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use comet_actors::CloseCode;

use super::frames::{close_frame, decode_websocket_message, messages_frame, HEARTBEAT, OPEN};
use super::headers;
use super::Endpoint;
use crate::transport::socket::{self, Framing, Writer};
use crate::transport::websocket::Raw;

/// SockJS framing over a WebSocket.
#[derive(Clone, Copy)]
pub(crate) struct SockJsFraming;

impl Framing for SockJsFraming {
    fn name(&self) -> &'static str {
        "sockjs-websocket"
    }

    fn open(&self, out: &mut Writer<'_>) {
        out.text(ByteString::from_static(OPEN));
    }

    fn heartbeat(&self, out: &mut Writer<'_>) {
        out.text(ByteString::from_static(HEARTBEAT));
        out.ping();
    }

    fn frames(&self, frames: &[ByteString], out: &mut Writer<'_>) {
        out.text(messages_frame(frames.iter().map(|frame| &**frame)));
    }

    fn close(&self, code: CloseCode, out: &mut Writer<'_>) {
        out.text(close_frame(code.code(), code.reason()));
        out.close(code);
    }

    fn decode(
        &self,
        text: ByteString,
        deliver: &mut dyn FnMut(ByteString),
    ) -> Result<(), CloseCode> {
        let messages = decode_websocket_message(&text)
            .map_err(|_| CloseCode::Other(3000, "Broken framing."))?;
        for message in messages {
            deliver(ByteString::from(message));
        }
        Ok(())
    }
}

/// `GET <prefix>/<server>/<session>/websocket`.
pub(crate) async fn sockjs_websocket(
    req: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    if let Some(refusal) = refuse_upgrade(&req) {
        return Ok(refusal);
    }
    socket::serve(
        &req,
        body,
        SockJsFraming,
        &*endpoint.service,
        &endpoint.limits,
    )
}

/// `GET <prefix>/websocket`: upgrades to a raw WebSocket (no SockJS framing) and opens
/// the endpoint's application on it (for comet's own endpoint, a `Connection`). A
/// browser's handshake from an origin that the endpoint does not allow gets 403, as on the
/// SockJS transports: one list of origins for the whole endpoint, so a page on another
/// site cannot use a visitor's cookies here.
pub(crate) async fn raw_websocket(
    req: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    if let Some(refusal) = headers::refuse_origin(&endpoint.config, &req) {
        return Ok(refusal);
    }
    socket::serve(&req, body, Raw, &*endpoint.service, &endpoint.limits)
}

/// The protocol's answers to requests that are not WebSocket upgrades.
fn refuse_upgrade(req: &HttpRequest) -> Option<HttpResponse> {
    let has = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has(header::UPGRADE, "websocket") {
        return Some(headers::error(
            StatusCode::BAD_REQUEST,
            "Can \"Upgrade\" only to \"WebSocket\".",
        ));
    }
    if !has(header::CONNECTION, "upgrade") {
        return Some(headers::error(
            StatusCode::BAD_REQUEST,
            "\"Connection\" must be \"Upgrade\".",
        ));
    }
    None
}

/// Browsers of the hybi-07/08 drafts (old Firefox) speak the same wire format as RFC 6455
/// but say version 7 or 8; the handshake library takes only 13, so such requests are
/// relabelled before it sees them.
pub(crate) fn accept_draft_versions(req: &mut actix_web::dev::ServiceRequest) {
    let draft = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "7" || v == "8");
    if draft {
        req.head_mut().headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
}
