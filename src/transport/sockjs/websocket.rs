//! The WebSocket transports of a SockJS endpoint: `<prefix>/<server>/<session>/websocket`
//! (SockJS framing: `o`, `h`, `a[...]`, `c[...]` out, JSON arrays in) and, for custom
//! services, the raw `<prefix>/websocket` (plain messages both ways).
//!
//! Each socket is the only receiver of its own session. A reader task turns client
//! messages into session messages; a writer task owns the socket's sending half and
//! drains the session's frames into it. Broken JSON closes the socket (3000
//! "Broken framing."), as the protocol asks.

use actix::Addr;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytestring::ByteString;
use tokio::sync::mpsc;

use super::frames::{decode_websocket_message, Framing};
use super::headers;
use super::receiver::{Outgoing, Receiver, ReceiverKind};
use super::session::{Incoming, ReceiverClosed, Session};
use super::Endpoint;

/// `GET <prefix>/<server>/<session>/websocket`.
pub(crate) async fn sockjs_websocket(
    req: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    open(req, body, &endpoint, ReceiverKind::WebSocket)
}

/// `GET <prefix>/websocket` of a custom service: messages without SockJS framing.
pub(crate) async fn raw_websocket(
    req: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    if let Some(refusal) = headers::refuse_origin(&endpoint.config, &req) {
        return Ok(refusal);
    }
    open(req, body, &endpoint, ReceiverKind::RawWebSocket)
}

fn open(
    req: HttpRequest,
    body: web::Payload,
    endpoint: &Endpoint,
    kind: ReceiverKind,
) -> actix_web::Result<HttpResponse> {
    if let Some(refusal) = refuse_upgrade(&req) {
        return Ok(refusal);
    }
    let (response, socket, stream) = actix_ws::handle(&req, body)?;
    let (receiver, frames) = Receiver::new(kind, Framing::WebSocket, 0);
    let id = receiver.id;
    let session = Session::start(endpoint, None, receiver, &req);
    let cap = endpoint.config.max_request_bytes;
    let stream = stream
        .max_frame_size(cap)
        .aggregate_continuations()
        .max_continuation_size(cap);
    actix_web::rt::spawn(write(socket.clone(), frames));
    actix_web::rt::spawn(read(
        stream,
        socket,
        session,
        id,
        kind == ReceiverKind::RawWebSocket,
    ));
    Ok(response)
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

/// Reads client messages into the session until the socket ends.
async fn read(
    mut stream: actix_ws::AggregatedMessageStream,
    mut socket: actix_ws::Session,
    session: Addr<Session>,
    receiver: u64,
    raw: bool,
) {
    while let Some(message) = stream.recv().await {
        let text = match message {
            Ok(AggregatedMessage::Text(text)) => text,
            Ok(AggregatedMessage::Binary(bytes)) => match ByteString::try_from(bytes) {
                Ok(text) => text,
                Err(_) => {
                    let _ = socket
                        .close(Some(reason(CloseCode::Unsupported, "Text only.")))
                        .await;
                    break;
                }
            },
            Ok(AggregatedMessage::Ping(bytes)) => {
                let _ = socket.pong(&bytes).await;
                continue;
            }
            Ok(AggregatedMessage::Pong(_)) => continue,
            Ok(AggregatedMessage::Close(_)) => break,
            Err(ProtocolError::Overflow) => {
                let _ = socket
                    .close(Some(reason(CloseCode::Size, "Message too big.")))
                    .await;
                break;
            }
            Err(err) => {
                log::debug!("sockjs websocket: protocol error, closing: {err}");
                break;
            }
        };
        if raw {
            session.do_send(Incoming(vec![String::from(&*text)]));
            continue;
        }
        match decode_websocket_message(&text) {
            Ok(messages) if messages.is_empty() => {}
            Ok(messages) => session.do_send(Incoming(messages)),
            Err(_) => {
                log::debug!("sockjs websocket: broken framing, closing");
                let _ = socket
                    .close(Some(reason(CloseCode::from(3000), "Broken framing.")))
                    .await;
                break;
            }
        }
    }
    session.do_send(ReceiverClosed { receiver });
}

/// Forwards the session's frames to the socket until the session ends it.
async fn write(mut socket: actix_ws::Session, mut frames: mpsc::Receiver<Outgoing>) {
    while let Some(outgoing) = frames.recv().await {
        match outgoing {
            Outgoing::Data(text) => {
                if socket.text(text).await.is_err() {
                    return;
                }
            }
            Outgoing::End { code, reason: why } => {
                let _ = socket
                    .close(Some(reason(CloseCode::from(code), &why)))
                    .await;
                return;
            }
        }
    }
    let _ = socket
        .close(Some(reason(CloseCode::Normal, "Normal closure")))
        .await;
}

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
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
