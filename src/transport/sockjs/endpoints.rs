//! The per-session HTTP endpoints, `<prefix>/<server>/<session>/<transport>`: the
//! receiving transports (`xhr`, `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp`),
//! the sending ones (`xhr_send`, `jsonp_send`), their OPTIONS answers, and the dispatch
//! that also hands `websocket` to [`super::websocket`].
//!
//! Bad input gets the protocol's exact answers: 404 for a malformed path, an unknown
//! transport or (when sending) an unknown session; 405 with `Allow` for a wrong method;
//! 500 `Payload expected.` / `Broken JSON encoding.` for a bad body; 500 for a missing or
//! invalid jsonp/htmlfile callback; 503 `Too many sessions.` for a request that would open
//! a session beyond `max_sessions`.

use std::collections::HashMap;

use actix_web::http::{header, ConnectionType, Method, StatusCode, Version};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures::StreamExt;

use super::frames::{
    decode_messages, htmlfile_prelude, valid_callback, xhr_streaming_prelude, Framing,
    PayloadError, EVENTSOURCE_PRELUDE,
};
use super::headers::{self, HTML, JAVASCRIPT, TEXT};
use super::receiver::{Receiver, ReceiverBody, ReceiverKind};
use super::session::{Incoming, Session};
use super::{websocket, Endpoint};

/// `<prefix>/{server}/{session}/{transport}`, any method.
pub(crate) async fn session_request(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    let (server, session, transport) = path.into_inner();
    if !valid_path_part(&server) || !valid_path_part(&session) {
        return Ok(headers::not_found());
    }
    if let Some(refusal) = headers::refuse_origin(&endpoint.config, &req) {
        return Ok(refusal);
    }
    let method = req.method().clone();
    let response = match (transport.as_str(), method) {
        ("websocket", _) if !endpoint.config.websocket => headers::not_found(),
        ("websocket", Method::GET) => {
            return websocket::sockjs_websocket(req, body, endpoint).await;
        }
        ("websocket", _) => headers::method_not_allowed("GET"),
        ("xhr" | "xhr_send" | "xhr_streaming", Method::OPTIONS) => {
            let mut res = headers::options(&req, "OPTIONS, POST");
            headers::session_cookie(&mut res, &req, &endpoint.config);
            res.finish()
        }
        ("xhr", Method::POST) => Receive {
            kind: ReceiverKind::Polling,
            framing: Framing::Xhr,
            prelude: None,
            content_type: JAVASCRIPT,
            cors: true,
        }
        .respond(&req, &endpoint, &session),
        ("xhr_streaming", Method::POST) => Receive {
            kind: ReceiverKind::Streaming,
            framing: Framing::Xhr,
            prelude: Some(xhr_streaming_prelude()),
            content_type: JAVASCRIPT,
            cors: true,
        }
        .respond(&req, &endpoint, &session),
        ("xhr_send", Method::POST) => xhr_send(&req, body, &endpoint, &session).await,
        ("xhr" | "xhr_send" | "xhr_streaming", _) => headers::method_not_allowed("OPTIONS, POST"),
        ("eventsource", Method::GET) => Receive {
            kind: ReceiverKind::Streaming,
            framing: Framing::EventSource,
            prelude: Some(Bytes::from_static(EVENTSOURCE_PRELUDE.as_bytes())),
            // EventSource is always UTF-8; the type goes without a charset, as the
            // current protocol suite (and sockjs-node) have it.
            content_type: "text/event-stream",
            cors: true,
        }
        .respond(&req, &endpoint, &session),
        ("htmlfile", Method::GET) => match callback(&req) {
            Ok(callback) => Receive {
                kind: ReceiverKind::Streaming,
                prelude: Some(Bytes::from(htmlfile_prelude(&callback))),
                framing: Framing::HtmlFile,
                content_type: HTML,
                cors: false,
            }
            .respond(&req, &endpoint, &session),
            Err(refusal) => headers::error(StatusCode::INTERNAL_SERVER_ERROR, refusal),
        },
        ("jsonp", Method::GET) => match callback(&req) {
            Ok(callback) => {
                let mut res = Receive {
                    kind: ReceiverKind::Polling,
                    framing: Framing::Jsonp { callback },
                    prelude: None,
                    content_type: JAVASCRIPT,
                    cors: false,
                }
                .respond(&req, &endpoint, &session);
                // Keeps browsers from taking the answer for anything but script.
                res.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    header::HeaderValue::from_static("nosniff"),
                );
                res
            }
            Err(refusal) => headers::error(StatusCode::INTERNAL_SERVER_ERROR, refusal),
        },
        ("jsonp_send", Method::POST) => jsonp_send(&req, body, &endpoint, &session).await,
        ("eventsource" | "htmlfile" | "jsonp", _) => headers::method_not_allowed("GET"),
        ("jsonp_send", _) => headers::method_not_allowed("POST"),
        _ => headers::not_found(),
    };
    Ok(response)
}

/// Server and session ids are any non-empty path segment without a dot.
fn valid_path_part(part: &str) -> bool {
    !part.is_empty() && !part.contains('.')
}

/// A receiving request: what it gets and how it is answered.
struct Receive {
    kind: ReceiverKind,
    framing: Framing,
    prelude: Option<Bytes>,
    content_type: &'static str,
    cors: bool,
}

impl Receive {
    /// Attaches a new receiver to the session (starting the session if it is new) and
    /// answers with the streaming body the session writes to.
    fn respond(self, req: &HttpRequest, endpoint: &Endpoint, session_id: &str) -> HttpResponse {
        let (receiver, frames) =
            Receiver::new(self.kind, self.framing, endpoint.config.response_limit);
        let id = receiver.id;
        let max = endpoint.config.max_sessions;
        let Some(session) =
            endpoint
                .sessions
                .attach_or_open(session_id, receiver, max, |session_id, receiver| {
                    Session::start(endpoint, session_id, receiver, req)
                })
        else {
            log::warn!("sockjs: refused a new session: {max} sessions are open (max_sessions)");
            return headers::error(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions.");
        };
        let mut res = HttpResponse::Ok();
        res.content_type(self.content_type);
        headers::no_cache(&mut res);
        if self.cors {
            headers::cors(&mut res, req);
        }
        headers::session_cookie(&mut res, req, &endpoint.config);
        let mut res = res.streaming(ReceiverBody::new(
            self.prelude,
            frames,
            session.recipient(),
            id,
        ));
        if req.version() == Version::HTTP_10 {
            // HTTP/1.0 has no chunked encoding: the body ends when the connection does.
            res.head_mut().no_chunking(true);
            res.head_mut().set_connection_type(ConnectionType::Close);
        }
        res
    }
}

/// The `c` (or `callback`) query parameter of jsonp and htmlfile, checked; the refusal
/// is a 500 with the protocol's message.
fn callback(req: &HttpRequest) -> Result<String, &'static str> {
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let Some(callback) = query
        .get("c")
        .or_else(|| query.get("callback"))
        .filter(|c| !c.is_empty())
    else {
        return Err("\"callback\" parameter required");
    };
    if !valid_callback(callback) {
        return Err("invalid \"callback\" parameter");
    }
    Ok(callback.clone())
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge,
    Broken,
}

async fn read_body(mut body: web::Payload, limit: usize) -> Result<BytesMut, BodyError> {
    let mut bytes = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn body_refusal(err: BodyError) -> HttpResponse {
    match err {
        BodyError::TooLarge => headers::error(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large."),
        BodyError::Broken => headers::error(StatusCode::BAD_REQUEST, "Broken request body."),
    }
}

fn payload_refusal(err: PayloadError) -> HttpResponse {
    headers::error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
}

/// Hands the messages to the session; false if there is none.
fn deliver(endpoint: &Endpoint, session_id: &str, messages: Vec<String>) -> bool {
    let Some(session) = endpoint.sessions.find(session_id) else {
        return false;
    };
    if !messages.is_empty() {
        session.do_send(Incoming(messages));
    }
    true
}

/// `POST xhr_send`: a JSON array of messages; 204 (with a `text/plain` type, for
/// Firefox).
async fn xhr_send(
    req: &HttpRequest,
    body: web::Payload,
    endpoint: &Endpoint,
    session_id: &str,
) -> HttpResponse {
    let body = match read_body(body, endpoint.limits.transport_cap()).await {
        Ok(body) => body,
        Err(err) => return body_refusal(err),
    };
    let messages = match decode_messages(&body) {
        Ok(messages) => messages,
        Err(err) => return payload_refusal(err),
    };
    if !deliver(endpoint, session_id, messages) {
        return headers::not_found();
    }
    let mut res = HttpResponse::NoContent();
    res.content_type(TEXT);
    headers::no_cache(&mut res);
    headers::cors(&mut res, req);
    headers::session_cookie(&mut res, req, &endpoint.config);
    res.finish()
}

/// `POST jsonp_send`: the messages as a form field `d`, or as the raw body; answers
/// `ok` with 200 (Konqueror mishandles 204).
async fn jsonp_send(
    req: &HttpRequest,
    body: web::Payload,
    endpoint: &Endpoint,
    session_id: &str,
) -> HttpResponse {
    let body = match read_body(body, endpoint.limits.transport_cap()).await {
        Ok(body) => body,
        Err(err) => return body_refusal(err),
    };
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let decoded = if is_form {
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        match fields.into_iter().find(|(name, _)| name == "d") {
            Some((_, d)) => decode_messages(d.as_bytes()),
            None => Err(PayloadError::Empty),
        }
    } else {
        decode_messages(&body)
    };
    let messages = match decoded {
        Ok(messages) => messages,
        Err(err) => return payload_refusal(err),
    };
    if !deliver(endpoint, session_id, messages) {
        return headers::not_found();
    }
    let mut res = HttpResponse::Ok();
    res.content_type(TEXT);
    headers::no_cache(&mut res);
    headers::session_cookie(&mut res, req, &endpoint.config);
    res.body("ok")
}
